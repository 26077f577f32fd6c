"""Mail delivery: retried with backoff while SMTP is down, delivered once when it is back; a permanent
refusal ends as failed, visibly (CLI and the instance's history)."""
from datetime import timedelta

import sqlalchemy as sa

import engine
from engine import mail
from engine.db import db
from engine.models import Notification

REQUEST = {"customer": "李女士", "amount": "1280.00", "discount_percent": "15", "reason": "老客户"}


def statuses():
    db.session.rollback()
    return sorted(db.session.scalars(sa.select(Notification.status)).all())


def test_smtp_down_then_back_delivers_each_once(people, clock, smtp):
    engine.start("discount_request", "S1", people["a1"], REQUEST)  # one task email, to a1
    smtp.stop()
    outcome = mail.send_pending()
    assert (outcome.sent, outcome.retrying) == (0, 1)
    n = db.session.scalars(sa.select(Notification)).one()
    assert (n.status, n.attempts, n.next_attempt_at) == ("pending", 1, clock.now() + timedelta(seconds=30))
    assert "Connection" in n.last_error or "refused" in n.last_error.lower()
    clock.advance(seconds=10)
    assert mail.send_pending().retrying == 0  # not due again yet: backoff
    clock.advance(seconds=20)
    assert mail.send_pending().retrying == 1  # second attempt, still down
    db.session.rollback()
    assert db.session.get(Notification, n.id, populate_existing=True).next_attempt_at == clock.now() + timedelta(
        minutes=2)
    smtp.start()
    clock.advance(minutes=2)
    assert mail.send_pending().sent == 1
    assert mail.send_pending().sent == 0
    assert len(smtp.messages) == 1 and statuses() == ["sent"]


def test_permanent_refusal_fails_visibly(app, people, clock, smtp):
    smtp.refuse.add("a1@example.com")
    inst = engine.start("discount_request", "S1", people["a1"], REQUEST)
    engine.fire(inst.id, "submit", people["a1"])  # task mails to the two S1 store managers: delivered
    outcome = mail.send_pending()
    assert (outcome.sent, outcome.failed) == (2, 1)
    assert statuses() == ["failed", "sent", "sent"]
    out = app.test_cli_runner().invoke(args=["mail", "failed"]).output
    assert f"instance {inst.id}  task  to a1 <a1@example.com>  after 1 attempt(s): recipient refused" in out
    kinds = [(e.kind, e.event.trigger if e.event else e.notification.user.login) for e in engine.history(inst.id)]
    assert kinds == [("event", "start"), ("event", "submit"), ("mail_failed", "a1")]


def test_giving_up_after_the_last_retry(people, clock, smtp):
    engine.start("discount_request", "S1", people["a1"], REQUEST)
    smtp.stop()
    for step in [*mail.BACKOFF, timedelta(0)]:
        mail.send_pending()
        clock.advance(seconds=step.total_seconds())
    n = db.session.scalars(sa.select(Notification).execution_options(populate_existing=True)).one()
    assert (n.status, n.attempts) == ("failed", len(mail.BACKOFF) + 1)
    smtp.start()
    clock.advance(days=1)
    assert mail.send_pending().sent == 0 and smtp.messages == []


def test_names_with_line_breaks_never_break_mail(people, clock, smtp):
    """Stored before names were validated (or written behind the app's back): a CR/LF in a unit's or a person's
    name must not fail every email about that store, nor add a header (Bcc) to it."""
    from engine.org import unit_by_code

    unit_by_code("S1").name = "杭州\r\nBcc: x@evil.example"
    people["sm1"].name = "店长\r\nBcc: y@evil.example"
    people["a1"].name = "店员\x1b\x7f甲"
    db.session.commit()
    inst = engine.start("discount_request", "S1", people["a1"], REQUEST)
    engine.fire(inst.id, "submit", people["a1"])
    outcome = mail.send_pending()
    assert (outcome.sent, outcome.retrying, outcome.failed) == (3, 0, 0)
    assert statuses() == ["sent", "sent", "sent"]
    for m in smtp.messages:
        assert m["Bcc"] is None and m["Cc"] is None
        assert [a.addr_spec for a in m["To"].addresses] in (["a1@example.com"], ["sm1@example.com"],
                                                            ["sm1asst@example.com"])
        assert "\n" not in str(m["Subject"]) and "杭州 Bcc: x@evil.example" in str(m["Subject"])
    [to_sm1] = smtp.to("sm1@example.com")
    assert to_sm1["To"].addresses[0].display_name == "店长 Bcc: y@evil.example"
    assert "店长 Bcc: y@evil.example" in to_sm1.get_body(("plain",)).get_content()


def test_a_stored_address_with_a_line_break_fails_for_good_and_adds_nobody(people, clock, smtp):
    people["a1"].email = "a1@example.com\r\nBcc: x@evil.example"
    db.session.commit()
    engine.start("discount_request", "S1", people["a1"], REQUEST)
    outcome = mail.send_pending()
    assert (outcome.sent, outcome.retrying, outcome.failed) == (0, 0, 1)  # no retry can fix an address
    n = db.session.scalars(sa.select(Notification).execution_options(populate_existing=True)).one()
    assert n.status == "failed" and "not a valid email address" in n.last_error
    assert smtp.messages == []
