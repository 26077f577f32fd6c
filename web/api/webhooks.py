"""placeholder"""
from flask_smorest import Blueprint

blp = Blueprint("api_webhooks", __name__, url_prefix="/api/v1/webhooks")
