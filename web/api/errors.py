"""One JSON error shape for everything under /api/: `{code, status, message, errors}` (flask-smorest's),
plus `error` (a machine-readable name) and `details` (e.g. the current state and version, or the rule that
refused). Messages are in the caller's language (zh by default). Never an HTML page, never a stack trace.
"""
import logging

from flask import current_app, g, request
from flask_babel import get_locale
from marshmallow import Schema, fields
from werkzeug.exceptions import HTTPException, InternalServerError

from engine.db import db
from engine.errors import EngineError, InvalidPayload, NotAvailable, NotPermitted, VersionConflict
from web.logs import log_unhandled

log = logging.getLogger(__name__)

API_PREFIX = "/api/"

# (zh, en) for each error name; the engine's own (English) sentence goes in `details.reason_text` for zh
# callers, and is the message itself for en callers when it says more than the generic one.
MESSAGES = {
    "bad_request": ("请求格式错误。", "The request is malformed."),
    "malformed_json": ("请求体不是有效的 JSON。", "The request body is not valid JSON."),
    "unauthorized": ("需要有效的访问令牌（Authorization: Bearer <token>）。",
                     "A valid token is required (Authorization: Bearer <token>)."),
    "bad_credentials": ("用户名或密码错误。", "Wrong login or password."),
    "forbidden": ("您没有权限执行此操作。", "You are not permitted to do this."),
    "not_permitted": ("您没有权限执行此操作。", "You are not permitted to do this."),
    "admin_only": ("只有管理员可以执行此操作。", "Only administrators may do this."),
    "not_found": ("找不到该资源。", "Not found."),
    "unknown_instance": ("找不到该流程实例。", "No such instance."),
    "unknown_workflow": ("找不到该流程。", "No such workflow."),
    "method_not_allowed": ("不支持该请求方法。", "Method not allowed."),
    "not_available": ("当前状态下不能执行该操作。", "This action is not available in the current state."),
    "version_conflict": ("该流程已被他人修改，请刷新后重试。", "Someone else changed this instance; reload and retry."),
    "precondition_failed": ("该流程已被他人修改（If-Match 版本已过期）。",
                            "The instance has changed since the version in If-Match."),
    "invalid_payload": ("提交的数据有误。", "The data is invalid."),
    "invalid_input": ("输入有误。", "The input is invalid."),
    "idempotency_key_reused": ("该 Idempotency-Key 已用于另一个请求。",
                               "This Idempotency-Key was already used for a different request."),
    "idempotency_in_progress": ("相同 Idempotency-Key 的请求仍在处理中。",
                                "The first request with this Idempotency-Key is still being processed."),
    "too_large": ("文件或请求内容太大。", "The file or the request is too large."),
    "unsupported_media_type": ("不支持的文件类型。", "Unsupported file type."),
    "rate_limited": ("请求过于频繁，请稍后再试。", "Too many requests; try again later."),
    "server_error": ("服务器内部错误。", "Internal server error."),
    "service_unavailable": ("服务暂时不可用（无法连接数据库或队列），请稍后重试。",
                            "The service is temporarily unavailable (database or queue unreachable); retry shortly."),
}

HTTP_NAMES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
              409: "version_conflict", 412: "precondition_failed", 413: "too_large", 415: "unsupported_media_type",
              422: "invalid_input", 429: "rate_limited", 500: "server_error",
              503: "service_unavailable"}


class ErrorSchema(Schema):
    """The body of every error response under /api/."""

    code = fields.Integer(required=True, metadata={"description": "HTTP status code"})
    status = fields.String(required=True, metadata={"description": "HTTP status name"})
    message = fields.String(required=True, metadata={"description": "What went wrong, in the caller's language"})
    error = fields.String(metadata={"description": "Machine-readable error name, e.g. not_permitted"})
    errors = fields.Dict(keys=fields.String(), metadata={"description": "Field → list of messages (422)"})
    details = fields.Dict(keys=fields.String(), metadata={
        "description": "Context: `reason` (which rule refused), `state` and `version` (current), ..."})


def locale() -> str:
    return str(get_locale() or "zh")[:2]


def message(name: str, fallback: str | None = None) -> str:
    pair = MESSAGES.get(name)
    if pair is None:
        return fallback or name
    return pair[0] if locale() == "zh" else pair[1]


class ApiError(Exception):
    """Raised by API views for errors that are not the engine's (auth, uploads, rate limits)."""

    def __init__(self, status: int, name: str, detail: str | None = None, errors: dict | None = None,
                 headers: dict | None = None, **details):
        super().__init__(detail or name)
        self.status, self.name, self.detail, self.errors, self.headers = status, name, detail, errors, headers
        self.details = details


def payload(status: int, name: str, detail: str | None = None, errors: dict | None = None,
            details: dict | None = None) -> dict:
    from http import HTTPStatus

    body = {"code": status, "status": HTTPStatus(status).phrase, "message": message(name, detail), "error": name}
    if detail and locale() == "en" and name not in ("server_error",):
        body["message"] = detail
    if errors:
        body["errors"] = errors
    if details:
        body["details"] = details
    return body


def engine_error_response(e: EngineError, if_match_given: bool = False):
    status, name = e.status, e.code
    details = {k: v for k, v in e.details.items() if k != "errors"}
    if isinstance(e, NotPermitted):
        details.setdefault("reason", "role_or_scope")
    instance_id = getattr(g, "instance_id", None)
    if isinstance(e, VersionConflict | NotAvailable) and "state" not in details and instance_id:
        from engine import queries  # a lost race reports where the instance is now, so the caller can reload

        details.update(queries.current_state(instance_id))
    if isinstance(e, VersionConflict) and if_match_given:
        status, name = 412, "precondition_failed"
    errors = e.errors if isinstance(e, InvalidPayload) else e.details.get("errors")
    if status == 422 and not errors and "field" in e.details:
        errors = {e.details["field"]: [e.message]}
    if status >= 500:
        return payload(500, "server_error"), 500
    detail = e.message
    if details and locale() == "zh":
        details.setdefault("reason_text", e.message)
    body = payload(status, name, detail, errors, details or None)
    if "opens_local" in details and locale() == "zh":  # too early: say from when, in the caller's language
        body["message"] = f"尚未到时间：{details['opens_local']} 起才可执行该操作。"
    return body, status


def _is_api() -> bool:
    return request.path.startswith(API_PREFIX)


def init_app(app) -> None:
    """Error handlers for /api/ paths. Other paths keep whatever handler the rest of the app registered."""
    spec = app.error_handler_spec.setdefault(None, {}).setdefault(None, {})
    previous_engine = spec.get(EngineError)

    @app.errorhandler(EngineError)
    def engine_error(e: EngineError):
        if not _is_api():
            if previous_engine:
                return previous_engine(e)
            return e.to_dict(), e.status
        db.session.rollback()
        body, status = engine_error_response(e, getattr(g, "if_match_given", False))
        return body, status

    @app.errorhandler(ApiError)
    def api_error(e: ApiError):
        db.session.rollback()
        return payload(e.status, e.name, e.detail, e.errors, e.details or None), e.status, e.headers or {}

    @app.errorhandler(HTTPException)
    def http_error(e: HTTPException):
        if not _is_api():
            return e
        db.session.rollback()
        data = getattr(e, "data", None) or {}
        errors = data.get("errors") or data.get("messages")
        code = e.code or 500
        if code == 400 and request.is_json and request.get_data() and request.get_json(silent=True) is None:
            return payload(400, "malformed_json", None, errors if isinstance(errors, dict) else None), 400
        if code == 422 and isinstance(errors, dict):
            # webargs nests by location ({"json": {...}}); callers want field → messages
            if set(errors) <= {"json", "query", "form", "files", "headers", "path", "view_args"}:
                errors = {k: v for loc in errors.values() if isinstance(loc, dict) for k, v in loc.items()} or errors
            return payload(422, "invalid_payload", None, errors), 422, data.get("headers") or {}
        name = HTTP_NAMES.get(code, "bad_request" if code < 500 else "server_error")
        headers = data.get("headers") or {}
        if code == 405 and getattr(e, "valid_methods", None):
            headers = {"Allow": ", ".join(e.valid_methods)}
        if code not in HTTP_NAMES:
            code = 400 if code < 500 else 500
        return payload(code, name), code, headers

    @app.errorhandler(Exception)
    def unexpected(e: Exception):
        if isinstance(e, HTTPException):
            return http_error(e)
        if not _is_api():
            # Flask's own rule (Flask.handle_exception): re-raise in tests and debug so the cause is seen
            if current_app.config["PROPAGATE_EXCEPTIONS"] or current_app.testing or current_app.debug:
                raise e
            log_unhandled(log, e)
            return InternalServerError(original_exception=e)
        log_unhandled(log, e)
        db.session.rollback()
        return payload(500, "server_error"), 500
