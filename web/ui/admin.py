"""Admin pages (read-only here; changes go through the admin API and CLI): the org tree, users and their roles,
delegations. Only for administrators, within their subtree (engine.admin checks)."""
from flask import render_template
from flask_login import login_required

from engine import admin
from web.ui import bp
from web.ui.auth import me


@bp.get("/admin")
@login_required
def admin_home():
    units = admin.units(me())  # NotPermitted (403) for anyone who is not an administrator
    users = admin.users(me())
    roles = {u.login: admin.roles(me(), u.login) for u in users}
    return render_template("admin.html", units=units, users=users, roles=roles,
                           delegations=admin.delegations(me()))
