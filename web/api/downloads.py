"""An instance's report as files: the stocktake report (盘存报表) as .xlsx and as a printable HTML page, with the
instance's own visibility (404 to whoever may not see it)."""
import io

from flask import send_file
from flask.views import MethodView
from flask_smorest import Blueprint

from engine import queries
from web.api.auth import current_user
from web.api.common import errors
from web.api.i18n import select_locale
from workflows import stocktake_report

blp = Blueprint("api_downloads", __name__, url_prefix="/api/v1/instances",
                description="Reports as files: a stocktake's report as Excel and as a printable page.")


def _send(instance_id: int, ext: str):
    inst = queries.visible_instance(instance_id, current_user())
    name, mime, content = stocktake_report.download(inst, ext, select_locale())
    return send_file(io.BytesIO(content), mimetype=mime, as_attachment=ext == "xlsx", download_name=name, max_age=0)


@blp.route("/<id:instance_id>/report.xlsx")
class ReportXlsx(MethodView):
    @blp.response(200, {"type": "string", "format": "binary"}, content_type=stocktake_report.XLSX,
                  description="The stocktake report as an Excel workbook, headers in the caller's language")
    @errors(blp, 401, 404)
    def get(self, instance_id):
        """Download a stocktake's report (盘存报表) as .xlsx: per line the quantity and money variance and the
        reason, the totals, who counted and who approved."""
        return _send(instance_id, "xlsx")


@blp.route("/<id:instance_id>/report.html")
class ReportHtml(MethodView):
    @blp.response(200, {"type": "string"}, content_type="text/html",
                  description="The stocktake report as a print-ready page (the browser's print makes the PDF)")
    @errors(blp, 401, 404)
    def get(self, instance_id):
        """The stocktake report (盘存报表) as a printable HTML page."""
        return _send(instance_id, "html")
