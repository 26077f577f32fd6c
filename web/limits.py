"""How large a request may be. Flask refuses a body over MAX_CONTENT_LENGTH (413) before anything reads or parses
it; here that is JSON_MAX_BYTES, for JSON bodies and forms alike (MAX_FORM_MEMORY_SIZE bounds each text field of
a multipart form the same way). The few routes that take a file raise their own request's limit to the file
limit (ATTACHMENT_MAX_BYTES) for a multipart body: the file may be large, the fields around it still may not.
A refused body is a 413 in the API's error shape under /api/, and a page that says what happened elsewhere.
Caps on single fields and lists are in the schemas (engine/limits.py)."""
from flask import current_app, render_template, request
from werkzeug.exceptions import RequestEntityTooLarge

MULTIPART_OVERHEAD = 64 * 1024  # an upload's boundaries, part headers and the small fields posted with it

# The endpoints that take a file (multipart): attachments and a stocktake's book stock CSV, in the API and on the
# instance page (whose book stock CSV comes with the load_book action's form).
UPLOADS = frozenset({"api_attachments.Attachments", "api_imports.BookStock", "ui.upload", "ui.act"})


def upload_limit() -> int:
    """The largest file an upload route accepts, in bytes."""
    return int(current_app.config["ATTACHMENT_MAX_BYTES"])


def _bound_request() -> None:
    # Only a multipart body carries a file; each of its text parts stays within MAX_FORM_MEMORY_SIZE.
    if request.method == "POST" and request.endpoint in UPLOADS and request.mimetype == "multipart/form-data":
        request.max_content_length = upload_limit() + MULTIPART_OVERHEAD


def too_large(e: RequestEntityTooLarge):
    """413, saying the limit: the API's error shape, or the error page."""
    limit = request.max_content_length
    if limit and (request.content_length or 0) <= limit:  # the body was allowed; one form field was not
        limit = request.max_form_memory_size
    if request.path.startswith("/api/"):
        from web.api.errors import payload

        detail = f"The request is larger than the limit of {limit} bytes." if limit else None
        return payload(413, "too_large", detail, details={"max_bytes": limit} if limit else None), 413
    megabytes = f"{limit / (1024 * 1024):.1f}".removesuffix(".0") if limit else ""
    return render_template("error.html", status=413, error=e, megabytes=megabytes), 413


def init_app(app) -> None:
    """Set the app-wide limits and answer a refused body."""
    app.config["MAX_CONTENT_LENGTH"] = app.config["JSON_MAX_BYTES"]
    app.config["MAX_FORM_MEMORY_SIZE"] = app.config["JSON_MAX_BYTES"]
    app.before_request(_bound_request)
    app.register_error_handler(RequestEntityTooLarge, too_large)
