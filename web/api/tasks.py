"""The caller's inbox: what they can act on now, overdue first."""
from flask.views import MethodView
from flask_smorest import Blueprint

import engine
from web.api import present
from web.api.auth import current_user
from web.api.common import errors
from web.api.schemas import TaskOut

blp = Blueprint("api_tasks", __name__, url_prefix="/api/v1/tasks", description="Your inbox.")


@blp.route("")
class Tasks(MethodView):
    @blp.response(200, TaskOut(many=True))
    @errors(blp, 401)
    def get(self):
        """What you can act on now (yourself or for whoever delegated to you): overdue first, then by due time."""
        return [present.task(t) for t in engine.inbox(current_user())]
