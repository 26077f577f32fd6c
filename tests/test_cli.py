"""`flask --app wsgi …`: clear messages and non-zero exits on bad input, nothing half-written."""
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from engine import org, registry, tokens
from engine.db import db
from engine.definition import Workflow
from engine.models import ApiToken, AuditEvent, Instance
from engine.org import OrgUnit, User

ROOT = Path(__file__).resolve().parent.parent


def run(app, *args):
    result = app.test_cli_runner().invoke(args=list(args))
    db.session.remove()
    return result


def count(model):
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def test_org_and_users(ctx):
    assert run(ctx, "org", "add", "HQ", "--name", "总部", "--kind", "company").exit_code == 0
    assert run(ctx, "org", "add", "R1", "--name", "华东", "--kind", "region", "--parent", "HQ").exit_code == 0
    r = run(ctx, "org", "add", "S1", "--name", "南京路店", "--kind", "store", "--parent", "R1")
    assert r.exit_code == 0 and "added store S1" in r.output
    r = run(ctx, "users", "create", "li", "--name", "李店长", "--email", "li@example.com", "--password", "s3cret!",
            "--role", "store_manager@S1", "--role", "assistant@S1", "--locale", "en")
    assert r.exit_code == 0, r.output
    li = org.user_by_login("li")
    assert li.locale == "en" and li.check_password("s3cret!") and li.password_hash.startswith("scrypt:")
    assert org.roles_at(li, org.unit_by_code("S1")) == {"store_manager", "assistant"}
    tree = run(ctx, "org", "list").output.splitlines()
    assert tree == ["HQ  总部  [company]", "  R1  华东  [region]", "    S1  南京路店  [store]"]


def test_bad_arguments_fail_clearly_and_write_nothing(ctx):
    run(ctx, "org", "add", "HQ", "--name", "总部", "--kind", "company")
    cases = [
        (("org", "add", "S1", "--name", "x", "--kind", "store", "--parent", "NOPE"), "unknown org unit 'NOPE'"),
        (("org", "add", "HQ", "--name", "x", "--kind", "company"), "already exists"),
        (("org", "add", "S1", "--name", "x", "--kind", "planet"), "Invalid value for '--kind'"),
        (("users", "create", "li", "--name", "x", "--email", "e@example.com", "--password", "p",
          "--role", "store_manager@S9"),
         "unknown org unit 'S9'"),
        (("users", "create", "li", "--name", "x", "--email", "e@example.com", "--password", "p",
          "--role", "wizard@HQ"),
         "unknown role 'wizard'"),
        (("users", "create", "li", "--name", "x", "--email", "e@example.com", "--password", "p", "--role", "admin"),
         "is not ROLE@ORGCODE"),
        (("users", "token", "nobody"), "unknown user 'nobody'"),
        (("workflows", "show", "nope"), "unknown workflow 'nope'"),
    ]
    for args, message in cases:
        r = run(ctx, *args)
        assert r.exit_code != 0 and message in r.output, (args, r.output)
        assert "Traceback" not in r.output
    assert (count(OrgUnit), count(User)) == (1, 0)  # the user with a bad second role was not half-created


def test_people_and_units_from_the_cli_follow_the_same_rules(ctx):
    run(ctx, "org", "add", "HQ", "--name", "总部", "--kind", "company")
    ok = ("--name", "李", "--email", "li@example.com", "--password", "s3cret!")
    cases = [
        (("users", "create", "ZHENG.YEWU", *ok), "login 'ZHENG.YEWU' must be 1-64 lower-case ASCII"),
        (("users", "create", "wu.zhugu\u0430n", *ok), "lower-case ASCII"),
        (("users", "create", "a/../b", *ok), "lower-case ASCII"),
        (("users", "create", "li", "--name", "李", "--email", "not-an-email", "--password", "p"),
         "'not-an-email' is not a valid email address"),
        (("users", "create", "li", "--name", "李", "--email", "li@example.com\r\nBcc: x@evil.example",
          "--password", "p"), "is not a valid email address"),
        (("users", "create", "li", "--name", "李\r\nBcc: x@evil.example", "--email", "li@example.com",
          "--password", "p"), "name must not contain control characters"),
        (("org", "add", "HZ01", "--name", "杭州\r\nBcc: x@evil.example", "--kind", "store", "--parent", "HQ"),
         "name must not contain control characters"),
        (("org", "add", "a/b", "--name", "x", "--kind", "store", "--parent", "HQ"), "code 'a/b' must be"),
    ]
    for args, message in cases:
        r = run(ctx, *args)
        assert r.exit_code == 1 and message in r.output, (args, r.output)
    assert (count(OrgUnit), count(User)) == (1, 0)
    assert run(ctx, "users", "create", "li", *ok).exit_code == 0
    r = run(ctx, "users", "create", "li", *ok)
    assert r.exit_code == 1 and "user 'li' already exists" in r.output


def test_token_is_shown_once_and_stored_hashed(people):
    from flask import current_app

    r = run(current_app, "users", "token", "sm1")
    token = r.output.strip()
    assert r.exit_code == 0 and token.startswith("so_")
    stored = db.session.scalars(sa.select(ApiToken.token_hash)).all()
    assert len(stored) == 1 and token not in stored[0]
    assert tokens.authenticate(token).login == "sm1"
    assert tokens.authenticate(token + "x") is None


def test_workflows_list_show_lint(ctx):
    assert "discount_request  v1  折扣申请 / Discount request" in run(ctx, "workflows", "list").output
    shown = run(ctx, "workflows", "show", "discount_request").output
    assert "store_review  店长审批 / Store manager review" in shown
    assert "approve: store_review -> approved  [roles: store_manager; unless is_large; not by creator]" in shown
    assert "stateDiagram-v2" in shown and "draft --> store_review: submit" in shown
    r = run(ctx, "workflows", "lint")
    assert r.exit_code == 0 and "valid" in r.output


def test_lint_fails_on_a_broken_definition(ctx, monkeypatch):
    from tests.definitions import QUORUM

    bad = Workflow(**{**QUORUM.__dict__, "initial": "nowhere"})
    monkeypatch.setattr(registry, "_module_definitions", lambda: iter([(bad, {})]))
    r = run(ctx, "workflows", "lint")
    assert r.exit_code == 1
    assert "workflow 'test_quorum' v1: initial: unknown state 'nowhere'" in r.output


def test_demo_loads_once(ctx, clock):
    clock.set(datetime(2026, 11, 27, 3, 0, tzinfo=UTC))  # a Friday, 11:00 in Shanghai
    r = run(ctx, "demo")
    assert r.exit_code == 0, r.output
    assert "dianzhang1" in r.output and "signoff-demo" in r.output
    units = db.session.scalars(sa.select(OrgUnit.kind)).all()
    assert (units.count("company"), units.count("region"), units.count("store")) == (1, 2, 4)
    roles = set(db.session.scalars(sa.select(org.RoleAssignment.role)))
    assert roles == {r.value for r in org.Role}
    rows = db.session.execute(sa.select(Instance.workflow, Instance.state, Instance.due_at)).all()
    assert {w for w, _, _ in rows} == {"monthly_plan", "stocktake", "shift_handover", "complaint", "training_cohort",
                                       "evening_close"}
    overdue = {w for w, _, due in rows if due and due < clock.now()}
    assert {"stocktake", "shift_handover", "complaint", "evening_close"} <= overdue
    assert {s for w, s, _ in rows if w == "stocktake"} == {"closed", "reporting", "counting", "accountant_review"}
    sent = db.session.scalar(sa.select(Instance).where(Instance.state == "accountant_review"))
    assert [(v["sku"], v["money_variance"]) for v in sent.data["variances"] if v["variance"]] == [("B200", "-406.50")]
    assert sent.data["variance_reasons"]["B200"]  # the accountant sees money and the reason, as a store sends it
    closes = sorted(s for w, s, _ in rows if w == "evening_close")  # 4 done, 3 lists awaiting, GZ01 not closed
    assert closes == ["allocation"] * 3 + ["completed"] * 4 + ["open"]
    before = count(AuditEvent)
    r = run(ctx, "demo")
    assert r.exit_code == 0 and "already loaded" in r.output and count(AuditEvent) == before


def test_lint_org_names_each_step_nobody_can_take(ctx, people):
    r = run(ctx, "workflows", "lint", "--org")
    assert r.exit_code == 1
    # nobody in region SOUTH is a service agent; the handover's countersign reaches the regional manager
    assert "unit S3, workflow complaint, state received: nobody can act (assignee rule service_agent: nobody " \
           "holds it)" in r.output
    assert "countersign" not in r.output and "unit S1" not in r.output


def test_lint_org_on_the_demo_org_is_clean(ctx, clock):
    clock.set(datetime(2026, 11, 27, 3, 0, tzinfo=UTC))
    assert run(ctx, "demo").exit_code == 0
    r = run(ctx, "workflows", "lint", "--org")
    assert r.exit_code == 0 and "every step has someone who can take it" in r.output, r.output


def test_real_command_line_migrates_an_empty_sqlite_database(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEST_")}
    env.update(SIGNOFF_INSTANCE=str(tmp_path), DATABASE_URL="", REDIS_URL="")
    flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
    up = subprocess.run(flask + ["db", "upgrade"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert up.returncode == 0, up.stderr
    lint = subprocess.run(flask + ["workflows", "lint"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert lint.returncode == 0, lint.stderr
    tables = set(sa.inspect(sa.create_engine(f"sqlite:///{tmp_path}/signoff.db")).get_table_names())
    assert {"instances", "audit_events", "timers", "notifications", "signatures", "org_units"} <= tables
    assert (tmp_path / "secret_key").read_text()  # the development key is generated once and kept


def test_each_sales_workflow_shows_its_diagram(ctx):
    for name in ("monthly_plan", "stocktake", "shift_handover", "complaint", "training_cohort"):
        shown = run(ctx, "workflows", "show", name)
        assert shown.exit_code == 0 and "stateDiagram-v2" in shown.output and "-->" in shown.output, name


def test_a_stores_stock_list_from_the_cli(app, people, tmp_path):
    from openpyxl import Workbook

    from engine import org, stock

    book = Workbook()
    for row in (("编码", "名称", "单价"), ("A100", "羊毛衫", 120), ("B200", "围巾", 35.5)):
        book.active.append(row)
    book.save(tmp_path / "stock.xlsx")
    result = run(app, "stock", "import", "S1", str(tmp_path / "stock.xlsx"))
    assert result.exit_code == 0 and "2 SKUs" in result.output, result.output
    assert stock.stock_list(org.unit_by_code("S1")).skus == ["A100", "B200"]
    (tmp_path / "bad.csv").write_text("sku,name,unit_cost\nA100,羊毛衫,lots\n", encoding="utf-8")
    result = run(app, "stock", "import", "S1", str(tmp_path / "bad.csv"))
    assert result.exit_code == 1 and "line 2" in result.output
    assert run(app, "stock", "import", "NOPE", str(tmp_path / "bad.csv")).exit_code == 1
    assert stock.stock_list(org.unit_by_code("S1")).skus == ["A100", "B200"]
