"""The manager dashboard: overdue steps by store and person, and time in each step (median / p90 working hours,
share overdue) as bar charts drawn in CSS — all from engine/reports.py."""
import re
from datetime import timedelta

from flask import render_template, request
from flask_login import login_required

from engine import clock, queries, registry, reports
from engine.errors import InvalidInput
from web.ui import bp
from web.ui.auth import me


def plan_vs_actual(month: str) -> list[dict]:
    """Each visible rep's plan for `month`: targets, actuals (once recorded) and achievement, by rep."""
    rows = []
    for inst in queries.list_instances(me(), workflow="monthly_plan", q=month, limit=200).items:
        if inst.data.get("month") != month or inst.state == "rejected":
            continue
        state = registry.get(inst.workflow, inst.definition_version).states[inst.state]
        rows.append({"inst": inst, "rep": inst.created_by.name if inst.created_by else "", "state": state,
                     "targets": inst.data.get("targets") or {}, "actuals": inst.data.get("actuals") or {},
                     "achievement": inst.data.get("achievement") or {}})
    return sorted(rows, key=lambda r: r["rep"])


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
    month = request.args.get("month") or f"{now.year:04d}-{now.month:02d}"
    plans = plan_vs_actual(month if re.fullmatch(r"\d{4}-\d{2}", month) else f"{now.year:04d}-{now.month:02d}")
    return render_template("dashboard.html", overdue=overdue, by_unit=by_unit, by_person=by_person, steps=steps,
                           top=top, workflow=workflow, workflows=registry.latest(), days=days, month=month,
                           plans=plans,
                           most=max(list(by_unit.values()) + list(by_person.values()) + [1]))
