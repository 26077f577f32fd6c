"""我的待办: what the user can act on now — overdue first with how overdue, due soon, then the rest — with
counts per workflow, filters, and bulk actions for the steps that need no data (each fired and checked one
by one through the engine, each result reported)."""
from dataclasses import dataclass
from datetime import timedelta

from flask import redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required

import engine
from engine import clock, queries, registry
from engine.errors import EngineError
from web.ui import bp, forms
from web.ui.auth import me
from web.ui.instances import failure

SOON = timedelta(hours=24)
BULK_MAX = 100


@dataclass
class Row:
    task: object
    bucket: str          # overdue, soon, later
    seconds: float       # overdue by / due in (seconds), 0 without a deadline
    bulk: list           # triggers that may be fired in bulk (no payload)


def bulk_ready(t) -> bool:
    """An action needs no data of its own and is no signature: it may be fired for several requests at once.
    A signature attests to one sheet the signer has looked at, so it is always given on that sheet's page."""
    return not t.signature and not forms.spec(t.schema)


def _one_at_a_time(inst, trigger: str) -> bool:
    """True when `trigger` from the instance's state is no bulk action (a signature, or it needs data)."""
    found = registry.get(inst.workflow, inst.definition_version).by_state_trigger.get((inst.state, trigger))
    return bool(found) and not bulk_ready(found[0])


def _rows():
    now = clock.now()
    rows = []
    for task in engine.inbox(me()):
        due = task.due_at
        if due is None:
            bucket, seconds = "later", 0
        elif due <= now:
            bucket, seconds = "overdue", (now - due).total_seconds()
        else:
            bucket, seconds = ("soon" if due - now <= SOON else "later"), (due - now).total_seconds()
        rows.append(Row(task, bucket, seconds, [t.trigger for t in task.actions if bulk_ready(t)]))
    return rows


@bp.get("/")
@login_required
def index():
    return redirect(url_for("ui.inbox"))


@bp.get("/inbox")
@login_required
def inbox(results=None, status=200):
    rows = _rows()
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.task.instance.workflow] = counts.get(r.task.instance.workflow, 0) + 1
    wf, due, unit = request.args.get("workflow"), request.args.get("due"), request.args.get("unit", "").strip()
    shown = [r for r in rows if (not wf or r.task.instance.workflow == wf) and (not due or r.bucket == due)
             and (not unit or r.task.instance.org_unit.code == unit)]
    buckets = {b: [r for r in shown if r.bucket == b] for b in ("overdue", "soon", "later")}
    bulk = {}  # trigger → (transition, requires a comment, the requests it would be fired on)
    for r in shown:
        for t in r.task.actions:
            if t.trigger in r.bulk:
                bulk.setdefault(t.trigger, (t, t.requires_comment, []))[2].append(r.task.instance)
    titles = {c.name: c.wf.title for c in registry.latest()}
    return render_template("inbox.html", buckets=buckets, counts=counts, titles=titles, total=len(rows),
                           bulk=bulk, results=results, filters={"workflow": wf, "due": due, "unit": unit}), status


@bp.post("/inbox/bulk")
@login_required
def bulk():
    trigger = request.form.get("trigger", "")
    comment = (request.form.get("comment") or "").strip() or None
    ids = [int(i) for i in request.form.getlist("ids") if i.isdigit()][:BULK_MAX]
    results = []
    for instance_id in ids:
        try:
            inst = queries.visible_instance(instance_id, me())  # out of scope: "not found", like a missing one
            if _one_at_a_time(inst, trigger):
                results.append((instance_id, False, _("This action is taken one request at a time, on its page.")))
                continue
            inst = engine.fire(instance_id, trigger, me(), {}, comment)
            results.append((instance_id, True, inst.state))
        except EngineError as e:
            results.append((instance_id, False, failure(e)))
    return inbox(results=results, status=200 if ids else 400)
