"""Signing in and out, changing one's password and language. No user enumeration: an unknown login and a
wrong password get the same answer in about the same time; failures slow down per account and address
(web/ui/ratelimit.py). Signing out ends the session on the server too: a copy of the cookie no longer works."""
from urllib.parse import urlsplit

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import UserMixin, current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import PasswordField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, EqualTo, Length

from engine import tokens
from engine.db import db
from engine.org import User
from web.ui import bp, login_manager, ratelimit


class SignedIn(UserMixin):
    """The signed-in person, for Flask-Login. `user` is the engine's User; the session id includes the user's
    session generation, so signing out, a password change or reset and a deactivation (which raise it: engine
    tokens.end_sessions) end every session made before, wherever its cookie is replayed from."""

    def __init__(self, user: User):
        self.user = user

    def get_id(self) -> str:
        return f"{self.user.id}:{self.user.session_generation}"

    @property
    def is_active(self) -> bool:
        return self.user.active

    def __getattr__(self, name):
        return getattr(self.user, name)


@login_manager.user_loader
def load_user(session_id: str):
    user_id, _sep, generation = session_id.partition(":")
    if not user_id.isdigit():
        return None
    user = db.session.get(User, int(user_id))
    if user is None or not user.active or str(user.session_generation) != generation:
        return None
    return SignedIn(user)


login_manager.login_message = _l("Please sign in.")


def me() -> User:
    """The engine User behind the signed-in session."""
    return current_user.user


class LoginForm(FlaskForm):
    login = StringField(_l("Login"), validators=[DataRequired(), Length(max=64)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=200)])


class PasswordForm(FlaskForm):
    current = PasswordField(_l("Current password"), validators=[DataRequired()])
    new = PasswordField(_l("New password"), validators=[DataRequired(), Length(min=8, max=200)])
    repeat = PasswordField(_l("Repeat the new password"),
                           validators=[DataRequired(), EqualTo("new", message=_l("The passwords differ."))])


class SettingsForm(FlaskForm):
    locale = SelectField(_l("Language"), choices=[SelectChoice("zh", "中文"), SelectChoice("en", "English")])


def _safe_next(target: str | None) -> str:
    """`target` when it is a path on this site, else the inbox. Browsers drop tabs and newlines from a URL and
    read a backslash as a slash, so "/\t/evil.example" would leave the site: any of those (or any control
    character or space) makes the target unsafe, and what is left must parse with no scheme and no host."""
    if not target or "\\" in target or any(ord(c) <= 32 or ord(c) == 127 for c in target):
        return url_for("ui.inbox")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/") or parts.path.startswith("//"):
        return url_for("ui.inbox")
    return target


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        name, address = form.login.data.strip(), request.remote_addr or "-"
        wait = ratelimit.blocked(name, address)
        if wait:
            form.form_errors.append(_("Too many failed attempts. Try again in %(s)s seconds.", s=wait) if wait < 60
                                    else _("Too many failed attempts. Try again in %(m)s minutes.", m=-(-wait // 60)))
            return render_template("login.html", form=form), 429, {"Retry-After": str(wait)}
        user = tokens.credentials(name, form.password.data)  # unknown, inactive, wrong: the same answer and work
        if user is not None:
            ratelimit.succeeded(name, address)
            login_user(SignedIn(user))
            return redirect(_safe_next(request.args.get("next")))
        ratelimit.failed(name, address)
        form.form_errors.append(_("Wrong login or password."))
        status = 401
    elif request.method == "POST":
        status = 400
    return render_template("login.html", form=form), status


@bp.post("/logout")
def logout():
    if current_user.is_authenticated:
        tokens.end_sessions(me())  # this cookie, and every copy of it, stops working (other devices too)
        db.session.commit()
    logout_user()
    return redirect(url_for("ui.login"))


@bp.route("/account", methods=["GET", "POST"])
@login_required
def account():
    pw, settings = PasswordForm(prefix="pw"), SettingsForm(prefix="s", locale=me().locale)
    status = 200
    if request.method == "POST":
        if request.form.get("form") == "password":
            if pw.validate_on_submit():
                if not me().check_password(pw.current.data):
                    pw.current.errors.append(_("Wrong password."))
                    status = 422
                else:
                    me().set_password(pw.new.data)
                    tokens.revoke_all(me())  # every API token and every other session ends
                    db.session.commit()
                    login_user(SignedIn(me()))  # this session carries on with the new generation
                    flash(_("Your password has been changed."))
                    return redirect(url_for("ui.account"))
            else:
                status = 422
        elif request.form.get("form") == "settings" and settings.validate_on_submit():
            me().locale = settings.locale.data
            db.session.commit()
            return redirect(url_for("ui.account"))
        else:
            abort(400)
    return render_template("account.html", pw=pw, settings=settings), status
