"""Shared bits of the API blueprints: documented error responses."""
from web.api.errors import ErrorSchema

DESCRIPTIONS = {
    400: "Malformed request (e.g. invalid JSON, bad header)",
    401: "Missing or invalid bearer token",
    403: "Not permitted (details.reason says which rule)",
    404: "Not found, or not visible to you",
    409: "Not available in the current state, or a concurrent change (details has state and version)",
    412: "If-Match names a version the instance is no longer at",
    413: "Body too large (details.max_bytes): JSON over JSON_MAX_BYTES, a file over its limit",
    415: "Unsupported upload type",
    422: "Validation failed (errors: field → messages)",
    429: "Rate limited",
}

error_responses = {code: {"schema": ErrorSchema, "description": text} for code, text in DESCRIPTIONS.items()}


def errors(blp, *codes):
    """Document error responses `codes` on a view (each with the one error schema)."""

    def decorator(fn):
        for code in codes:
            fn = blp.alt_response(code, **error_responses[code])(fn)
        return fn

    return decorator
