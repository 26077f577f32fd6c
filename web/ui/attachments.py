"""Attachments on the instance page: upload (photos of the cash sheet, complaint evidence) and view; a stocktake's
report as files. Whoever may
see the instance may see and add its attachments; engine.attachments checks size and sniffs the type."""
import io

from flask import current_app, flash, redirect, request, send_file, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import login_required

from engine import attachments, queries
from engine.errors import EngineError
from web.ui import bp
from web.ui.auth import me
from web.ui.instances import render
from workflows import stocktake_report

UPLOAD_FAILURES = {
    "too_large": lambda mb: _("The file is too large (at most %(mb)s MB).", mb=mb),
    "unsupported_media_type": lambda mb: _("Only photos (JPEG, PNG, GIF, WebP) and PDF files can be attached."),
}


def _limit() -> int:
    return int(current_app.config.get("ATTACHMENT_MAX_BYTES", attachments.MAX_BYTES))


@bp.post("/instances/<int:instance_id>/attachments")
@login_required
def upload(instance_id: int):
    inst = queries.visible_instance(instance_id, me())
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return render(instance_id, banner=_("Choose a file to attach."), status=422)
    try:
        att = attachments.add(current_app.instance_path, inst, me(), upload.filename, upload.stream, _limit())
    except EngineError as e:
        known = UPLOAD_FAILURES.get(e.code)
        text = known(_limit() // (1024 * 1024)) if known else _("The file is empty.")
        return render(instance_id, banner=text, status=e.status)
    flash(_("Attached: %(name)s", name=att.filename))
    return redirect(url_for("ui.instance", instance_id=instance_id) + "#attachments")


@bp.get("/instances/<int:instance_id>/attachments/<int:attachment_id>")
@login_required
def attachment(instance_id: int, attachment_id: int):
    inst = queries.visible_instance(instance_id, me())
    att = attachments.get(inst.id, attachment_id)
    inline = att.content_type.startswith("image/") and request.args.get("inline") == "1"
    response = send_file(attachments.path(current_app.instance_path, att), mimetype=att.content_type,
                         as_attachment=not inline, download_name=att.filename, max_age=0)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'"
    return response


@bp.get("/instances/<int:instance_id>/report.<any(xlsx, html):ext>")
@login_required
def report(instance_id: int, ext: str):
    """A stocktake's report (盘存报表) as .xlsx or as a printable page, in the reader's language."""
    inst = queries.visible_instance(instance_id, me())
    name, mime, content = stocktake_report.download(inst, ext, "en" if str(get_locale()) == "en" else "zh")
    response = send_file(io.BytesIO(content), mimetype=mime, as_attachment=ext == "xlsx", download_name=name,
                         max_age=0)
    response.headers["X-Content-Type-Options"] = "nosniff"
    # the printable page styles itself inline and runs nothing
    response.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    return response
