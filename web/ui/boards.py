"""Boards across instances: the complaint board (open complaints by severity and age). Listing and visibility
come from engine.queries, the same rule as the API."""
from flask import render_template
from flask_login import login_required

from engine import clock, queries, registry
from web.ui import bp
from web.ui.auth import me

SEVERITIES = ("critical", "high", "medium", "low")
BOARD_SIZE = 200


def open_instances(workflow: str, limit: int = BOARD_SIZE) -> list:
    """The newest `limit` instances of `workflow` the user may see, without the finished ones."""
    compiled = registry.get(workflow)
    finals = {s.name for s in compiled.wf.states if s.final}
    return [i for i in queries.list_instances(me(), workflow=workflow, limit=limit).items if i.state not in finals]


@bp.get("/boards/complaints")
@login_required
def complaint_board():
    now = clock.now()
    items = open_instances("complaint")
    columns = {s: sorted([i for i in items if i.data.get("severity") == s], key=lambda i: i.created_at)
               for s in SEVERITIES}
    ages = {i.id: (now - i.created_at).total_seconds() for i in items}
    return render_template("complaint_board.html", columns=columns, ages=ages, now=now,
                           compiled=registry.get("complaint"))
