"""Server-rendered pages. For now: the landing page and a health check; the full UI has its own issue."""
from flask import Blueprint, jsonify, render_template

from engine import registry
from engine.db import db

bp = Blueprint("ui", __name__)


@bp.get("/")
def index():
    return render_template("index.html", workflows=registry.latest())


@bp.get("/healthz")
def health():
    db.session.execute(db.text("SELECT 1"))
    return jsonify(status="ok")
