"""Starting a workflow: the list of what the user may start, and a form from the workflow's start schema."""
from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required

import engine
from engine import pages, registry
from engine.errors import EngineError, InvalidPayload
from web.ui import bp, forms
from web.ui.auth import me
from web.ui.i18n import message, title


def _choices(name: str):
    for compiled, units in pages.startable(me()):
        if compiled.name == name:
            return compiled, units
    abort(404)


@bp.get("/start")
@login_required
def start_list():
    return render_template("start_list.html", startable=pages.startable(me()))


@bp.route("/start/<name>", methods=["GET", "POST"])
@login_required
def start(name: str):
    compiled, units = _choices(name)
    specs = forms.spec(compiled.wf.start_schema)
    values, errors, banner, status = {}, {}, None, 200
    if request.method == "POST":
        values = request.form.to_dict()
        unit = next((u for u in units if u.code == request.form.get("org_unit")), None)
        reader = forms.Reader(request.form, unit.timezone if unit else "Asia/Shanghai")
        data = reader.payload(specs)
        if unit is None:
            errors, status = {"org_unit": [_("Choose an org unit.")]}, 422
        else:
            try:
                inst = engine.start(name, unit, me(), data, request.form.get("comment") or None)
            except InvalidPayload as e:
                errors = {k: [message(m) for m in v] for k, v in reader.errors(e.errors).items()}
                status = 422
            except EngineError as e:
                banner, status = message(e.message), e.status
            else:
                flash(_("Started: %(t)s #%(id)s", t=title(compiled.wf.title), id=inst.id))
                return redirect(url_for("ui.instance", instance_id=inst.id))
    return render_template("start_form.html", compiled=compiled, units=units, specs=specs, values=values,
                           errors=errors, banner=banner, registry=registry), status
