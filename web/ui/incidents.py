"""The incidents page for administrators: failed background jobs and undeliverable emails, each with retry and
resolve. Every action is a POST carrying the CSRF token; engine.incidents checks who may do what and logs it."""
from flask import flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import login_required

from engine import incidents
from web.ui import bp
from web.ui.auth import me


@bp.get("/admin/incidents")
@login_required
def incidents_page():
    emails = incidents.failed_emails(me())  # NotPermitted (shown as 404) for anyone who is not an administrator
    jobs = incidents.failed_jobs(me()) if incidents.may_see_jobs(me()) else None
    return render_template("incidents.html", jobs=jobs, emails=emails)


def _done(text: str):
    flash(text)
    return redirect(url_for("ui.incidents_page"))


@bp.post("/admin/incidents/jobs/<job_id>/retry")
@login_required
def retry_job(job_id: str):
    incidents.retry_job(me(), job_id)
    return _done(_("The job was put back on the queue."))


@bp.post("/admin/incidents/jobs/<job_id>/resolve")
@login_required
def resolve_job(job_id: str):
    incidents.resolve_job(me(), job_id)
    return _done(_("The job was removed from the list."))


@bp.post("/admin/incidents/emails/<int:notification_id>/retry")
@login_required
def retry_email(notification_id: int):
    incidents.retry_email(me(), notification_id)
    return _done(_("The email will be sent again."))


@bp.post("/admin/incidents/emails/<int:notification_id>/resolve")
@login_required
def resolve_email(notification_id: int):
    incidents.resolve_email(me(), notification_id)
    return _done(_("The email was marked resolved; the instance's history still shows it failed."))
