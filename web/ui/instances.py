"""The instance page: data, the actions this user may take now (forms from their schemas), signatures,
pending deadlines, the history timeline and the state diagram; and the POST that fires one action."""
import dataclasses
import re
from dataclasses import dataclass, field
from datetime import datetime

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required

import engine
from engine import attachments, diagram, queries, registry
from engine.definition import Transition
from engine.errors import EngineError, InvalidPayload
from web.ui import bp, forms, sheets
from web.ui.auth import me
from web.ui.i18n import message, title, when

FAILURES = {
    "not_available": lambda: _("This action is not available now: the request may have moved on."),
    "version_conflict": lambda: _("Someone else changed this request first. This is its current state."),
    "not_permitted": lambda: _("You may not take this action on this request."),
    "duplicate": lambda: _("This already exists."),
    "unknown_instance": lambda: _("Not found, or not yours to see."),
}


@dataclass
class ActionForm:
    transition: Transition
    specs: list
    values: dict = field(default_factory=dict)
    errors: dict = field(default_factory=dict)
    upload: bool = False   # offers a CSV file instead of typing the table (stocktake book stock)

    @property
    def unplaced(self) -> list[str]:
        """Messages for no field of the form (cross-field checks, a bad CSV line): shown above it."""
        names = {s.name for s in self.specs} | {"comment"}
        return [f"{k}: {m}" if k not in ("_form", "_schema", "data") else m
                for k, msgs in self.errors.items() if k.split(".")[0] not in names for m in msgs]


def failure(e: EngineError) -> str:
    """An engine refusal in the page language."""
    known = FAILURES.get(e.code)
    if e.code == "not_available" and e.details.get("opens_at"):  # too early: say from when
        return _("You may sign from %(at)s.", at=when(datetime.fromisoformat(e.details["opens_at"]), "short"))
    if e.code == "not_permitted" and e.details.get("reason") == "segregation_of_duties":
        return _("You may not take this action: the same person may not do both steps (or sign twice).")
    return known() if known else message(e.message)


def _form(inst, t: Transition, values=None, errors=None) -> ActionForm:
    specs = _with_trainees(forms.spec(t.schema), inst.data.get("trainees"))
    if values is None and sheets.is_sheet(inst.workflow, t.trigger):
        values = sheets.prefill(inst.workflow, t.trigger, inst.data)
    elif values is None:
        values = forms.values_from(inst.data, specs) if t.dest is None and not t.signature else {}
        if any(s.name == "scores" and s.kind == "dict" for s in specs) and inst.data.get("trainees"):
            values["scores"] = "\n".join(f"{login}: " for login in inst.data["trainees"])  # one line each
    upload = inst.workflow == "stocktake" and t.trigger in ("load_book", "correct_book")
    return ActionForm(t, specs, values, errors or {}, upload)


def _with_trainees(specs: list, trainees) -> list:
    """A training cohort's forms pick the trainee from the cohort instead of typing a login."""
    if not trainees:
        return specs
    return [dataclasses.replace(s, kind="select", choices=tuple(trainees)) if s.name == "trainee" else s
            for s in specs]


def localized_diagram(compiled, state: str) -> str:
    """engine.diagram's mermaid text with state and trigger names replaced by their titles."""
    wf_title = compiled.wf.title
    text = diagram.mermaid(compiled, state).replace(f"\n{wf_title['en']}\n", f"\n{_quote(title(wf_title))}\n", 1)
    for s in compiled.wf.states:
        text = text.replace(f'state "{s.name}" as {s.name}', f'state "{_quote(title(s.title, s.name))}" as {s.name}')
    names = {t.trigger: title(t.title, t.trigger) for t in compiled.wf.transitions}

    def edge(m):
        labels = list(dict.fromkeys(names.get(x.strip(), x.strip()) for x in m.group(2).split("|")))
        return f"{m.group(1)}: {_quote(' / '.join(labels))}"

    return re.sub(r"^(\s*\S+ --> \S+): (.+)$", edge, text, flags=re.M)


def _quote(text: str) -> str:
    return re.sub(r'[":;#|<>{}]', " ", text)


def render(instance_id: int, failed: ActionForm | None = None, banner: str | None = None, status: int = 200):
    inst = queries.visible_instance(instance_id, me())
    compiled = registry.get(inst.workflow, inst.definition_version)
    actions = [failed if failed and failed.transition.trigger == t.trigger else _form(inst, t)
               for t in engine.available_actions(inst, me())]
    page = {
        "inst": inst, "compiled": compiled, "state": compiled.states[inst.state], "actions": actions,
        "owners": engine.assignees(compiled, inst), "opening_later": engine.opening_later(inst),
        "step_facts": engine.state_facts(inst),
        "deadlines": queries.pending_deadlines(inst),
        "signatures": queries.signatures(inst), "history": queries.full_history(inst.id),
        "attachments": attachments.of(inst.id),
        "diagram": localized_diagram(compiled, inst.state), "banner": banner,
        "triggers": {t.trigger: t.title or {"zh": "签字齐全", "en": "All signatures given"}
                     for t in compiled.wf.transitions},
    }
    return render_template("instance.html", **page), status


@bp.get("/instances/<int:instance_id>")
@login_required
def instance(instance_id: int):
    return render(instance_id)


@bp.post("/instances/<int:instance_id>/actions/<trigger>")
@login_required
def act(instance_id: int, trigger: str):
    inst = queries.visible_instance(instance_id, me())
    compiled = registry.get(inst.workflow, inst.definition_version)
    candidates = compiled.by_state_trigger.get((inst.state, trigger))
    if not candidates:
        return render(instance_id, banner=FAILURES["not_available"](), status=409)
    t = candidates[0]
    form = _form(inst, t, values=request.form.to_dict())
    sheet = sheets.is_sheet(inst.workflow, trigger)
    posted = sheets.counted_only(inst.workflow, trigger, request.form) if sheet else request.form
    reader = forms.Reader(posted, inst.org_unit.timezone)
    data = reader.payload(form.specs)
    comment = (request.form.get("comment") or "").strip() or None
    version = request.form.get("version", "")
    try:
        if form.upload and request.files.get("file") and request.files["file"].filename:
            from workflows.stocktake import parse_book_file

            engine.may_fire(inst, trigger, me())  # who may load it, before the file is read
            raw = request.files["file"].read()
            data = {"book": parse_book_file(raw, current_app.config["IMPORT_MAX_ROWS"])}
        engine.fire(inst.id, trigger, me(), data, comment, int(version) if version.isdigit() else None)
    except InvalidPayload as e:
        form.errors = {k: [message(m) for m in v] for k, v in reader.errors(e.errors).items()}
        return render(instance_id, failed=form, banner=_("Please correct the marked fields."), status=422)
    except EngineError as e:
        return render(instance_id, failed=form, banner=failure(e), status=e.status)
    flash(_("Done: %(action)s", action=title(t.title, t.trigger)))
    return redirect(url_for("ui.instance", instance_id=instance_id))
