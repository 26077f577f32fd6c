"""The caller's language: Accept-Language when it names zh or en, else the API user's own locale, else zh."""
from flask import g, has_request_context, request
from flask_babel import Babel

LANGUAGES = ["zh", "en"]
babel = Babel()


def select_locale() -> str:
    if not has_request_context():
        return "zh"
    if request.headers.get("Accept-Language"):
        best = request.accept_languages.best_match(LANGUAGES)
        if best:
            return best
    user = getattr(g, "api_user", None)
    if user is not None and user.locale in LANGUAGES:
        return user.locale
    return "zh"
