"""Attachments on instances (multipart upload, list, download), with the instance's own visibility."""
from flask import current_app, send_file
from flask.views import MethodView
from flask_smorest import Blueprint
from flask_smorest.fields import Upload
from marshmallow import Schema, fields

from engine import attachments, queries
from web.api.auth import current_user
from web.api.common import errors
from web.api.present import user_ref
from web.api.schemas import UserRef

blp = Blueprint("api_attachments", __name__, url_prefix="/api/v1/instances",
                description="Files on an instance: photos of the cash sheet, complaint evidence.")


class UploadIn(Schema):
    file = Upload(required=True, metadata={"description": "JPEG, PNG, GIF, WebP or PDF"})


class AttachmentOut(Schema):
    id = fields.Integer(required=True)
    filename = fields.String(required=True)
    content_type = fields.String(required=True)
    size = fields.Integer(required=True)
    sha256 = fields.String(required=True)
    uploaded_by = fields.Nested(UserRef, allow_none=True)
    created_at = fields.DateTime(required=True)


def _out(a) -> dict:
    return {"id": a.id, "filename": a.filename, "content_type": a.content_type, "size": a.size, "sha256": a.sha256,
            "uploaded_by": user_ref(a.uploaded_by), "created_at": a.created_at}


def _limit() -> int:
    return int(current_app.config.get("ATTACHMENT_MAX_BYTES", attachments.MAX_BYTES))


def _root():
    return current_app.instance_path


@blp.route("/<id:instance_id>/attachments")
class Attachments(MethodView):
    @blp.response(200, AttachmentOut(many=True))
    @errors(blp, 401, 404)
    def get(self, instance_id):
        """The instance's attachments, oldest first."""
        inst = queries.visible_instance(instance_id, current_user())
        return [_out(a) for a in attachments.of(inst.id)]

    @blp.arguments(UploadIn, location="files")
    @blp.response(201, AttachmentOut)
    @errors(blp, 400, 401, 404, 413, 415, 422)
    def post(self, args, instance_id):
        """Upload a file (multipart field `file`); it shows in the instance's history."""
        inst = queries.visible_instance(instance_id, current_user())
        upload = args["file"]
        return _out(attachments.add(_root(), inst, current_user(), upload.filename, upload.stream, _limit()))


@blp.route("/<id:instance_id>/attachments/<id:attachment_id>")
class AttachmentFile(MethodView):
    @blp.response(200, {"type": "string", "format": "binary"}, content_type="application/octet-stream",
                  description="The file, with its sniffed Content-Type")
    @errors(blp, 401, 404)
    def get(self, instance_id, attachment_id):
        """Download an attachment."""
        inst = queries.visible_instance(instance_id, current_user())
        att = attachments.get(inst.id, attachment_id)
        return send_file(attachments.path(_root(), att), mimetype=att.content_type, as_attachment=True,
                         download_name=att.filename, max_age=0)
