"""Typed engine errors. Each carries the HTTP status the API maps it to and a machine-readable code."""


class EngineError(Exception):
    status = 400
    code = "error"

    def __init__(self, message: str, **details):
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict:
        return {"code": self.code, "message": self.message, **self.details}


class UnknownInstance(EngineError):
    status = 404
    code = "unknown_instance"


class UnknownWorkflow(EngineError):
    status = 404
    code = "unknown_workflow"


class NotPermitted(EngineError):
    status = 403
    code = "not_permitted"


class NotAvailable(EngineError):
    """The trigger cannot be fired from the instance's current state (or its guards said no)."""

    status = 409
    code = "not_available"


class VersionConflict(EngineError):
    """Someone else changed the instance first; the caller must reload."""

    status = 409
    code = "version_conflict"


class Duplicate(EngineError):
    """Something that may exist only once (one stocktake per store per month) already does."""

    status = 409
    code = "duplicate"


class InvalidPayload(EngineError):
    """The data failed validation; `errors` maps field → list of messages."""

    status = 422
    code = "invalid_payload"

    def __init__(self, errors: dict, message: str = "invalid data"):
        super().__init__(message, errors=errors)
        self.errors = errors


class InvalidInput(EngineError):
    """Bad arguments to an org/people operation (unknown code, duplicate login, ...)."""

    status = 422
    code = "invalid_input"


class DefinitionError(Exception):
    """A workflow definition is invalid; `problems` lists each one, naming workflow and element."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems
