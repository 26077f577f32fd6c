"""`flask --app wsgi …` commands. Each calls the engine; bad arguments give a message and exit code 1."""
import functools

import click
from flask import current_app
from flask.cli import AppGroup

from engine import demo as demo_data
from engine import org, registry, tokens
from engine.db import db
from engine.errors import DefinitionError, EngineError

org_cli = AppGroup("org", help="Org units: company, regions, stores, teams.")
users_cli = AppGroup("users", help="People, their roles and API tokens.")
workflows_cli = AppGroup("workflows", help="Workflow definitions.")


def clear_errors(fn):
    """Engine errors become a one-line message and exit code 1, with nothing written."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (EngineError, DefinitionError) as e:
            db.session.rollback()
            raise click.ClickException(str(e)) from None

    return wrapper


@org_cli.command("add")
@click.argument("code")
@click.option("--name", required=True)
@click.option("--kind", required=True, type=click.Choice([k.value for k in org.UnitKind]))
@click.option("--parent", "parent_code", help="Code of the unit above (omit for the company).")
@click.option("--timezone", default="Asia/Shanghai", show_default=True)
@clear_errors
def org_add(code, name, kind, parent_code, timezone):
    """Add an org unit."""
    unit = org.add_unit(code, name, kind, parent_code, timezone=timezone)
    db.session.commit()
    click.echo(f"added {unit.kind} {unit.code} ({unit.name})")


@org_cli.command("list")
def org_list():
    """Print the org tree."""
    units = db.session.scalars(db.select(org.OrgUnit).order_by(org.OrgUnit.path)).all()
    for unit in units:
        depth = unit.path.count("/") - 2
        click.echo(f"{'  ' * depth}{unit.code}  {unit.name}  [{unit.kind}]")


def _parse_role(value: str) -> tuple[str, str]:
    role, sep, code = value.partition("@")
    if not sep or not role or not code:
        raise click.BadParameter(f"'{value}' is not ROLE@ORGCODE", param_hint="--role")
    return role, code


@users_cli.command("create")
@click.argument("login")
@click.option("--name", required=True)
@click.option("--email", required=True)
@click.option("--password", required=True)
@click.option("--role", "roles", multiple=True, help="ROLE@ORGCODE, repeatable.")
@click.option("--locale", default="zh", type=click.Choice(["zh", "en"]), show_default=True)
@clear_errors
def users_create(login, name, email, password, roles, locale):
    """Create a user with roles at org units."""
    pairs = [_parse_role(r) for r in roles]
    user = org.add_user(login, name, email, password, pairs, locale=locale)
    db.session.commit()
    click.echo(f"created {user.login} ({', '.join(roles) or 'no roles'})")


@users_cli.command("token")
@click.argument("login")
@clear_errors
def users_token(login):
    """Print a new API token for LOGIN (only its hash is stored)."""
    click.echo(tokens.issue(org.user_by_login(login)))


@workflows_cli.command("list")
@clear_errors
def workflows_list():
    """The workflows and their latest versions."""
    for c in registry.latest():
        click.echo(f"{c.name}  v{c.version}  {c.wf.title['zh']} / {c.wf.title['en']}")


@workflows_cli.command("show")
@click.argument("name")
@clear_errors
def workflows_show(name):
    """States, transitions, roles, deadlines and the mermaid diagram of NAME."""
    from engine.diagram import describe

    click.echo(describe(registry.get(name)))


@workflows_cli.command("lint")
def workflows_lint():
    """Validate every definition; exit 1 listing the problems."""
    problems = registry.lint()
    for p in problems:
        click.echo(p, err=True)
    if problems:
        raise SystemExit(1)
    click.echo("all workflow definitions are valid")


@click.command("demo")
@clear_errors
def demo():
    """Load the demo org, people and instances (prints logins and passwords)."""
    for line in demo_data.load(progress=click.echo):
        click.echo(line)


@click.command("worker")
@click.option("--burst", is_flag=True, help="Stop when the queue is empty.")
def worker(burst):
    """Run an RQ worker (with scheduler) on the configured Redis."""
    from rq import Worker

    from engine import queue

    q = queue.queue(current_app.config["SIGNOFF_CONFIG"])
    Worker([q], connection=q.connection).work(with_scheduler=True, burst=burst)


def init_app(app) -> None:
    for command in (org_cli, users_cli, workflows_cli, demo, worker):
        app.cli.add_command(command)
