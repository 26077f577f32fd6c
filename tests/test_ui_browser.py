"""The UI in a real browser: Playwright driving Debian's Chromium against the app served on 127.0.0.1.
Screenshots of the inbox, an instance page, the sign-off sheet on a phone and the dashboard go to
tests/artifacts/ (ignored by git; CI keeps them)."""
import io
import re
from datetime import UTC, datetime, timedelta

import openpyxl
import sqlalchemy as sa

import engine
from engine import mail, org
from engine.db import db
from engine.models import Instance

pytest_plugins = ["tests.ui_fixtures"]
CJK = re.compile(r"[\u4e00-\u9fff]")


def state_of(instance_id: int) -> str:
    db.session.rollback()  # end this session's snapshot: see what the server's requests committed
    return db.session.scalar(sa.select(Instance.state).where(Instance.id == instance_id))


def test_rep_submits_a_plan_and_the_manager_approves_it(browser_as, clock, shoot, diagram_drawn):
    rep = browser_as("rep1")
    rep.click("text=发起")
    rep.click("text=月度销售计划")
    rep.fill("input[name=month]", "2026-12")
    rep.fill("input[name=budget]", "-5")
    rep.fill("input[name='targets.amount']", "120000")
    rep.fill("input[name='targets.new_customers']", "10")
    rep.fill("input[name='targets.visits']", "200")
    rep.fill("input[name='actions.0.title']", "拜访老客户")
    rep.click("button:has-text('发起')")
    error = rep.locator("[data-field=budget]")
    assert error.inner_text() == "不能小于0。"  # next to the field, in Chinese
    assert rep.input_value("input[name='actions.0.title']") == "拜访老客户"  # nothing lost
    rep.fill("input[name=budget]", "3000")
    rep.click("button:has-text('发起')")
    rep.wait_for_url(re.compile(r".*/instances/\d+$"))
    instance_id = int(rep.url.rsplit("/", 1)[1])
    assert "草拟" in rep.inner_text(".meta")
    rep.click("#action-submit button[type=submit]")
    rep.wait_for_selector("text=已完成：提交")
    assert state_of(instance_id) == "manager_review"
    assert rep.locator("#action-approve").count() == 0  # no approve button on one's own plan
    diagram_drawn(rep)
    shoot(rep, "instance-plan-rep")

    boss = browser_as("salesmgr")
    row = boss.locator(f"li.task[data-instance='{instance_id}']")
    assert "月度销售计划" in row.inner_text()
    shoot(boss, "inbox-manager")
    row.locator("a").click()
    boss.click("#action-approve button[type=submit]")
    boss.wait_for_selector("text=已完成：批准")
    assert state_of(instance_id) == "approved"
    assert "执行中" in boss.inner_text(".meta")
    assert "批准" in boss.inner_text("#history")
    diagram_drawn(boss)
    shoot(boss, "instance-plan-approved")


def test_two_people_sign_a_handover_and_nobody_signs_twice(browser_as, people, clock, shoot):
    at = (clock.current + timedelta(minutes=20)).isoformat()  # signatures open 30 minutes before
    counts = {"cash_expected": "1000.00", "cash_counted": "1000.00", "goods": []}
    inst = engine.start("shift_handover", "S1", people["sm1"], {"handover_at": at, "counts": counts})
    manager = browser_as("sm1")
    manager.goto(f"{manager.base}/instances/{inst.id}")
    assert manager.locator("#action-sign_in").count() == 1 and manager.locator("#action-sign_out").count() == 1
    manager.click("#action-sign_out button[type=submit]")
    manager.wait_for_selector("text=已完成：交班签字")
    assert manager.locator("#action-sign_in").count() == 0  # the same person cannot sign twice
    assert manager.locator("#action-sign_out").count() == 0
    deputy = browser_as("dep1", width=390, height=844)  # a phone
    deputy.goto(f"{deputy.base}/instances/{inst.id}")
    assert "Sm1" in deputy.inner_text("table.signoff")
    no_sideways_scrolling(deputy)
    deputy.click("#action-sign_in button[type=submit]")
    deputy.wait_for_selector("text=已完成：接班签字")
    assert state_of(inst.id) == "completed"
    assert "Dep1" in deputy.inner_text("table.signoff")
    shoot(deputy, "handover-signoff-phone")


def test_a_discrepancy_signed_by_manager_and_deputy_reaches_the_sales_manager_who_countersigns(
        browser_as, people, clock, smtp, shoot):
    # the seed's normal case: 店长 and 副店长 sign; with a discrepancy the store manager may not countersign (he
    # signed), so the sales manager above the store is asked, by email, and countersigns seeing what he signs
    org.add_user("dep2", "副店长二", "dep2@example.com", "pw-dep2", [("deputy_manager", "S2")])
    org.add_user("regsales", "华东销售经理", "regsales@example.com", "pw-regsales", [("sales_manager", "EAST")])
    db.session.commit()
    at = (clock.current + timedelta(minutes=20)).isoformat()  # signatures open 30 minutes before
    counts = {"cash_expected": "1000.00", "cash_counted": "950.00", "receipts_total": "3200.00", "notes": "少50元",
              "goods": [{"sku": "A100", "name": "羊毛衫", "expected": 3, "counted": 2}]}
    inst = engine.start("shift_handover", "S2", people["sm2"], {"handover_at": at, "counts": counts})
    for login, trigger, done in (("sm2", "sign_out", "交班签字"), ("dep2", "sign_in", "接班签字")):
        page = browser_as(login)
        page.goto(f"{page.base}/instances/{inst.id}")
        page.click(f"#action-{trigger} button[type=submit]")
        page.wait_for_selector(f"text=已完成：{done}")
    assert state_of(inst.id) == "countersign"
    assert "华东销售经理" in page.inner_text(".meta")  # the owner shown is who may act, not the store manager
    mail.send_pending()
    asked = [m for m in smtp.messages if "差异待店长复核" in str(m["Subject"])]
    assert [m["To"].addresses[0].username for m in asked] == ["regsales"]
    body = asked[0].get_body(("plain",)).get_content()
    assert "少50元" in body and "950.00" in body and "A100 羊毛衫：3 → 2 (-1)" in body
    link = re.search(r"https?://\S+/instances/\d+", body).group(0)
    sales = browser_as("regsales")
    sales.goto(f"{sales.base}/instances/{link.rsplit('/', 1)[1]}")
    facts = sales.inner_text("#step-facts")
    assert "少50元" in facts and "3200.00" in facts and "清点人自报" in facts and "3 → 2 (-1)" in facts
    sales.fill("#action-countersign textarea[name=comment]", "已核实：找零差错")
    sales.click("#action-countersign button[type=submit]")
    sales.wait_for_selector("text=已完成：复核签字")
    assert state_of(inst.id) == "completed"
    shoot(sales, "handover-countersigned")


def test_stocktake_with_a_variance_goes_through_recount_and_approval(browser_as, people, clock, tmp_path, shoot,
                                                                    diagram_drawn, smtp):
    inst = engine.start("stocktake", "S1", people["sm1"], {"month": "2026-11"})
    sm = browser_as("sm1")
    sm.goto(f"{sm.base}/instances/{inst.id}")
    csv = tmp_path / "book.csv"
    csv.write_text("编码,名称,数量,单价\nA1,茶杯,100,12.50\nB2,茶壶,10,1288\n", encoding="utf-8")
    sm.set_input_files("#action-load_book input[type=file]", str(csv))
    sm.click("#action-load_book button[type=submit]")
    sm.wait_for_selector("text=已完成：导入账面库存")
    form = "#action-enter_counts"
    sm.fill(f"{form} input[name=zone]", "A柜")
    # the count sheet lists the book's SKUs with their names: only the numbers are typed
    assert sm.input_value(f"{form} input[name='lines.0.sku']") == "A1" and "茶壶" in sm.inner_text(form)
    sm.fill(f"{form} input[name='lines.0.counted']", "100")
    sm.fill(f"{form} input[name='lines.1.counted']", "4")
    sm.click(f"{form} button[type=submit]")
    sm.wait_for_selector("text=已完成：录入盘点")
    sm.click("#action-submit_counts button[type=submit]")
    sm.wait_for_selector("text=已完成：提交盘点")
    assert state_of(inst.id) == "recount"
    large = sm.locator("table.variances tr.large")
    assert large.count() == 1 and "B2" in large.inner_text() and "-6" in large.inner_text()
    assert sm.input_value("#action-recount input[name='lines.0.sku']") == "B2"  # only the flagged line
    sm.fill("#action-recount input[name='lines.0.counted']", "5")
    sm.click("#action-recount button[type=submit]")
    sm.wait_for_selector("text=已完成：复盘")
    assert state_of(inst.id) == "variance_review"
    # the store manager counted and recounted: his own variances are approved above him, by the region
    assert sm.locator("#action-approve_variances").count() == 0
    region = browser_as("east")
    region.goto(f"{region.base}/instances/{inst.id}")
    region.click("#action-approve_variances button[type=submit]")  # no comment: refused, next to the box
    assert "此操作需要填写意见" in region.inner_text("#action-approve_variances")
    region.fill("#action-approve_variances textarea[name=comment]", "茶壶破损五只，已报损")
    # the approval lists the line beyond the tolerance: it needs its reason
    assert region.input_value("#action-approve_variances input[name='reasons.0.sku']") == "B2"
    region.click("#action-approve_variances button[type=submit]")
    assert "B2 茶壶：差异 -5 超出容差，须填写差异原因。" in region.inner_text("#action-approve_variances")
    region.fill("#action-approve_variances [name='reasons.0.reason']", "搬运破损五只")
    region.click("#action-approve_variances button[type=submit]")
    region.wait_for_selector("text=已完成：批准差异")
    assert state_of(inst.id) == "reporting"
    assert "茶壶破损五只" in region.inner_text("#history")
    diagram_drawn(region)
    shoot(region, "instance-stocktake")

    # the store manager sends the report; the accountant's email carries it as .xlsx, and the page offers it
    sm.goto(f"{sm.base}/instances/{inst.id}")
    sm.click("#action-send_report button[type=submit]")
    sm.wait_for_selector("text=已完成：报送会计")
    assert state_of(inst.id) == "accountant_review"
    with sm.expect_download() as download:
        sm.click("#report-xlsx")
    downloaded = download.value.path().read_bytes()
    mail.send_pending()
    [to_acct] = [m for m in smtp.messages if m["To"].addresses[0].username == "acct"]
    [attached] = [a for a in to_acct.iter_attachments() if a.get_filename().endswith(".xlsx")]
    for content in (attached.get_content(), downloaded):
        rows = list(openpyxl.load_workbook(io.BytesIO(content)).active.iter_rows(values_only=True))
        table = rows[next(n for n, r in enumerate(rows) if r[0] == "编码"):]
        assert table[0] == ("编码", "名称", "账面数量", "实盘数量", "数量差异", "单价（元）", "金额差异（元）",
                            "差异原因")
        assert table[1] == ("A1", "茶杯", 100, 100, 0, 12.5, 0, None)
        assert table[2] == ("B2", "茶壶", 10, 5, -5, 1288, -6440, "搬运破损五只")
        assert table[3][:7] == ("合计", None, 110, 105, -5, None, -6440)
        head = {r[0]: r[1] for r in rows[1:8]}
        assert head["盘点人"] == "Sm1（A柜）" and head["复盘人"] == "Sm1" and head["差异批准人"] == "East"
    with sm.expect_popup() as popup:
        sm.click("#report-html")  # the printable page, in a tab of its own
    popup.value.wait_for_selector("tfoot")
    assert "月末盘存报表" in popup.value.inner_text("h1") and "-6,440.00" in popup.value.inner_text("tfoot")


def test_switching_to_english_shows_english_on_those_pages(browser_as, people, clock, shoot, diagram_drawn):
    inst = engine.start("monthly_plan", "T1", people["rep1"], {"month": "2026-12", "budget": "100"})
    engine.fire(inst.id, "submit", people["rep1"])
    clock.set(datetime(2026, 11, 9, 2, 0, tzinfo=UTC))  # the review is overdue now
    at = (clock.current + timedelta(hours=1)).isoformat()
    handover = engine.start("shift_handover", "S1", people["sm1"], {"handover_at": at})
    page = browser_as("salesmgr")
    page.click("text=Salesmgr")
    page.select_option("select[name='s-locale']", "en")
    page.click("button:has-text('保存')")
    page.wait_for_selector("text=My account")
    for url in ("/inbox", f"/instances/{inst.id}", "/dashboard", "/start"):
        page.goto(page.base + url)
        if url.startswith("/instances"):
            diagram_drawn(page)
        text = page.inner_text("body")
        assert not CJK.findall(text), (url, CJK.findall(text)[:10])
    page.goto(page.base + "/inbox")
    assert "Overdue" in page.inner_text("body") and "Monthly sales plan" in page.inner_text("body")
    shoot(page, "inbox-english")
    page.goto(page.base + "/dashboard")
    shoot(page, "dashboard")
    sm = browser_as("sm1")
    sm.click("text=Sm1")
    sm.select_option("select[name='s-locale']", "en")
    sm.click("button:has-text('保存')")
    sm.goto(f"{sm.base}/instances/{handover.id}")
    text = sm.inner_text("body")
    assert "Shift handover sign-off" in text and not CJK.findall(text), CJK.findall(text)[:10]


def no_sideways_scrolling(page) -> None:
    wide = page.evaluate("""() => [...document.querySelectorAll('body *')]
        .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1 && !e.closest('.scroll'))
        .map(e => e.tagName + '.' + e.className).slice(0, 5)""")
    assert wide == [] and page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


def test_inbox_and_instance_page_fit_a_phone(browser_as, people, clock, shoot, diagram_drawn):
    inst = engine.start("monthly_plan", "T1", people["rep1"], {
        "month": "2026-12", "actions": [{"title": "拜访老客户", "week": 1}], "budget": "3000"})
    engine.fire(inst.id, "submit", people["rep1"])
    phone = browser_as("salesmgr", width=375, height=740)
    no_sideways_scrolling(phone)
    assert phone.locator(f"li.task[data-instance='{inst.id}']").is_visible()
    shoot(phone, "inbox-phone")
    phone.goto(f"{phone.base}/instances/{inst.id}")
    diagram_drawn(phone)
    no_sideways_scrolling(phone)
    assert phone.locator("#action-approve button[type=submit]").is_visible()
    shoot(phone, "instance-phone")
