"""Month-end stocktake: created for every store at 19:00 on the last day, counted by zone, variances,
recount and approval, the report to the accountant, and its deadlines."""
import io
from datetime import UTC, datetime
from decimal import Decimal

import openpyxl
import pytest
import sqlalchemy as sa

import engine
from engine import mail, org, stock
from engine.db import db
from engine.errors import Duplicate, InvalidPayload, NotAvailable, NotPermitted
from engine.models import Instance, Notification
from tests.flows import mails, refused, reload, run_due, trail
from workflows import stocktake_report
from workflows.stocktake import parse_book_csv, parse_book_file

BOOK = [{"sku": "A100", "name": "羊毛衫", "quantity": 100}, {"sku": "B200", "name": "围巾", "quantity": 50},
        {"sku": "C300", "name": "手套", "quantity": 10}]
MONTH_END = datetime(2026, 11, 30, 11, 0, tzinfo=UTC)  # 19:00 in Shanghai
STOLEN = {"reasons": [{"sku": "C300", "reason": "被盗，已报案"}]}


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
    refused(InvalidPayload, inst, "approve_variances", people["sm1"], STOLEN)  # with the explanation
    e = refused(InvalidPayload, inst, "approve_variances", people["sm1"], comment="三双被盗")  # and the line's reason
    assert e.errors["reasons"] == ["C300 手套: a reason is required (variance -3 is beyond the tolerance)."]
    e = refused(InvalidPayload, inst, "approve_variances", people["sm1"],
                {"reasons": [*STOLEN["reasons"], {"sku": "Z9", "reason": "?"}]}, comment="三双被盗")
    assert e.errors["reasons"] == ["Z9: not a line of this stocktake."]
    inst = engine.fire(inst.id, "approve_variances", people["sm1"], STOLEN, comment="三双被盗，已报案")
    assert inst.state == "reporting" and inst.data["variance_reasons"] == {"C300": "被盗，已报案"}
    assert inst.data["approved_by"]["login"] == "sm1" and "reasons" not in inst.data


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


def told(inst) -> list[str]:
    """Who was given the current step (task notifications written on entering it)."""
    inst = reload(inst)
    return sorted(n.user.login for n in db.session.scalars(sa.select(Notification).where(
        Notification.instance_id == inst.id, Notification.kind == "task",
        Notification.created_at == inst.state_entered_at)))


def test_the_book_is_frozen_once_counting_begins_and_a_correction_sends_it_back_to_counting(people, counting):
    inst = counting
    engine.fire(inst.id, "enter_counts", people["a1"], {"zone": "A柜", "lines": [
        {"sku": "A100", "counted": 100}, {"sku": "B200", "counted": 50}, {"sku": "C300", "counted": 4}]})
    # rewriting the book to match the count would hide the six missing pairs of gloves
    hidden = [*BOOK[:2], {"sku": "C300", "name": "手套", "quantity": 4}]
    e = refused(InvalidPayload, inst, "load_book", people["dep1"], {"book": hidden})
    assert "frozen" in str(e.errors["book"])
    inst = engine.fire(inst.id, "submit_counts", people["a1"])
    assert inst.state == "recount"
    refused(NotAvailable, inst, "load_book", people["sm1"], {"book": hidden})
    refused(InvalidPayload, inst, "correct_book", people["sm1"], {"book": hidden})  # the reason is required
    refused(NotPermitted, inst, "correct_book", people["a1"], {"book": hidden}, comment="x")  # counters do not
    inst = engine.fire(inst.id, "correct_book", people["dep1"], {"book": hidden}, comment="C300 少录了退货6双")
    assert inst.state == "counting"  # counted again, against the corrected book
    assert "counts" not in inst.data and "variances" not in inst.data and inst.data["book"][2]["quantity"] == 4
    assert inst.data["book_corrections"][0]["replaced_units"] == 160
    assert trail(inst)[-1] == ("correct_book", "dep1", "counting")
    engine.fire(inst.id, "enter_counts", people["a1"], {"zone": "A柜", "lines": [
        {"sku": "A100", "counted": 100}, {"sku": "B200", "counted": 50}, {"sku": "C300", "counted": 4}]})
    assert engine.fire(inst.id, "submit_counts", people["a1"]).state == "reporting"
    report = engine.fire(inst.id, "send_report", people["sm1"]).data["report"]
    assert report["net_variance"] == 0 and report["book_corrections"] == 1  # the accountant sees the correction


def test_whoever_counted_does_not_approve_the_variances(people, clock, counting):
    inst = counting
    engine.fire(inst.id, "enter_counts", people["sm1"], {"zone": "A柜", "lines": [
        {"sku": "A100", "counted": 100}, {"sku": "B200", "counted": 50}, {"sku": "C300", "counted": 7}]})
    engine.fire(inst.id, "submit_counts", people["sm1"])
    clock.advance(minutes=10)
    inst = engine.fire(inst.id, "recount", people["sm1"], {"lines": [{"sku": "C300", "counted": 7}]})
    assert inst.state == "variance_review"
    assert told(inst) == ["sm1asst"]  # the store manager who did not count
    e = refused(NotPermitted, inst, "approve_variances", people["sm1"], comment="被盗")
    assert e.details["reason"] == "segregation_of_duties"
    assert engine.fire(inst.id, "approve_variances", people["sm1asst"], STOLEN,
                       comment="三双被盗，已报案").state == "reporting"


def test_a_store_manager_who_counted_alone_has_the_region_approve(app, people, clock):
    clock.set(MONTH_END)
    schedule(app, "2026-11-30T19:00:00+08:00")
    inst = db.session.scalar(sa.select(Instance).where(Instance.dedupe_key == "stocktake:S2:2026-11"))
    engine.fire(inst.id, "load_book", people["sm2"], {"book": BOOK})
    engine.fire(inst.id, "enter_counts", people["sm2"], {"zone": "A", "lines": [
        {"sku": "A100", "counted": 90}, {"sku": "B200", "counted": 50}, {"sku": "C300", "counted": 10}]})
    engine.fire(inst.id, "submit_counts", people["sm2"])
    clock.advance(minutes=10)
    inst = engine.fire(inst.id, "recount", people["a2"], {"lines": [{"sku": "A100", "counted": 90}]})
    assert told(inst) == ["east"]  # sm2 counted: the regional manager is given the approval
    refused(NotPermitted, inst, "approve_variances", people["sm2"], comment="ok")
    reasons = {"reasons": [{"sku": "A100", "reason": "调拨未入账"}]}
    assert engine.fire(inst.id, "approve_variances", people["east"], reasons, comment="已核实").state == "reporting"


def test_one_stocktake_per_store_and_month_also_when_started_by_hand(app, people, clock):
    clock.set(MONTH_END)
    first = engine.start("stocktake", "S1", people["sm1"], {"month": "2026-11"})
    with pytest.raises(Duplicate) as e:
        engine.start("stocktake", "S1", people["sm1"], {"month": "2026-11"})
    assert e.value.details["instance"] == first.id
    assert "stocktake: 2" in schedule(app, "2026-11-30T19:00:00+08:00")  # S2 and S3: S1 has its stocktake
    assert engine.start("stocktake", "S2", people["sm2"], {"month": "2026-10"}).state == "counting"
    with pytest.raises(Duplicate):
        engine.start("stocktake", "S2", people["sm2"], {"month": "2026-11"})  # the scheduler's one


@pytest.mark.parametrize("month, message", [("0001-01", "2000 to 2100"), ("9999-12", "2000 to 2100"),
                                            ("2025-10", "past"),
                                            ("2027-01", "ahead")])
def test_the_month_lies_within_a_year_back_and_a_month_ahead(people, clock, month, message):
    clock.set(MONTH_END)  # November 2026: from November 2025 to December 2026
    with pytest.raises(InvalidPayload) as e:
        engine.start("stocktake", "S1", people["sm1"], {"month": month})
    assert message in str(e.value.errors["month"])
    for month in ("2025-11", "2026-12"):
        assert engine.start("stocktake", "S1", people["sm1"], {"month": month}).data["month"] == month


# ---- the report an accountant can use (盘存报表) ----

PRICED = [{"sku": "A100", "name": "羊毛衫", "quantity": 100, "unit_cost": "258.00"},
          {"sku": "B200", "name": "=HYPERLINK(\"http://x\")", "quantity": 50, "unit_cost": "35.50"},
          {"sku": "C300", "name": "手套", "quantity": 10, "unit_cost": "19.90"}]


def reported(people, counting):
    """A stocktake with money variances: a1 and a1b count, a1b recounts the gloves, sm1 approves, sm1 sends."""
    inst = counting
    engine.fire(inst.id, "load_book", people["dep1"], {"book": PRICED})
    engine.fire(inst.id, "enter_counts", people["a1"], {"zone": "A柜", "lines": [{"sku": "A100", "counted": 99},
                                                                               {"sku": "B200", "counted": 50}]})
    engine.fire(inst.id, "enter_counts", people["a1b"], {"zone": "B柜", "lines": [{"sku": "C300", "counted": 4}]})
    engine.fire(inst.id, "submit_counts", people["a1"])
    inst = engine.fire(inst.id, "recount", people["a1b"], {"lines": [{"sku": "C300", "counted": 4}]})
    assert inst.state == "variance_review"
    engine.fire(inst.id, "approve_variances", people["sm1"], {"reasons": [
        {"sku": "C300", "reason": "-6双被盗，已报案"}, {"sku": "A100", "reason": "试穿损坏一件"}]}, comment="已核实")
    return engine.fire(inst.id, "send_report", people["sm1"])


def test_the_report_has_money_variances_reasons_and_who_counted_and_approved(people, counting):
    inst = reported(people, counting)
    assert [(v["sku"], v["variance"], v["unit_cost"], v["money_variance"]) for v in inst.data["variances"]] == [
        ("A100", -1, "258.00", "-258.00"), ("B200", 0, "35.50", "0.00"), ("C300", -6, "19.90", "-119.40")]
    report = inst.data["report"]
    assert (report["net_variance"], report["lines_with_variance"], report["money_variance"]) == (-7, 2, "-377.40")
    facts = stocktake_report.facts(reload(inst))
    assert [(r["sku"], r["reason"]) for r in facts.lines] == [("A100", "试穿损坏一件"), ("B200", ""),
                                                              ("C300", "-6双被盗，已报案")]
    assert [(c["login"], c["zone"]) for c in facts.counted_by] == [("a1", "A柜"), ("a1b", "B柜")]
    assert [c["login"] for c in facts.recounted_by] == ["a1b"]
    assert facts.approved_by["login"] == "sm1" and facts.approved_by["comment"] == "已核实"
    assert facts.totals["money_variance"] == Decimal("-377.40")
    page = stocktake_report.html(facts, "zh")
    assert "-377.40" in page and "试穿损坏一件" in page and "差异批准人" in page
    assert "&#34;http://x&#34;" in page or "&quot;http://x&quot;" in page  # escaped, not markup


def test_book_lines_without_a_unit_cost_have_no_money_variance(people, counting):
    inst = counting
    engine.fire(inst.id, "enter_counts", people["a1"], {"zone": "A", "lines": [{"sku": "A100", "counted": 100},
                                                                             {"sku": "B200", "counted": 50}]})
    inst = engine.fire(inst.id, "submit_counts", people["a1"])
    assert inst.state == "recount" and {v["money_variance"] for v in inst.data["variances"]} == {None}
    assert stocktake_report.facts(inst).totals["money_variance"] is None
    wb = openpyxl.load_workbook(io.BytesIO(stocktake_report.xlsx(stocktake_report.facts(inst), "en")))
    assert wb.active["A1"].value == "Month-end stocktake report"


def test_book_lines_without_a_unit_cost_take_the_store_stock_lists(app, people, clock):
    clock.set(MONTH_END)
    stock.replace(org.unit_by_code("S1"), [{"sku": "A100", "name": "羊毛衫", "unit_cost": Decimal("258.00")}])
    inst = engine.start("stocktake", "S1", people["sm1"], {"month": "2026-11"})
    inst = engine.fire(inst.id, "load_book", people["dep1"], {"book": [
        {"sku": "A100", "quantity": 10}, {"sku": "B200", "name": "围巾", "quantity": 5, "unit_cost": "35.50"}]})
    assert [(b["sku"], b["name"], b["unit_cost"]) for b in inst.data["book"]] == [
        ("A100", "羊毛衫", "258.00"), ("B200", "围巾", "35.50")]  # the book's own cost wins where it has one
    engine.fire(inst.id, "enter_counts", people["a1"], {"zone": "A", "lines": [{"sku": "A100", "counted": 9},
                                                                             {"sku": "B200", "counted": 5}]})
    inst = engine.fire(inst.id, "submit_counts", people["a1"])
    assert {v["sku"]: v["money_variance"] for v in inst.data["variances"]} == {"A100": "-258.00", "B200": "0.00"}


def xlsx_rows(content: bytes) -> tuple[dict, list[list]]:
    """(the header facts by label, the table rows from its header on) of the report workbook."""
    sheet = openpyxl.load_workbook(io.BytesIO(content)).active
    rows = [[c for c in row] for row in sheet.iter_rows()]
    top = next(n for n, row in enumerate(rows) if row[0].value in ("编码", "SKU"))
    return {r[0].value: r[1] for r in rows[1:top] if r[0].value}, rows[top:]


def test_the_accountants_email_carries_the_report_as_xlsx_and_a_printable_page(app, people, counting, smtp):
    inst = reported(people, counting)
    assert inst.state == "accountant_review"
    mail.send_pending()
    to_acct = [m for m in smtp.messages if m["To"].addresses[0].username == "acct"]
    assert len(to_acct) == 1
    files = {a.get_filename(): a for a in to_acct[0].iter_attachments()}
    assert set(files) == {"stocktake-S1-2026-11.xlsx", "stocktake-S1-2026-11.html"}
    assert files["stocktake-S1-2026-11.xlsx"].get_content_type() == stocktake_report.XLSX
    head, table = xlsx_rows(files["stocktake-S1-2026-11.xlsx"].get_content())
    assert [c.value for c in table[0]] == ["编码", "名称", "账面数量", "实盘数量", "数量差异", "单价（元）",
                                           "金额差异（元）", "差异原因"]
    lines = [[c.value for c in row] for row in table[1:4]]
    assert lines == [["A100", "羊毛衫", 100, 99, -1, 258, -258, "试穿损坏一件"],
                     ["B200", "=HYPERLINK(\"http://x\")", 50, 50, 0, 35.5, 0, None],
                     ["C300", "手套", 10, 4, -6, 19.9, -119.4, "-6双被盗，已报案"]]
    assert table[1][1].data_type == "s" and table[2][1].data_type == "s"  # a formula-like name stays text
    assert table[3][7].data_type == "s"  # so does a reason starting with "-"
    assert {row[6].number_format for row in table[1:4]} == {"#,##0.00"}
    total = [c.value for c in table[4]]
    assert total[0] == "合计" and total[2:5] == [160, 153, -7] and total[6] == -377.4
    assert head["盘点人"].value == "A1（A柜）、A1B（B柜）" and head["复盘人"].value == "A1B"
    assert head["差异批准人"].value == "Sm1" and head["批准意见"].value == "已核实"
    assert isinstance(head["报送时间"].value, datetime) and head["报送时间"].value == datetime(2026, 11, 30, 19, 0)
    page = files["stocktake-S1-2026-11.html"].get_content()
    assert "月末盘存报表" in page and "@page" in page and "-377.40" in page


def test_the_report_is_due_the_next_day_by_the_store_not_the_next_working_day(app, people, clock):
    clock.set(datetime(2026, 9, 30, 11, 0, tzinfo=UTC))  # 30 September, 19:00: National Day starts tomorrow
    inst = engine.start("stocktake", "S1", people["sm1"], {"month": "2026-09", "book": BOOK})
    engine.fire(inst.id, "enter_counts", people["a1"], {"zone": "A", "lines": [
        {"sku": s["sku"], "counted": s["quantity"]} for s in BOOK]})
    clock.advance(hours=2)
    inst = engine.fire(inst.id, "submit_counts", people["a1"])
    assert inst.state == "reporting"
    assert inst.due_at == datetime(2026, 10, 1, 4, 0, tzinfo=UTC)  # 1 October 12:00 in Shanghai, not 8 October


def test_book_stock_with_unit_costs_from_csv_and_from_excel():
    lines = parse_book_csv("编码,名称,数量,单价\nA100,羊毛衫,100,258\nB200,围巾,50,\n")
    assert lines == [{"sku": "A100", "name": "羊毛衫", "quantity": 100, "unit_cost": "258.00"},
                     {"sku": "B200", "name": "围巾", "quantity": 50}]
    with pytest.raises(InvalidPayload) as e:
        parse_book_csv("sku,quantity,unit_cost\nA100,1,-3\nB200,2,cheap\n")
    assert set(e.value.errors) == {"line 2", "line 3"} and "unit_cost" in e.value.errors["line 2"][0]
    wb = openpyxl.Workbook()
    for row in (["sku", "name", "quantity", "unit_cost"], ["A100", "羊毛衫", 100, 258.5], ["B200", None, 7, None]):
        wb.active.append(row)
    out = io.BytesIO()
    wb.save(out)
    assert parse_book_file(out.getvalue()) == [
        {"sku": "A100", "name": "羊毛衫", "quantity": 100, "unit_cost": "258.50"},
        {"sku": "B200", "name": "", "quantity": 7}]
    with pytest.raises(InvalidPayload) as e:
        parse_book_file(b"PK\x03\x04 not really a workbook")
    assert "Excel" in e.value.errors["file"][0]
