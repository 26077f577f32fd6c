"""Test-only workflow definitions (the real ones live in workflows/)."""
from marshmallow import Schema, fields

from engine.definition import Deadline, Rung, Signing, State, Transition, Workflow


class Empty(Schema):
    pass


class Counted(Schema):
    cash_counted = fields.Decimal(required=True, as_string=True)
    cash_expected = fields.Decimal(required=True, as_string=True)


def t(zh, en):
    return {"zh": zh, "en": en}


# A two-person sign-off: outgoing and incoming must be different people; completes by itself.
HANDOVER = Workflow(
    name="test_handover", version=1, title=t("交接", "Handover"), initial="open",
    start_roles=("store_manager", "deputy_manager"), start_schema=Counted,
    states=(
        State("open", t("待签字", "Awaiting signatures"), assignee="deputy_manager",
              deadline=Deadline("30 minutes", ladder=(Rung("0", "escalate", to="manager"),)),
              signing=Signing(policy="all", complete="signed")),
        State("countersign", t("店长复核", "Countersign"), assignee="store_manager"),
        State("done", t("完成", "Done"), final=True),
    ),
    transitions=(
        Transition("sign_out", "open", None, roles=("store_manager", "deputy_manager"), schema=Empty, signature=True),
        Transition("sign_in", "open", None, roles=("store_manager", "deputy_manager", "assistant"), schema=Empty,
                   signature=True),
        Transition("signed", "open", "done", schema=Empty, conditions=("balanced",)),
        Transition("signed", "open", "countersign", schema=Empty, unless=("balanced",)),
        Transition("countersign", "countersign", "done", roles=("store_manager",), schema=Empty, not_by=("signers",)),
    ),
)


def balanced(ctx) -> bool:
    return ctx.doc["cash_counted"] == ctx.doc["cash_expected"]


# Any two of the region's managers approve.
QUORUM = Workflow(
    name="test_quorum", version=1, title=t("会签", "Quorum"), initial="voting",
    start_roles=("assistant",), start_schema=Empty,
    states=(
        State("voting", t("会签中", "Voting"), signing=Signing(policy="quorum", quorum=2, complete="carried")),
        State("carried", t("通过", "Carried"), final=True),
    ),
    transitions=(
        Transition("vote", "voting", None, roles=("store_manager", "regional_manager"), schema=Empty, signature=True),
        Transition("carried", "voting", "carried", schema=Empty),
    ),
)


def versioned(version: int, final_title: str) -> Workflow:
    """Two versions of one workflow: v2 adds a review step before done."""
    states = [State("draft", t("草稿", "Draft")), State("done", t(final_title, final_title), final=True)]
    transitions = [Transition("finish", "draft", "done" if version == 1 else "review", roles=("assistant",),
                              schema=Empty)]
    if version == 2:
        states.insert(1, State("review", t("审核", "Review")))
        transitions.append(Transition("ok", "review", "done", roles=("store_manager",), schema=Empty))
    return Workflow(name="test_versioned", version=version, title=t("版本", "Versioned"), initial="draft",
                    start_roles=("assistant",), start_schema=Empty, states=tuple(states),
                    transitions=tuple(transitions))


FUNCTIONS = {"balanced": balanced}


# An unattended step closes itself when its deadline passes.
AUTO = Workflow(
    name="test_auto", version=1, title=t("自动", "Auto"), initial="open",
    start_roles=("assistant",), start_schema=Empty,
    states=(
        State("open", t("待处理", "Open"), assignee="store_manager",
              deadline=Deadline("1 hour", ladder=(Rung("0", "fire", trigger="expire"),))),
        State("expired", t("已过期", "Expired"), final=True),
        State("done", t("完成", "Done"), final=True),
    ),
    transitions=(
        Transition("finish", "open", "done", roles=("store_manager",), schema=Empty),
        Transition("expire", "open", "expired", schema=Empty),
    ),
)
