"""Engine errors become clear HTTP errors: status, code, message and the fields at fault; never a trace."""
from flask import jsonify

from engine.errors import EngineError


def init_app(app) -> None:
    @app.errorhandler(EngineError)
    def engine_error(e: EngineError):
        return jsonify(e.to_dict()), e.status
