"""placeholder"""
from flask_smorest import Blueprint

blp = Blueprint("api_attachments", __name__, url_prefix="/api/v1/attachments")
