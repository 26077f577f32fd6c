"""The incidents page: failed RQ jobs and undeliverable emails, retried or resolved by administrators only,
through CSRF-protected POSTs, each action logged."""
import logging

import pytest
import sqlalchemy as sa
from rq.job import Job
from rq.registry import FailedJobRegistry

import engine
from engine import incidents, mail, org
from engine.admin import UnknownObject
from engine.db import db
from engine.errors import NotAvailable, NotPermitted
from engine.history import history as instance_history
from engine.models import Notification

pytest_plugins = ["tests.ui_fixtures"]

REQUEST = {"customer": "李女士", "amount": "1280.00", "discount_percent": "15", "reason": "老客户"}


def broken_job():
    raise ZeroDivisionError("a test job that always fails")


@pytest.fixture
def south_admin(people):
    """An administrator of region SOUTH only (the S1 store is in EAST)."""
    user = org.add_user("radmin", "Radmin", "radmin@example.com", "pw-radmin", [("admin", "SOUTH")])
    db.session.commit()
    return user


def failed_email(people, smtp) -> Notification:
    """A discount request at S1 whose task email to the store manager is refused by the mail server."""
    smtp.refuse.add("sm1@example.com")
    inst = engine.start("discount_request", "S1", people["a1"], REQUEST)
    engine.fire(inst.id, "submit", people["a1"])
    mail.send_pending()
    smtp.refuse.clear()
    return db.session.scalar(sa.select(Notification).where(Notification.status == "failed"))


def test_failed_email_retried_by_an_admin_and_delivered(app, people, smtp, rq_queue, signed_in, south_admin, caplog):
    n = failed_email(people, smtp)
    assert n.user.login == "sm1" and "recipient refused" in n.last_error
    admin = signed_in("admin")
    assert 'href="/admin/incidents"' in admin.get("/admin").get_data(as_text=True)  # linked from administration
    page = admin.get("/admin/incidents")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "无法送达的邮件 (1)" in text and "sm1@example.com" in text
    assert f'href="/instances/{n.instance_id}"' in text and "recipient refused" in text
    assert "失败的后台任务 (0)" in text  # the company's administrator sees the jobs too

    url = f"/admin/incidents/emails/{n.id}/retry"
    assert admin.post(url, csrf=None).status_code == 400  # no CSRF token: refused, nothing changed
    assert signed_in("sm1").post(url).status_code == 403  # not an administrator
    assert signed_in("radmin").post(url).status_code == 404  # another region's administrator
    assert signed_in("sm1").get("/admin/incidents").status_code == 404
    with caplog.at_level(logging.INFO, logger="engine.incidents"):
        r = admin.post(url)
    assert r.status_code == 302 and r.headers["Location"].endswith("/admin/incidents")
    assert f"incident: admin retried email #{n.id}" in caplog.text
    db.session.expire_all()
    assert (n.status, n.attempts, n.sent_at) == ("pending", 0, None)
    assert "signoff-mail" in rq_queue.job_ids  # a mail sender was woken
    assert "该邮件将重新发送" in admin.get("/admin/incidents").get_data(as_text=True)

    smtp.messages.clear()
    assert mail.send_pending().sent == 1
    assert [m["To"].addresses[0].username for m in smtp.messages] == ["sm1"]
    assert incidents.failed_emails(people["admin"]) == []
    assert admin.post(url).status_code == 409  # nothing left to retry


def test_failed_email_resolved_leaves_the_list_but_not_the_history(app, people, smtp, signed_in, south_admin):
    n = failed_email(people, smtp)
    with pytest.raises(UnknownObject):
        incidents.resolve_email(south_admin, n.id)
    with pytest.raises(NotPermitted):
        incidents.failed_emails(people["sm1"])
    assert incidents.failed_emails(south_admin) == []
    people["admin"].locale = "en"
    db.session.commit()
    admin = signed_in("admin")
    r = admin.post(f"/admin/incidents/emails/{n.id}/resolve")
    assert r.status_code == 302
    page = admin.get("/admin/incidents").get_data(as_text=True)
    assert "Emails that could not be delivered (0)" in page and "history still shows it failed" in page
    assert incidents.failed_emails(people["admin"]) == []
    db.session.expire_all()
    assert n.status == "failed" and n.context["resolved"]["by"] == "admin"
    entries = instance_history(n.instance_id)
    assert [e.notification.id for e in entries if e.kind == "mail_failed"] == [n.id]
    with pytest.raises(NotAvailable):
        incidents.resolve_email(people["admin"], n.id)  # once is enough
    assert mail.send_pending().sent == 0  # resolved is not re-sent


def test_failed_jobs_retried_and_resolved_by_company_admins_only(app, people, rq_queue, signed_in, south_admin,
                                                                 caplog):
    from engine.jobs import AppWorker

    AppWorker.app = app
    job = rq_queue.enqueue(broken_job, job_id="test-broken")
    failed = FailedJobRegistry(queue=rq_queue)

    def run():
        AppWorker([rq_queue], connection=rq_queue.connection).work(burst=True, logging_level="ERROR")

    run()
    assert job.id in failed
    admin = signed_in("admin")
    assert 'href="/admin/incidents"' in admin.get("/admin").get_data(as_text=True)  # linked from administration
    page = admin.get("/admin/incidents").get_data(as_text=True)
    assert "失败的后台任务 (1)" in page and "test_ops_incidents.broken_job" in page
    assert "ZeroDivisionError: a test job that always fails" in page

    regional = signed_in("radmin")
    assert "失败的后台任务" not in regional.get("/admin/incidents").get_data(as_text=True)
    assert regional.post(f"/admin/incidents/jobs/{job.id}/retry").status_code == 403
    assert admin.post(f"/admin/incidents/jobs/{job.id}/retry", csrf="forged").status_code == 400
    assert job.id in failed

    with caplog.at_level(logging.INFO, logger="engine.incidents"):
        assert admin.post(f"/admin/incidents/jobs/{job.id}/retry").status_code == 302
    assert "incident: admin retried failed job test-broken" in caplog.text
    assert job.id not in failed and job.id in rq_queue.job_ids  # back on the queue
    run()  # fails again
    assert job.id in failed
    assert admin.post(f"/admin/incidents/jobs/{job.id}/resolve").status_code == 302
    assert job.id not in failed and not Job.exists(job.id, connection=rq_queue.connection)
    assert admin.post(f"/admin/incidents/jobs/{job.id}/resolve").status_code == 404
    assert "失败的后台任务 (0)" in admin.get("/admin/incidents").get_data(as_text=True)
