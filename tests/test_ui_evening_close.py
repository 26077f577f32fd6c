"""The evening close (晚班) in a real browser: the deputy records the day's report, is told next to the stock card
that does not balance, signs on time, and the business manager confirms the next morning's allocation list drawn
from the 圈圈账; a close nobody did reaches the store manager by email (a real SMTP server) and is done late."""
import re
from datetime import UTC, datetime

import sqlalchemy as sa

import engine
from engine import org
from engine.db import db
from engine.models import Instance
from tests.flows import mails, run_due

pytest_plugins = ["tests.ui_fixtures"]
MONDAY = "2026-11-02"


def state_of(instance_id: int) -> str:
    db.session.rollback()  # see what the server's requests committed
    return db.session.scalar(sa.select(Instance.state).where(Instance.id == instance_id))


def fill_report(page, closing: str) -> None:
    form = "#action-record_report"
    lines = [("A100", "羊毛衫", "2", "798.00"), ("B200", "真丝围巾", "3", "897.00")]
    for n, (sku, name, qty, amount) in enumerate(lines):
        page.fill(f"{form} input[name='sales.{n}.sku']", sku)
        page.fill(f"{form} input[name='sales.{n}.name']", name)
        page.fill(f"{form} input[name='sales.{n}.quantity']", qty)
        page.fill(f"{form} input[name='sales.{n}.amount']", amount)
    page.fill(f"{form} input[name=receipts_total]", "1695.00")
    page.fill(f"{form} input[name=cash]", "600.00")
    for name, value in [("sku", "A100"), ("opening", "20"), ("received", "0"), ("sold", "2"), ("closing", closing)]:
        page.fill(f"{form} input[name='stock_cards.0.{name}']", value)
    page.click(f"{form} button[type=submit]")


def test_a_close_done_on_time_and_its_allocation_list_confirmed(browser_as, people, clock, shoot):
    org.add_user("yewu.east", "业务经理", "yewu.east@example.com", "pw-yewu.east", [("sales_manager", "EAST")])
    db.session.commit()
    inst = engine.start("evening_close", "S1", people["sm1"], {"day": MONDAY})
    clock.set(datetime(2026, 11, 2, 11, 10, tzinfo=UTC))  # 19:10 in Shanghai
    deputy = browser_as("dep1", width=390, height=844)  # on the shop floor, a phone
    row = deputy.locator(f"li.task[data-instance='{inst.id}']")
    assert "晚班日结" in row.inner_text()
    row.locator("a").click()
    fill_report(deputy, closing="19")  # 20 + 0 − 2 is 18
    error = deputy.locator("[data-field='stock_cards.0.closing']")
    assert error.inner_text() == "期初 + 进货 − 销售 = 18，不是 19。"  # next to the line, in Chinese
    assert deputy.input_value("input[name='sales.1.name']") == "真丝围巾"  # nothing lost
    deputy.fill("#action-record_report input[name='stock_cards.0.closing']", "18")
    deputy.click("#action-record_report button[type=submit]")
    deputy.wait_for_selector("text=已完成：填写日报")
    tally = deputy.inner_text("table.tally")
    assert tally.index("B200") < tally.index("A100")  # the 圈圈账: best sellers first
    deputy.click("#action-sign button[type=submit]")
    deputy.wait_for_selector("text=已完成：日结签字")
    assert state_of(inst.id) == "allocation"
    assert "Dep1" in deputy.inner_text("table.signoff")
    shoot(deputy, "evening-close-phone")

    clock.set(datetime(2026, 11, 3, 0, 30, tzinfo=UTC))  # 08:30 the next morning
    manager = browser_as("yewu.east")
    manager.locator(f"li.task[data-instance='{inst.id}'] a").click()
    form = "#action-confirm_allocation"
    assert manager.input_value(f"{form} input[name='lines.0.sku']") == "B200"  # drawn from the tally
    assert manager.input_value(f"{form} input[name='lines.0.quantity']") == "3"
    manager.fill(f"{form} input[name='lines.0.quantity']", "6")
    manager.fill(f"{form} input[name='lines.1.quantity']", "")  # A100: not this time
    manager.click(f"{form} button[type=submit]")
    manager.wait_for_selector("text=已完成：确认配货清单")
    assert state_of(inst.id) == "completed"
    lines = manager.inner_text("table.allocation")
    assert "B200" in lines and "6" in lines and "A100" not in lines
    shoot(manager, "evening-close-allocation")


def test_a_late_close_is_escalated_by_email_and_done_late(app, browser_as, people, clock, smtp):
    inst = engine.start("evening_close", "S2", people["sm2"], {"day": MONDAY})  # S2 has no deputy
    run_due(app, "2026-11-02T19:45:00+08:00")
    escalated = [m for m in smtp.messages if str(m["Subject"]).startswith("【超时升级】")]
    assert mails(smtp, "【超时升级】") == ["sm2"] and "晚班日结" in str(escalated[0]["Subject"])
    clock.set(datetime(2026, 11, 2, 11, 50, tzinfo=UTC))  # 19:50
    manager = browser_as("sm2")
    row = manager.locator(f"li.task.overdue[data-instance='{inst.id}']")
    assert row.count() == 1 and re.search(r"已超期", manager.inner_text("body"))
    row.locator("a").click()
    fill_report(manager, closing="18")
    manager.wait_for_selector("text=已完成：填写日报")
    manager.click("#action-sign button[type=submit]")
    manager.wait_for_selector("text=已完成：日结签字")
    assert state_of(inst.id) == "allocation"
    assert "19:50" in manager.inner_text("table.signoff")  # signed, five minutes late
