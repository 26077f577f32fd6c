"""Helpers for the workflow tests: fire and expect a refusal that writes nothing; run the deadline CLI."""
import pytest
import sqlalchemy as sa

import engine
from engine.db import db
from engine.models import AuditEvent, Instance


def reload(inst) -> Instance:
    db.session.rollback()
    return db.session.get(Instance, inst.id, populate_existing=True)


def trail(inst) -> list[tuple]:
    """(trigger, actor login or 'system', to_state) of each audit event."""
    events = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.instance_id == inst.id)
                                .order_by(AuditEvent.seq)).all()
    return [(e.trigger, e.actor.login if e.actor else "system", e.to_state) for e in events]


def refused(error, inst, trigger, actor, data=None, comment=None):
    """Firing must raise `error` and change nothing: same state, version and audit trail."""
    before = reload(inst)
    state, version, events = before.state, before.version, trail(before)
    with pytest.raises(error) as caught:
        engine.fire(inst.id, trigger, actor, data, comment)
    after = reload(inst)
    assert (after.state, after.version, trail(after)) == (state, version, events)
    return caught.value


def run_due(app, local_time: str) -> str:
    """`flask --app wsgi timers run-due --now …` (Shanghai time when no offset is given)."""
    result = app.test_cli_runner().invoke(args=["timers", "run-due", "--now", local_time])
    assert result.exit_code == 0, result.output
    db.session.rollback()
    db.session.expire_all()
    return result.output


def mails(smtp, prefix: str) -> list[str]:
    """The logins that received a mail whose subject starts with `prefix`, sorted."""
    return sorted(m["To"].addresses[0].username for m in smtp.messages if str(m["Subject"]).startswith(prefix))
