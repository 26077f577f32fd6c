"""The one write path: start, fire, permissions, segregation of duties, delegation, signatures, versions."""
from datetime import timedelta

import pytest
import sqlalchemy as sa

import engine
from engine import org, registry
from engine.db import db
from engine.errors import InvalidPayload, NotAvailable, NotPermitted, UnknownInstance, VersionConflict
from engine.models import AuditEvent, Instance, Notification, Signature, Timer
from engine.org import delegate
from tests import definitions

REQUEST = {"customer": "李女士", "amount": "1280.00", "discount_percent": "15", "reason": "老客户"}


@pytest.fixture(autouse=True)
def test_workflows():
    registry.register(definitions.HANDOVER, definitions.FUNCTIONS)
    registry.register(definitions.QUORUM)


def events(inst):
    return db.session.scalars(sa.select(AuditEvent).where(AuditEvent.instance_id == inst.id)
                              .order_by(AuditEvent.seq)).all()


def submitted(people, data=REQUEST, by="a1", unit="S1"):
    inst = engine.start("discount_request", unit, people[by], data)
    return engine.fire(inst.id, "submit", people[by])


def test_golden_path_small_discount(people, clock):
    inst = engine.start("discount_request", "S1", people["a1"], REQUEST, comment="生日折扣")
    assert (inst.state, inst.version, inst.definition_version) == ("draft", 1, 1)
    clock.advance(minutes=5)
    engine.fire(inst.id, "submit", people["a1"])
    clock.advance(hours=1)
    inst = engine.fire(inst.id, "approve", people["sm1"], expected_version=2)
    assert (inst.state, inst.version) == ("approved", 3)
    assert inst.closed_at == clock.now()
    history = [(e.seq, e.trigger, e.from_state, e.to_state, e.actor.login) for e in events(inst)]
    assert history == [(1, "start", None, "draft", "a1"), (2, "submit", "draft", "store_review", "a1"),
                       (3, "approve", "store_review", "approved", "sm1")]
    assert events(inst)[0].data["customer"] == "李女士" and events(inst)[0].comment == "生日折扣"


def test_guard_routes_large_discount_to_regional_manager(people, clock):
    inst = submitted(people, {**REQUEST, "discount_percent": "25"})
    inst = engine.fire(inst.id, "approve", people["sm1"])
    assert inst.state == "regional_review"
    # the store manager who approved once may not approve the second level too (not_by "approve")
    with pytest.raises(NotPermitted):
        engine.fire(inst.id, "approve", people["sm1asst"])
    inst = engine.fire(inst.id, "approve", people["east"])
    assert inst.state == "approved"


def test_entering_a_state_arms_its_timers_and_leaving_cancels_them(people, clock):
    inst = submitted(people)
    timers = db.session.scalars(sa.select(Timer).where(Timer.instance_id == inst.id).order_by(Timer.rung)).all()
    due = clock.now() + timedelta(hours=4)
    assert [(t.rung, t.action, t.due_at, t.status) for t in timers] == [
        (0, "deadline", due, "pending"), (1, "remind", due - timedelta(hours=1), "pending"),
        (2, "escalate", due, "pending"), (3, "escalate", due + timedelta(hours=4), "pending")]
    assert inst.due_at == due
    engine.fire(inst.id, "return", people["sm1"], comment="请补充订单号")
    statuses = db.session.scalars(sa.select(Timer.status).where(Timer.instance_id == inst.id)).all()
    assert set(statuses) == {"cancelled"}
    assert db.session.get(Instance, inst.id).due_at is None


def test_assignees_are_told_in_the_same_transaction(people, clock):
    inst = submitted(people)
    rows = db.session.execute(sa.select(Notification.user_id, Notification.kind)
                              .where(Notification.instance_id == inst.id)).all()
    # draft → the creator; store_review → both store managers of S1
    assert sorted(rows) == sorted([(people["a1"].id, "task"), (people["sm1"].id, "task"),
                                   (people["sm1asst"].id, "task")])


def test_role_must_cover_the_instance_store(people, clock):
    inst = submitted(people)
    with pytest.raises(NotPermitted) as e:
        engine.fire(inst.id, "approve", people["sm2"])  # manager of another store
    assert "S1" in e.value.message
    with pytest.raises(NotPermitted):
        engine.fire(inst.id, "approve", people["a1b"])  # right store, wrong role
    draft = engine.start("discount_request", "S1", people["a1"], REQUEST)
    with pytest.raises(NotPermitted):
        engine.fire(draft.id, "submit", people["a1b"])  # only the creator submits their own request
    # a regional manager's role covers the stores below; the other region's does not
    assert [t.trigger for t in engine.available_actions(inst, people["east"])] == ["return", "reject"]
    assert engine.available_actions(inst, people["south"]) == []
    assert engine.fire(inst.id, "reject", people["east"], comment="超出政策").state == "rejected"
    assert len(events(inst)) == 3
    assert len(events(draft)) == 1


def test_other_region_cannot_act(people, clock):
    inst = submitted(people, {**REQUEST, "discount_percent": "30"})
    engine.fire(inst.id, "approve", people["sm1"])
    with pytest.raises(NotPermitted):
        engine.fire(inst.id, "approve", people["south"])


def test_creator_cannot_approve_their_own_request(people, clock):
    inst = submitted_later(people, clock, "sm1asst")  # started as assistant, also store manager of S1
    with pytest.raises(NotPermitted) as e:
        engine.fire(inst.id, "approve", people["sm1asst"])
    assert e.value.details["reason"] == "segregation_of_duties"
    assert "approve" not in [t.trigger for t in engine.available_actions(inst, people["sm1asst"])]
    assert engine.fire(inst.id, "approve", people["sm1"]).state == "approved"


def test_delegate_acts_and_audit_records_both_people(people, clock):
    inst = submitted(people)
    delegate(people["sm1"], people["dep1"], clock.now() - timedelta(hours=1), clock.now() + timedelta(days=3))
    db.session.commit()
    assert [t.trigger for t in engine.available_actions(inst, people["dep1"])] == ["approve", "return", "reject"]
    engine.fire(inst.id, "approve", people["dep1"])
    last = events(inst)[-1]
    assert (last.actor.login, last.on_behalf_of.login) == ("dep1", "sm1")


def test_expired_delegation_gives_nothing(people, clock):
    inst = submitted(people)
    delegate(people["sm1"], people["dep1"], clock.now() - timedelta(days=3), clock.now() - timedelta(days=1))
    db.session.commit()
    with pytest.raises(NotPermitted):
        engine.fire(inst.id, "approve", people["dep1"])


def test_delegation_cannot_bypass_segregation(people, clock):
    """The manager hands their role to the requester: the requester still cannot approve their own request."""
    inst = submitted(people, by="a1")
    for manager in ("sm1", "sm1asst"):
        delegate(people[manager], people["a1"], clock.now() - timedelta(hours=1), clock.now() + timedelta(hours=9))
    db.session.commit()
    with pytest.raises(NotPermitted) as e:
        engine.fire(inst.id, "approve", people["a1"])
    assert e.value.details["reason"] == "segregation_of_duties"


def test_invalid_payload_writes_nothing(people, clock):
    with pytest.raises(InvalidPayload) as e:
        engine.start("discount_request", "S1", people["a1"], {**REQUEST, "discount_percent": "150", "x": 1})
    assert set(e.value.errors) == {"discount_percent", "x"}
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Instance)) == 0
    inst = engine.start("discount_request", "S1", people["a1"], REQUEST)
    with pytest.raises(InvalidPayload) as e:
        engine.fire(inst.id, "update", people["a1"], {"customer": "", "amount": "abc"})
    assert {"customer", "amount"} <= set(e.value.errors)
    inst = db.session.get(Instance, inst.id)
    assert (inst.version, inst.data["customer"]) == (1, "李女士")
    assert len(events(inst)) == 1


def test_missing_comment_is_refused(people, clock):
    inst = submitted(people)
    with pytest.raises(InvalidPayload) as e:
        engine.fire(inst.id, "return", people["sm1"], comment="  ")
    assert "comment" in e.value.errors
    assert db.session.get(Instance, inst.id).state == "store_review"


def test_edit_in_place_keeps_state_and_timers(people, clock):
    inst = engine.start("discount_request", "S1", people["a1"], REQUEST)
    inst = engine.fire(inst.id, "update", people["a1"], {**REQUEST, "customer": "王先生"})
    assert (inst.state, inst.state_seq, inst.version, inst.data["customer"]) == ("draft", 1, 2, "王先生")


def test_trigger_not_available_and_unknown_instance(people, clock):
    inst = engine.start("discount_request", "S1", people["a1"], REQUEST)
    with pytest.raises(NotAvailable) as e:
        engine.fire(inst.id, "approve", people["sm1"])
    assert e.value.details["state"] == "draft"
    with pytest.raises(UnknownInstance):
        engine.fire(999999, "submit", people["a1"])


def test_stale_expected_version_conflicts(people, clock):
    inst = engine.start("discount_request", "S1", people["a1"], REQUEST)
    engine.fire(inst.id, "update", people["a1"], REQUEST)
    with pytest.raises(VersionConflict) as e:
        engine.fire(inst.id, "submit", people["a1"], expected_version=1)
    assert e.value.details["version"] == 2


def test_starting_needs_a_start_role_at_the_unit(people, clock):
    with pytest.raises(NotPermitted):
        engine.start("discount_request", "S1", people["a2"], REQUEST)  # assistant of another store
    with pytest.raises(NotPermitted):
        engine.start("discount_request", "S1", people["acct"], REQUEST)  # no start role


def test_two_signers_must_be_different_people(people, clock):
    inst = engine.start("test_handover", "S1", people["sm1"], {"cash_counted": "100", "cash_expected": "100"})
    inst = engine.fire(inst.id, "sign_out", people["sm1"])
    assert inst.state == "open"
    with pytest.raises(NotPermitted) as e:
        engine.fire(inst.id, "sign_in", people["sm1"])
    assert "different person" in e.value.message
    with pytest.raises(NotAvailable):
        engine.fire(inst.id, "sign_out", people["dep1"])  # that signature is already given
    inst = engine.fire(inst.id, "sign_in", people["a1"])
    assert inst.state == "done"  # completed by itself
    history = [(e.trigger, e.actor.login if e.actor else "system") for e in events(inst)]
    assert history == [("start", "sm1"), ("sign_out", "sm1"), ("sign_in", "a1"), ("signed", "system")]
    signers = db.session.scalars(sa.select(Signature.user_id).where(Signature.instance_id == inst.id)).all()
    assert sorted(signers) == sorted([people["sm1"].id, people["a1"].id])


def test_discrepancy_needs_a_countersignature_by_a_third_person(people, clock):
    inst = engine.start("test_handover", "S1", people["dep1"], {"cash_counted": "90", "cash_expected": "100"})
    engine.fire(inst.id, "sign_out", people["dep1"])
    inst = engine.fire(inst.id, "sign_in", people["sm1"])
    assert inst.state == "countersign"
    with pytest.raises(NotPermitted):
        engine.fire(inst.id, "countersign", people["sm1"])  # one of the two signers
    assert engine.fire(inst.id, "countersign", people["sm1asst"]).state == "done"


def test_quorum_of_distinct_people(people, clock):
    inst = engine.start("test_quorum", "S1", people["a1"], {})
    engine.fire(inst.id, "vote", people["sm1"])
    with pytest.raises(NotPermitted):
        engine.fire(inst.id, "vote", people["sm1"])
    assert db.session.get(Instance, inst.id).state == "voting"
    assert engine.fire(inst.id, "vote", people["east"]).state == "carried"


def test_instances_stay_on_the_version_they_started_on(people, clock):
    registry.register(definitions.versioned(1, "完成"))
    old = engine.start("test_versioned", "S1", people["a1"], {})
    registry.register(definitions.versioned(2, "完成"))
    new = engine.start("test_versioned", "S1", people["a1"], {})
    assert (old.definition_version, new.definition_version) == (1, 2)
    assert engine.fire(old.id, "finish", people["a1"]).state == "done"
    assert engine.fire(new.id, "finish", people["a1"]).state == "review"


def test_inbox_lists_what_each_person_can_act_on(people, clock):
    draft = engine.start("discount_request", "S1", people["a1"], REQUEST)
    clock.advance(minutes=1)
    waiting = submitted(people, by="a1b")
    clock.advance(minutes=1)
    other_store = submitted(people, by="a2", unit="S2")
    assert [t.instance.id for t in engine.inbox(people["a1"])] == [draft.id]
    sm1_tasks = engine.inbox(people["sm1"])
    assert [t.instance.id for t in sm1_tasks] == [waiting.id]
    assert [a.trigger for a in sm1_tasks[0].actions] == ["approve", "return", "reject"]
    assert sm1_tasks[0].due_at == waiting.due_at
    assert [t.instance.id for t in engine.inbox(people["sm2"])] == [other_store.id]
    assert engine.inbox(people["south"]) == []
    clock.advance(hours=5)
    assert sm1_tasks[0].overdue(clock.now())
    engine.fire(waiting.id, "approve", people["sm1"])
    assert engine.inbox(people["sm1"]) == []


def test_the_system_can_start_and_fire(people, clock):
    """The scheduler starts instances and timers fire triggers as the system; the audit says so."""
    inst = engine.start("test_quorum", "S1", None, {})
    assert inst.created_by_id is None
    inst = engine.fire(inst, "carried", None)  # a system-only trigger; accepts the instance itself
    assert inst.state == "carried"
    assert [(e.trigger, e.actor_id) for e in events(inst)] == [("start", None), ("carried", None)]
    with pytest.raises(NotPermitted):
        engine.fire(engine.start("test_quorum", "S1", None, {}), "carried", people["sm1"])  # people cannot


def submitted_later(people, clock, by, unit="S1"):
    inst = engine.start("discount_request", unit, people[by], REQUEST)
    clock.advance(minutes=1)  # the draft's task to the creator is not the review's
    return engine.fire(inst.id, "submit", people[by])


def told(inst):
    """Whom the task of the step the instance is in was sent to."""
    return sorted(db.session.scalars(sa.select(Notification.user_id).where(
        Notification.instance_id == inst.id, Notification.kind == "task",
        Notification.created_at == inst.state_entered_at)))


def test_a_step_goes_only_to_people_who_may_take_it(people, clock):
    # sm1asst, a store manager who also sells, submits a request: the review is not theirs (never their own)
    inst = submitted_later(people, clock, "sm1asst")
    assert [h.user.login for h in engine.assignees(registry.get("discount_request"), inst)] == ["sm1"]
    assert told(inst) == [people["sm1"].id]


def test_when_every_holder_here_is_barred_the_step_goes_up_the_tree(people, clock):
    # S3's only store manager also sells and asks for a discount: the store manager covering the region reviews it
    org.grant(people["sm3"], "assistant", "S3")
    south_sm = org.add_user("southsm", "华南店长", "southsm@example.com", "pw", [("store_manager", "SOUTH")])
    db.session.commit()
    inst = submitted_later(people, clock, "sm3", "S3")
    assert told(inst) == [south_sm.id]
    assert engine.fire(inst.id, "approve", south_sm).state == "approved"
