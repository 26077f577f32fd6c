"""Month-end stocktake: created for every store at 19:00 on the last day, counted by zone, variances,
recount and approval, the report to the accountant, and its deadlines."""
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

import engine
from engine.db import db
from engine.errors import InvalidPayload, NotPermitted
from engine.models import Instance
from tests.flows import mails, refused, reload, run_due, trail
from workflows.stocktake import parse_book_csv

BOOK = [{"sku": "A100", "name": "羊毛衫", "quantity": 100}, {"sku": "B200", "name": "围巾", "quantity": 50},
        {"sku": "C300", "name": "手套", "quantity": 10}]
MONTH_END = datetime(2026, 11, 30, 11, 0, tzinfo=UTC)  # 19:00 in Shanghai


def schedule(app, when):
    return app.test_cli_runner().invoke(args=["timers", "schedule", "--now", when, "--workflow", "stocktake"]).output


@pytest.fixture
def counting(app, people, clock):
    clock.set(MONTH_END)
    assert "stocktake: 3" in schedule(app, "2026-11-30T19:00:00+08:00")
    inst = db.session.scalar(sa.select(Instance).where(Instance.dedupe_key == "stocktake:S1:2026-11"))
    engine.fire(inst.id, "load_book", people["dep1"], {"book": BOOK})
    return inst


def test_one_stocktake_per_store_at_month_end(app, people, clock):
    assert "nothing due" in schedule(app, "2026-11-30T18:59:00+08:00")
    assert "stocktake: 3" in schedule(app, "2026-11-30T19:00:00+08:00")
    assert "nothing due" in schedule(app, "2026-11-30T21:00:00+08:00")
    rows = db.session.execute(sa.select(Instance.dedupe_key, Instance.state, Instance.data)
                              .where(Instance.workflow == "stocktake")).all()
    assert sorted(k for k, _, _ in rows) == ["stocktake:S1:2026-11", "stocktake:S2:2026-11", "stocktake:S3:2026-11"]
    assert {(s, d["month"]) for _, s, d in rows} == {("counting", "2026-11")}


def test_golden_path_with_a_recount_and_a_query(people, counting):
    inst = counting
    engine.fire(inst.id, "enter_counts", people["a1"], {"zone": "A柜", "lines": [{"sku": "A100", "counted": 60},
                                                                               {"sku": "B200", "counted": 50}]})
    engine.fire(inst.id, "enter_counts", people["a1b"], {"zone": "B柜", "lines": [{"sku": "A100", "counted": 40},
                                                                                {"sku": "C300", "counted": 4}]})
    inst = engine.fire(inst.id, "submit_counts", people["a1"])
    assert inst.state == "recount"
    assert [(v["sku"], v["variance"], v["large"]) for v in inst.data["variances"]] == [
        ("A100", 0, False), ("B200", 0, False), ("C300", -6, True)]
    refused(InvalidPayload, inst, "recount", people["a1b"], {"lines": [{"sku": "A100", "counted": 100}]})
    inst = engine.fire(inst.id, "recount", people["a1b"], {"lines": [{"sku": "C300", "counted": 10}]})
    assert inst.state == "reporting"  # the recount found them
    inst = engine.fire(inst.id, "send_report", people["sm1"])
    assert inst.data["report"]["book_units"] == 160 and inst.data["report"]["net_variance"] == 0
    refused(InvalidPayload, inst, "query", people["acct"])  # a query needs its question
    engine.fire(inst.id, "query", people["acct"], comment="手套复盘记录请附上")
    engine.fire(inst.id, "send_report", people["sm1"], comment="已附复盘记录")
    inst = engine.fire(inst.id, "accept", people["acct"])
    assert inst.state == "closed"
    assert [s for _, _, s in trail(inst)][-6:] == ["recount", "reporting", "accountant_review", "reporting",
                                                   "accountant_review", "closed"]


def test_a_variance_that_survives_the_recount_needs_the_managers_approval(people, counting):
    inst = counting
    engine.fire(inst.id, "enter_counts", people["a1"], {"zone": "A柜", "lines": [
        {"sku": "A100", "counted": 100}, {"sku": "B200", "counted": 50}, {"sku": "C300", "counted": 7}]})
    engine.fire(inst.id, "submit_counts", people["a1"])
    inst = engine.fire(inst.id, "recount", people["a1"], {"lines": [{"sku": "C300", "counted": 7}]})
    assert inst.state == "variance_review"
    refused(NotPermitted, inst, "approve_variances", people["dep1"], comment="x")  # the store manager's call
    refused(InvalidPayload, inst, "approve_variances", people["sm1"])  # with the explanation
    assert engine.fire(inst.id, "approve_variances", people["sm1"], comment="三双被盗，已报案").state == "reporting"


def test_refusals_write_nothing(people, counting):
    inst = counting
    unknown_sku = {"zone": "A柜", "lines": [{"sku": "Z999", "counted": 1}]}
    refused(InvalidPayload, inst, "enter_counts", people["a1"], unknown_sku)
    refused(InvalidPayload, inst, "enter_counts", people["a1"], {"zone": "", "lines": []})
    refused(NotPermitted, inst, "enter_counts", people["a2"], {"zone": "A", "lines": [{"sku": "A100", "counted": 1}]})
    refused(InvalidPayload, inst, "submit_counts", people["a1"])  # nothing counted yet
    refused(NotPermitted, inst, "load_book", people["a1"], {"book": BOOK})  # assistants count, not load the book


def test_deadlines_same_day_then_next_working_day_noon(app, people, clock, smtp, counting):
    run_due(app, "2026-11-30T21:58:00+08:00")
    assert mails(smtp, "【提醒】") == []
    run_due(app, "2026-11-30T21:59:00+08:00")  # 2 hours before 23:59: the S1 store managers (and S2's, S3's)
    assert mails(smtp, "【提醒】") == ["sm1", "sm1asst", "sm2", "sm3"]
    run_due(app, "2026-11-30T23:59:00+08:00")
    assert mails(smtp, "【超时升级】") == ["east", "east"]  # S1, S2 to the east region
    assert mails(smtp, "[Escalation]") == ["south"]  # S3's regional manager reads English
    inst = reload(counting)
    engine.fire(inst.id, "enter_counts", people["a1"], {"zone": "A", "lines": [
        {"sku": s["sku"], "counted": s["quantity"]} for s in BOOK]})
    inst = engine.fire(inst.id, "submit_counts", people["a1"])
    assert inst.state == "reporting"
    assert inst.due_at == datetime(2026, 12, 1, 4, 0, tzinfo=UTC)  # Tuesday 1 December, 12:00 in Shanghai


def test_book_stock_from_csv():
    lines = parse_book_csv("\ufeff编码,名称,数量\nA100,羊毛衫,100\n\nB200,围巾,50\n")
    assert lines == [{"sku": "A100", "name": "羊毛衫", "quantity": 100},
                     {"sku": "B200", "name": "围巾", "quantity": 50}]
    with pytest.raises(InvalidPayload) as e:
        parse_book_csv("sku,name,quantity\nA100,羊毛衫,-1\n,x,3\n")
    assert set(e.value.errors) == {"line 2", "line 3"}
    with pytest.raises(InvalidPayload):
        parse_book_csv("商品,件数\nA,1\n")


def test_book_stock_csv_through_the_command_line(app, people, counting, tmp_path):
    good, bad = tmp_path / "book.csv", tmp_path / "bad.csv"
    good.write_text("编码,名称,数量\nA100,羊毛衫,90\nE500,腰带,7\n", encoding="utf-8-sig")
    bad.write_text("sku,name,quantity\nA100,羊毛衫,many\n", encoding="utf-8")
    runner = app.test_cli_runner()
    r = runner.invoke(args=["stocktake", "load-book", str(counting.id), str(good), "--as", "dep1"])
    assert r.exit_code == 0 and "loaded 2 book lines" in r.output
    assert [b["sku"] for b in reload(counting).data["book"]] == ["A100", "E500"]
    r = runner.invoke(args=["stocktake", "load-book", str(counting.id), str(bad), "--as", "dep1"])
    assert r.exit_code == 1 and "line 2" in r.output
    r = runner.invoke(args=["stocktake", "load-book", str(counting.id), str(good), "--as", "a1"])
    assert r.exit_code == 1 and "may not 'load_book'" in r.output
    assert [b["quantity"] for b in reload(counting).data["book"]] == [90, 7]
