"""The audit trail is append-only and hash-chained: `audit verify` names any event changed or removed
behind the app's back."""
import pytest
import sqlalchemy as sa

import engine
from engine.db import db
from engine.models import AuditEvent

REQUEST = {"customer": "李女士", "amount": "1280.00", "discount_percent": "15", "reason": "老客户"}


def verify(app, *args):
    return app.test_cli_runner().invoke(args=["audit", "verify", *args])


@pytest.fixture
def trail(people, clock):
    first = engine.start("discount_request", "S1", people["a1"], REQUEST, comment="生日")
    engine.fire(first.id, "submit", people["a1"])
    engine.fire(first.id, "approve", people["sm1"])
    second = engine.start("discount_request", "S2", people["a2"], REQUEST)
    engine.fire(second.id, "submit", people["a2"])
    return first, second


def events(inst):
    return db.session.scalars(sa.select(AuditEvent).where(AuditEvent.instance_id == inst.id)
                              .order_by(AuditEvent.seq)).all()


def test_each_event_is_chained_to_the_one_before(app, trail):
    first, _ = trail
    chain = events(first)
    assert chain[0].prev_hash is None and all(e.hash and len(e.hash) == 64 for e in chain)
    assert [e.prev_hash for e in chain[1:]] == [e.hash for e in chain[:-1]]
    r = verify(app)
    assert r.exit_code == 0 and "5 audit events checked, 0 problem(s)" in r.output


def test_a_row_changed_or_removed_behind_the_apps_back_is_named(app, trail):
    first, second = trail
    with db.engine.begin() as conn:  # someone with database access, not the app
        conn.execute(sa.text("UPDATE audit_events SET comment = '改过' WHERE instance_id = :i AND seq = 1"),
                     {"i": first.id})
        conn.execute(sa.text("DELETE FROM audit_events WHERE instance_id = :i AND seq = 2"), {"i": second.id})
    r = verify(app)
    assert r.exit_code == 1
    assert f"instance {first.id}, event 1 (id {events(first)[0].id}): changed after it was written" in r.output
    assert f"instance {second.id}, event 2: missing (the instance is at version 2): removed" in r.output
    assert verify(app, "--instance", str(first.id)).output.count("problem") == 1


def test_no_code_path_updates_or_deletes_an_event(trail):
    first, _ = trail
    event = events(first)[0]
    event.comment = "rewritten"
    with pytest.raises(RuntimeError, match="append-only"):
        db.session.commit()
    db.session.rollback()
    db.session.delete(events(first)[0])
    with pytest.raises(RuntimeError, match="append-only"):
        db.session.flush()
    db.session.rollback()
    with pytest.raises(RuntimeError, match="append-only"):
        db.session.execute(sa.delete(AuditEvent).where(AuditEvent.instance_id == first.id))
    with pytest.raises(RuntimeError, match="append-only"):
        db.session.execute(sa.update(AuditEvent).values(comment="x"))
    db.session.rollback()
    assert len(events(first)) == 3


def test_the_migration_gives_existing_instances_their_chain_head(app, trail, people):
    from flask_migrate import downgrade, upgrade

    from engine.models import Instance

    _, second = trail
    db.session.commit()
    downgrade(revision="a1c4e2f9b7d3")  # instances without a chain head, as before the migration
    upgrade()
    db.session.expire_all()
    assert db.session.get(Instance, second.id).audit_hash == events(second)[-1].hash
    engine.fire(second.id, "withdraw", people["a2"])  # the next event chains on from the head it was given
    r = verify(app)
    assert r.exit_code == 0 and "6 audit events checked, 0 problem(s)" in r.output
