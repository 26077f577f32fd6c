"""The manager dashboard: overdue steps by store and person, and time in each step (median / p90 working hours,
share overdue) as bar charts drawn in CSS — all from engine/reports.py."""
from datetime import timedelta

from flask import render_template, request
from flask_login import login_required

from engine import clock, registry, reports
from engine.errors import InvalidInput
from web.ui import bp
from web.ui.auth import me


@bp.get("/dashboard")
@login_required
def dashboard():
    overdue = reports.overdue(me())
    by_unit: dict[str, int] = {}
    by_person: dict[str, int] = {}
    for row in overdue:
        by_unit[row.org_unit.name] = by_unit.get(row.org_unit.name, 0) + row.count
        for holder in row.owners:
            by_person[holder.user.name] = by_person.get(holder.user.name, 0) + row.count
    names = [c.name for c in registry.latest()]
    workflow = request.args.get("workflow") if request.args.get("workflow") in names else names[0]
    days = request.args.get("days", "90")
    days = int(days) if days.isdigit() and 0 < int(days) <= 366 else 90
    now = clock.now()
    try:
        steps = reports.sla(me(), workflow, now - timedelta(days=days), now + timedelta(seconds=1))
    except InvalidInput:
        steps = []
    top = max([s.p90_hours or 0 for s in steps] + [1])
    return render_template("dashboard.html", overdue=overdue, by_unit=by_unit, by_person=by_person, steps=steps,
                           top=top, workflow=workflow, workflows=registry.latest(), days=days,
                           most=max(list(by_unit.values()) + list(by_person.values()) + [1]))
