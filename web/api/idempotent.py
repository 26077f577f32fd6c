"""`Idempotency-Key` for API writes: the first response is stored (per user and key) and replayed for an
identical repeat; the same key with a different request is a 422. The rules live in engine/idempotency.py."""
import logging

from flask import jsonify, request

from engine import idempotency
from engine.errors import EngineError
from web.api.errors import engine_error_response

log = logging.getLogger(__name__)

HEADER = {"in": "header", "name": "Idempotency-Key", "required": False,
          "schema": {"type": "string", "minLength": 1, "maxLength": 255},
          "description": "A repeat with the same key and body returns the first response and changes nothing; "
                         "the same key with a different body is a 422."}


def run(user, schema, status: int, write, *, extra=None):
    """Run `write()` (returning the response body for `schema`) once per Idempotency-Key, if one was sent."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return write()
    digest = idempotency.request_hash(request.method, request.path, [request.get_json(silent=True), extra])
    replay = idempotency.begin(user.id, key, digest)
    if replay is not None:
        return _json(replay.body, replay.status)
    try:
        body, code = schema.dump(write()), status
    except EngineError as e:
        body, code = engine_error_response(e, if_match_given=extra is not None)
    except BaseException:
        idempotency.abandon(user.id, key)
        raise
    try:
        idempotency.finish(user.id, key, code, body)
    except Exception as e:  # the write is done: the stored reply must never be what fails the request
        log.warning("could not store the reply for an Idempotency-Key (%s); the key is released", type(e).__name__)
        try:
            idempotency.abandon(user.id, key)
        except Exception:
            log.warning("could not release the Idempotency-Key either; a repeat will be told it is in progress")
    return _json(body, code)


def _json(body: dict, status: int):
    response = jsonify(body)
    response.status_code = status
    return response
