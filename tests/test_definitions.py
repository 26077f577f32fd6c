"""Definitions are data: they round-trip through `transitions`, and broken ones are refused with a message
naming the workflow and the element."""
import dataclasses

import pytest
from marshmallow import Schema

from engine import registry
from engine.definition import Deadline, Rung, Signing, State, Transition, validate
from engine.diagram import mermaid
from engine.errors import DefinitionError
from tests import definitions
from tests.definitions import HANDOVER, Empty


def broken(**changes):
    return dataclasses.replace(HANDOVER, **changes)


def with_transition(index, **changes):
    ts = list(HANDOVER.transitions)
    ts[index] = dataclasses.replace(ts[index], **changes)
    return broken(transitions=tuple(ts))


def with_state(index, **changes):
    ss = list(HANDOVER.states)
    ss[index] = dataclasses.replace(ss[index], **changes)
    return broken(states=tuple(ss))


def problems(wf):
    return validate(wf, definitions.FUNCTIONS)


def test_the_test_definition_is_valid():
    assert problems(HANDOVER) == []


def test_round_trip_through_transitions():
    compiled = registry.register(HANDOVER, definitions.FUNCTIONS)
    machine = compiled.machine()
    assert set(machine.states) == {"open", "countersign", "done"}
    assert set(machine.events) == {"sign_out", "sign_in", "signed", "countersign"}
    assert machine.auto_transitions is False
    assert [(t.source, t.dest) for t in machine.events["signed"].transitions["open"]] == [
        ("open", "done"), ("open", "countersign")]
    assert [t.dest for t in machine.events["sign_out"].transitions["open"]] == [None]  # stays: internal
    assert compiled.machine() is machine  # built once per thread, not per call
    diagram = mermaid(compiled, current="countersign")
    assert "stateDiagram-v2" in diagram and "open --> done: signed" in diagram
    assert "Class countersign s_active" in diagram


@pytest.mark.parametrize("wf, expected", [
    (with_transition(0, roles=("store_manager", "cashier")), "transition 'sign_out': unknown role 'cashier'"),
    (with_transition(4, source="nowhere"), "transition 'countersign': unknown source state 'nowhere'"),
    (with_transition(4, dest="limbo"), "transition 'countersign': unknown destination state 'limbo'"),
    (with_transition(4, not_by=("approve",)), "transition 'countersign': unknown segregation rule 'approve'"),
    (with_transition(4, schema=None), "transition 'countersign': missing marshmallow schema"),
    (with_transition(2, conditions=("is_balanced",)), "transition 'signed': unknown guard or hook 'is_balanced'"),
    (broken(start_schema=None), "start_schema: missing marshmallow schema"),
    (broken(initial="start"), "initial: unknown state 'start'"),
    (with_state(2, deadline=Deadline("1 hour")), "state 'done': a final state cannot have a deadline"),
    (with_state(0, deadline=Deadline("soon")), "state 'open': deadline expression 'soon'"),
    (with_state(0, deadline=Deadline("1 hour", (Rung("0", "fire", trigger="close"),))),
     "state 'open': rung 1: trigger 'close' does not leave this state"),
    (with_state(0, signing=Signing(complete="finished")),
     "state 'open': completion trigger 'finished' does not leave this state"),
    (with_state(0, signing=Signing(policy="quorum")), "state 'open': a quorum policy needs quorum >= 1"),
    (with_state(1, assignee="boss"), "state 'countersign': unknown assignee role 'boss'"),
    (broken(states=HANDOVER.states + (State("archived", {"zh": "归档", "en": "Archived"}, final=True),)),
     "state 'archived': unreachable from the initial state 'open'"),
    (broken(states=HANDOVER.states + (State("stuck", {"zh": "卡住", "en": "Stuck"}),),
            transitions=HANDOVER.transitions + (Transition("park", "countersign", "stuck", roles=("store_manager",),
                                                           schema=Empty),)),
     "state 'stuck': dead end: not final and no transition leaves it"),
    (broken(title={"zh": "交接"}), "title: missing 'en' title"),
])
def test_each_kind_of_broken_definition_is_refused(wf, expected):
    found = problems(wf)
    assert any(p.startswith("workflow 'test_handover' v1: ") and expected in p for p in found), found
    with pytest.raises(DefinitionError) as e:
        registry.register(wf, definitions.FUNCTIONS)
    assert expected in str(e.value)


def test_branches_of_one_trigger_must_share_their_rules():
    class Other(Schema):
        pass

    found = problems(with_transition(3, schema=Other))
    assert any("transition 'signed' from 'open': branches of one trigger must share" in p for p in found)


def test_the_shipped_workflows_lint_clean():
    assert registry.lint() == []
    assert "discount_request" in [c.name for c in registry.latest()]
