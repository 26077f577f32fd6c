"""Engine objects as the plain dicts the response schemas dump. Formatting only: every fact comes from the
engine (actions from `available_actions`, deadlines from the timer rows, visibility already checked)."""
from engine import clock, queries, registry
from engine.runtime import available_actions, state_facts


def user_ref(user) -> dict | None:
    return {"login": user.login, "name": user.name} if user else None


def action(t) -> dict:
    return {"trigger": t.trigger, "title": t.title or {"zh": t.trigger, "en": t.trigger},
            "requires_comment": t.requires_comment}


def summary(inst) -> dict:
    compiled = registry.get(inst.workflow, inst.definition_version)
    state = compiled.states.get(inst.state)
    return {"id": inst.id, "workflow": inst.workflow, "definition_version": inst.definition_version,
            "state": inst.state, "state_title": state.title if state else {"zh": inst.state, "en": inst.state},
            "org_unit": {"code": inst.org_unit.code, "name": inst.org_unit.name}, "version": inst.version,
            "created_by": user_ref(inst.created_by), "created_at": inst.created_at, "updated_at": inst.updated_at,
            "due_at": inst.due_at, "closed_at": inst.closed_at}


def instance(inst, actor) -> dict:
    return {**summary(inst), "data": inst.data,
            "allowed_actions": [action(t) for t in available_actions(inst, actor)],
            "step_facts": state_facts(inst),
            "deadlines": [vars(d) for d in queries.pending_deadlines(inst)],
            "signatures": [{"state": s.state, "trigger": s.trigger, "role": s.role, "user": user_ref(s.user),
                            "on_behalf_of": user_ref(s.on_behalf_of), "signed_at": s.signed_at}
                           for s in queries.signatures(inst)]}


def history_entry(entry) -> dict:
    if entry.kind == "event":
        e = entry.event
        return {"at": entry.at, "kind": "event", "seq": e.seq, "trigger": e.trigger, "from_state": e.from_state,
                "to_state": e.to_state, "actor": user_ref(e.actor), "on_behalf_of": user_ref(e.on_behalf_of),
                "data": e.data, "comment": e.comment}
    if entry.kind == "mail_failed":
        n = entry.notification
        return {"at": entry.at, "kind": "mail_failed", "actor": None, "on_behalf_of": None,
                "detail": f"{n.kind} to {n.user.login}: {n.last_error}"}
    return {"at": entry.at, "kind": entry.kind, "actor": user_ref(getattr(entry, "actor", None)),
            "detail": getattr(entry, "detail", None), "data": getattr(entry, "data", None)}


def task(t) -> dict:
    return {"instance": summary(t.instance), "actions": [action(a) for a in t.actions], "due_at": t.due_at,
            "overdue": t.overdue(clock.now())}
