"""The thin Flask app: configuration, extensions, CLI and blueprints. Views call the engine."""
from flask import Flask
from flask_migrate import Migrate

import config as config_module
from engine.db import db, init_db

migrate = Migrate()


def create_app(config=None) -> Flask:
    """Build the app. `config`: a Config instance or class; default: the one SIGNOFF_ENV names."""
    if config is None:
        config = config_module.from_env()
    elif isinstance(config, type):
        config = config()
    app = Flask(__name__, instance_path=str(config.INSTANCE_PATH))
    app.config.from_object(config)
    app.config["SIGNOFF_CONFIG"] = config
    config.INSTANCE_PATH.mkdir(parents=True, exist_ok=True)
    init_db(app)
    migrate.init_app(app, db, directory=str(config_module.ROOT / "migrations"), render_as_batch=True)

    from web import api, cli, errors, inputs, limits, ops, ui
    from web.api.i18n import babel
    from web.ui.i18n import select_locale  # pages: the user's setting, then Accept-Language; the API: its own rule

    babel.init_app(app, locale_selector=select_locale)
    inputs.install_converters(app)
    cli.init_app(app)
    errors.init_app(app)
    limits.init_app(app)
    ops.init_app(app)  # first: request ids and logging before any other hook runs
    ui.init_app(app)
    api.init_app(app)
    inputs.init_app(app)  # after the hooks that reset each request's state: its refusals use the language
    return app
