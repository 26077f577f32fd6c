"""`flask --app wsgi …` commands. Each calls the engine; bad arguments give a message and exit code 1."""
import functools
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import click
from flask import current_app
from flask.cli import AppGroup

from engine import clock, health, mail, org, registry, scheduler, timers, tokens
from engine import demo as demo_data
from engine.db import db
from engine.errors import DefinitionError, EngineError
from web.cli_calendar import calendar_cli

org_cli = AppGroup("org", help="Org units: company, regions, stores, teams.")
users_cli = AppGroup("users", help="People, their roles and API tokens.")
workflows_cli = AppGroup("workflows", help="Workflow definitions.")
timers_cli = AppGroup("timers", help="Deadlines, reminders and escalations.")
mail_cli = AppGroup("mail", help="Notification emails.")


def clear_errors(fn):
    """Engine errors become a one-line message and exit code 1, with nothing written."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (EngineError, DefinitionError) as e:
            db.session.rollback()
            fields = getattr(e, "errors", None) or {}
            details = "".join(f"\n  {name}: {' '.join(map(str, messages))}" for name, messages in fields.items())
            raise click.ClickException(f"{e}{details}") from None

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
@click.option("--org", "with_org", is_flag=True, help="Also check that, in the org as it is, every step of every "
                                                       "workflow has someone who can take it.")
def workflows_lint(with_org):
    """Validate every definition; exit 1 listing the problems."""
    from engine import coverage

    problems = registry.lint()
    if with_org and not problems:
        problems = coverage.problems()
    for p in problems:
        click.echo(p, err=True)
    if problems:
        raise SystemExit(1)
    click.echo("all workflow definitions are valid" + (", and every step has someone who can take it" if with_org
                                                       else ""))


@click.command("demo")
@clear_errors
def demo():
    """Load the demo org, people and instances (prints logins and passwords)."""
    for line in demo_data.load(progress=click.echo):
        click.echo(line)


@click.command("worker")
@click.option("--burst", is_flag=True, help="Stop when the queue is empty.")
def worker(burst):
    """Run an RQ worker (with scheduler): fires due timers, sends mail, reconciles Redis with the database."""
    from engine.jobs import run_worker

    health.warn_unsafe_redis(current_app.config["SIGNOFF_CONFIG"])  # a warning, not a refusal to start
    run_worker(current_app._get_current_object(), burst)


def _instant(value: str | None):
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"'{value}' is not an ISO datetime", param_hint="--now") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo(current_app.config["TIMEZONE"]))
    return parsed.astimezone(UTC)


@timers_cli.command("list")
@click.option("--overdue", is_flag=True, help="Only those already due.")
@click.option("--org", "org_code", help="Only this org unit and the units below it.")
@clear_errors
def timers_list(overdue, org_code):
    """Pending timers, soonest first."""
    tz = ZoneInfo(current_app.config["TIMEZONE"])
    for timer, inst, unit in timers.pending(overdue, org_code):
        click.echo(f"{timer.due_at.astimezone(tz):%Y-%m-%d %H:%M}  {unit.code:<8} #{inst.id} {inst.workflow}"
                   f"/{timer.state}  rung {timer.rung}: {timer.action}")


@timers_cli.command("run-due")
@click.option("--now", "now_text", metavar="ISO-DATETIME", help="Fire as if it were this time (needs "
              "ALLOW_TIME_TRAVEL when later than the real time).")
def timers_run_due(now_text):
    """Fire everything due up to now, exactly as the worker would (catch up after downtime)."""
    now = _instant(now_text)
    if now and now > clock.now() and not current_app.config["ALLOW_TIME_TRAVEL"]:
        raise click.ClickException("--now is later than the real time; only allowed where ALLOW_TIME_TRAVEL is set")
    run = timers.run_due(now)
    click.echo(f"fired {run.fired}, skipped {run.skipped}, busy {run.busy}")
    outcome = mail.send_pending(now)
    click.echo(f"mail: sent {outcome.sent}, retrying {outcome.retrying}, failed {outcome.failed}")


@timers_cli.command("schedule")
@click.option("--now", "now_text", metavar="ISO-DATETIME", help="As if it were this time (ALLOW_TIME_TRAVEL).")
@click.option("--workflow", help="Only this workflow's schedule.")
@clear_errors
def timers_schedule(now_text, workflow):
    """Start the scheduled instances that are due (month-end stocktakes, daily handovers)."""
    now = _instant(now_text)
    if now and now > clock.now() and not current_app.config["ALLOW_TIME_TRAVEL"]:
        raise click.ClickException("--now is later than the real time; only allowed where ALLOW_TIME_TRAVEL is set")
    if workflow:
        registry.get(workflow)
    started = scheduler.run(now, workflow)
    click.echo(", ".join(f"{name}: {n}" for name, n in started.items()) or "nothing due")


@timers_cli.command("reconcile")
def timers_reconcile():
    """Re-arm Redis from the database (after Redis lost its data)."""
    click.echo(f"armed {timers.reconcile()} wake-ups")


@mail_cli.command("failed")
def mail_failed():
    """Notifications that could not be delivered after all retries."""
    rows = mail.failed()
    for n in rows:
        click.echo(f"#{n.id}  instance {n.instance_id}  {n.kind}  to {n.user.login} <{n.user.email}>  "
                   f"after {n.attempts} attempt(s): {n.last_error}")
    if not rows:
        click.echo("no failed mail")


@mail_cli.command("send")
def mail_send():
    """Send the waiting mail now (the worker does this by itself)."""
    outcome = mail.send_pending()
    click.echo(f"sent {outcome.sent}, retrying {outcome.retrying}, failed {outcome.failed}")


targets_cli = AppGroup("targets", help="Annual targets (年度目标), broken down into months, weeks and days.")
stocktake_cli = AppGroup("stocktake", help="Month-end stocktakes.")


@targets_cli.command("set")
@click.argument("year", type=click.IntRange(2000, 2100))
@click.argument("unit_code", metavar="ORGCODE")
@click.option("--user", "login", help="The rep's login (omit for the unit's own target).")
@click.option("--amount", required=True, type=click.FloatRange(min=0))
@click.option("--new-customers", default=0, type=click.IntRange(min=0))
@click.option("--visits", default=0, type=click.IntRange(min=0))
@clear_errors
def targets_set(year, unit_code, login, amount, new_customers, visits):
    """Set a rep's (or a unit's) annual target; monthly plans are pre-filled from it."""
    from engine import targets

    unit = org.unit_by_code(unit_code)
    user = org.user_by_login(login) if login else None
    targets.set_annual(year, unit.id, user.id if user else None, f"{amount:.2f}", new_customers, visits)
    db.session.commit()
    click.echo(f"{year} target for {login or unit_code} at {unit_code}: {amount:.2f}, {new_customers} new customers, "
               f"{visits} visits")


@stocktake_cli.command("load-book")
@click.argument("instance_id", type=int)
@click.argument("csv_file", type=click.File("rb"))
@click.option("--as", "login", required=True, help="Who loads it (a store or deputy manager of the store).")
@click.option("--correct", "reason", help="Correct the book after counting began, for this reason (the counts are "
                                          "then done again).")
@clear_errors
def stocktake_load_book(instance_id, csv_file, login, reason):
    """Load book stock (sku,name,quantity[,unit_cost] or 编码,名称,数量[,单价]) into a stocktake from a CSV or
    Excel (.xlsx) file."""
    from engine import runtime
    from workflows.stocktake import parse_book_file

    lines = parse_book_file(csv_file.read(), current_app.config["IMPORT_MAX_ROWS"])
    trigger = "correct_book" if reason is not None else "load_book"
    runtime.fire(instance_id, trigger, org.user_by_login(login), {"book": lines}, comment=reason)
    click.echo(f"{'corrected' if reason is not None else 'loaded'} {len(lines)} book lines in stocktake "
               f"#{instance_id}")


stock_cli = AppGroup("stock", help="Stores' stock lists (every SKU a store stocks).")


@stock_cli.command("import")
@click.argument("store")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@clear_errors
def stock_import(store, file):
    """Replace STORE's stock list from a CSV (UTF-8) or .xlsx FILE: sku, name, unit_cost (编码,名称,单价)."""
    from pathlib import Path

    from engine import stock

    unit = org.unit_by_code(store)
    lines = stock.parse(Path(file).read_bytes(), file, current_app.config["IMPORT_MAX_ROWS"])
    stock.replace(unit, lines)
    click.echo(f"stock list of {unit.code}: {len(lines)} SKUs")


audit_cli = AppGroup("audit", help="The audit trail.")


@audit_cli.command("verify")
@click.option("--instance", "instance_id", type=int, help="Only this instance.")
def audit_verify(instance_id):
    """Check every instance's hash chain; exit 1 naming each event changed or removed behind the app's back."""
    from engine import audit

    checked, problems = audit.verify(instance_id)
    for problem in problems:
        click.echo(str(problem), err=True)
    click.echo(f"{checked} audit events checked, {len(problems)} problem(s)")
    if problems:
        raise SystemExit(1)


@click.command("check")
def check():
    """Is this installation fit to run? Configuration, database revision, Redis and SMTP: one line per check
    (OK / WARN / FAIL); exit 1 on any FAIL. Writes nothing, sends no mail."""
    from engine import checks

    results = checks.run_all()
    for result in results:
        click.echo(str(result))
    if any(r.level == checks.Level.FAIL for r in results):
        raise SystemExit(1)


def init_app(app) -> None:
    for command in (org_cli, users_cli, workflows_cli, calendar_cli, timers_cli, mail_cli, targets_cli, stocktake_cli,
                    stock_cli, audit_cli, demo, worker, check):
        app.cli.add_command(command)
