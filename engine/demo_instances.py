"""The demo's instances: every workflow in realistic states across the stores, some overdue.

History is back-dated with `clock.as_of`, so deadlines armed in the past are overdue now, exactly as they
would be had the work happened then.
"""
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from engine import clock, org, runtime, scheduler, targets
from engine.db import db
from engine.models import Instance

SH = ZoneInfo("Asia/Shanghai")
BOOK = [{"sku": "A100", "name": "羊毛衫", "quantity": 120, "unit_cost": "258.00"},
        {"sku": "B200", "name": "真丝围巾", "quantity": 60, "unit_cost": "135.50"},
        {"sku": "C300", "name": "皮手套", "quantity": 35, "unit_cost": "89.00"},
        {"sku": "D400", "name": "羊绒帽", "quantity": 48, "unit_cost": "66.00"}]


def _local(day, hour, minute=0) -> datetime:
    return datetime.combine(day, datetime.min.time(), tzinfo=SH).replace(hour=hour, minute=minute)


def create(now: datetime) -> None:
    today = now.astimezone(SH).date()
    user = org.user_by_login
    fire = runtime.fire
    _plans(today, user, fire)
    _stocktakes(today, user, fire)
    _handovers(today, user, fire)
    _evening_closes(today, user, fire)
    _complaints(now, user, fire)
    _cohort(today, user)


def _plans(today, user, fire) -> None:
    for login, team in [("zheng.yewu", "TEAM-E"), ("wang.yewu", "TEAM-E"), ("feng.yewu", "TEAM-S")]:
        targets.set_annual(today.year, org.unit_by_code(team).id, user(login).id, "1500000", 150, 3000)
        targets.set_annual(today.year + 1, org.unit_by_code(team).id, user(login).id, "1650000", 160, 3200)
    db.session.commit()
    this_month, next_month = today.strftime("%Y-%m"), (today.replace(day=28) + timedelta(days=5)).strftime("%Y-%m")
    with clock.as_of(_local(today.replace(day=1), 9) - timedelta(days=10)):
        running = runtime.start("monthly_plan", "TEAM-E", user("wang.yewu"), {
            "month": this_month, "actions": [{"title": "走访十家老客户", "week": 1},
                                             {"title": "新品试穿会", "week": 3}], "budget": "8000"})
        fire(running.id, "submit", user("wang.yewu"))
        fire(running.id, "approve", user("wu.zhuguan"))
    waiting = runtime.start("monthly_plan", "TEAM-E", user("zheng.yewu"), {"month": next_month, "budget": "12000"})
    fire(waiting.id, "submit", user("zheng.yewu"))
    runtime.start("monthly_plan", "TEAM-S", user("feng.yewu"), {"month": next_month})  # still a draft


def _stocktakes(today, user, fire) -> None:
    last_month_end = today.replace(day=1) - timedelta(days=1)
    with clock.as_of(_local(last_month_end, 19)):
        scheduler.run(clock.now(), "stocktake")
    rows = {i.org_unit.code: i for i in _instances("stocktake")}
    short = {"SH01": {}, "HZ01": {"C300": 1}, "SZ01": {"B200": 3}}  # HZ01 within the tolerance; SZ01 beyond it
    with clock.as_of(_local(last_month_end, 19, 30)):
        for code, n in (("SH01", 1), ("HZ01", 2), ("SZ01", 4)):  # the assistants count, the manager loads the book
            fire(rows[code].id, "load_book", user(f"dianzhang{n}"), {"book": BOOK})
            counts = [{"sku": b["sku"], "counted": b["quantity"] - short[code].get(b["sku"], 0)} for b in BOOK]
            fire(rows[code].id, "enter_counts", user(f"dianyuan{n}a"), {"zone": "A柜", "lines": counts})
            fire(rows[code].id, "submit_counts", user(f"dianyuan{n}a"))
        fire(rows["GZ01"].id, "load_book", user("dianzhang3"), {"book": BOOK})  # GZ01 never finished counting
    with clock.as_of(_local(last_month_end, 20, 10)):  # SZ01: the deputy recounts, the store manager explains
        fire(rows["SZ01"].id, "recount", user("fudianzhang4"), {"lines": [{"sku": "B200", "counted": 57}]})
        fire(rows["SZ01"].id, "approve_variances", user("dianzhang4"),
             {"reasons": [{"sku": "B200", "reason": "三条围巾试戴时勾丝，已报损待供应商换货"}]},
             comment="已核实，同意报损")
    with clock.as_of(_local(last_month_end, 21)):
        fire(rows["SH01"].id, "send_report", user("dianzhang1"))
        fire(rows["SZ01"].id, "send_report", user("dianzhang4"))
    with clock.as_of(_local(last_month_end + timedelta(days=1), 10)):
        fire(rows["SH01"].id, "accept", user("qian.kuaiji"))
    # HZ01's report was never sent: overdue since the next working day at 12:00


def _handovers(today, user, fire) -> None:
    yesterday = today - timedelta(days=1)
    with clock.as_of(_local(yesterday, 14)):
        scheduler.run(clock.now(), "shift_handover")
        rows = {i.org_unit.code: i for i in _instances("shift_handover")}
        good = {"cash_expected": "5000.00", "cash_counted": "5000.00", "receipts_total": "18760.00",
                "goods": [{"sku": "A100", "name": "羊毛衫", "expected": 4, "counted": 4}], "full_count": False}
        if yesterday.weekday() == 1:  # Tuesday: count everything
            good = good | {"full_count": True, "goods": [{"sku": b["sku"], "name": b["name"], "expected": b["quantity"],
                                                          "counted": b["quantity"]} for b in BOOK]}
        for code, out, inn, cash in [("SH01", "dianzhang1", "fudianzhang1", "5000.00"),
                                     ("HZ01", "fudianzhang2", "dianzhang2", "4950.00"),
                                     ("SZ01", "dianzhang4", "fudianzhang4", "5000.00")]:
            fire(rows[code].id, "record_counts", user(out), {"counts": good | {"cash_counted": cash}})
            fire(rows[code].id, "sign_out", user(out))
            fire(rows[code].id, "sign_in", user(inn))
        # GZ01 never signed: overdue; HZ01 is short 50 yuan: waiting for a countersignature


def _day_report(scale: int) -> dict:
    """A store's day: sales by SKU (and one category), receipts, cash, and stock cards that balance."""
    sold = {"A100": 3 * scale, "B200": 2 * scale, "C300": scale}
    prices = {"A100": 399, "B200": 299, "C300": 159}
    sales = [{"sku": b["sku"], "name": b["name"], "quantity": sold[b["sku"]],
              "amount": f"{sold[b['sku']] * prices[b['sku']]}.00"} for b in BOOK if b["sku"] in sold]
    sales.append({"category": "配饰", "quantity": 2, "amount": "120.00"})
    total = sum(int(line["amount"][:-3]) for line in sales)
    cards = [{"sku": b["sku"], "name": b["name"], "opening": b["quantity"], "received": 0,
              "sold": sold.get(b["sku"], 0), "closing": b["quantity"] - sold.get(b["sku"], 0)} for b in BOOK]
    return {"sales": sales, "receipts_total": f"{total}.00", "cash": f"{total // 3}.00", "stock_cards": cards}


def _evening_closes(today, user, fire) -> None:
    """The day before yesterday's closes are done and their allocation lists confirmed; yesterday SH01 and SZ01
    closed on time (their lists await the business manager, or the region where there is none), HZ01 late,
    and GZ01 never did (overdue: the store manager and then the region are told)."""
    for back in (2, 1):
        day = today - timedelta(days=back)
        with clock.as_of(_local(day, 19)):
            scheduler.run(clock.now(), "evening_close")
    rows = {(i.org_unit.code, i.data["day"]): i for i in _instances("evening_close")}
    before, yesterday = (today - timedelta(days=2)).isoformat(), (today - timedelta(days=1)).isoformat()
    closers = {"SH01": "fudianzhang1", "HZ01": "dianyuan2a", "GZ01": "fudianzhang3", "SZ01": "dianyuan4a"}
    with clock.as_of(_local(today - timedelta(days=2), 19, 35)):
        for scale, (code, login) in enumerate(closers.items(), 1):
            fire(rows[(code, before)].id, "record_report", user(login), _day_report(scale))
            fire(rows[(code, before)].id, "sign", user(login))
    with clock.as_of(_local(today - timedelta(days=1), 8, 30)):
        for code, manager in [("SH01", "lin.zhuguan"), ("HZ01", "lin.zhuguan"), ("GZ01", "zhou.jingli"),
                              ("SZ01", "zhou.jingli")]:
            fire(rows[(code, before)].id, "confirm_allocation", user(manager))
    with clock.as_of(_local(today - timedelta(days=1), 19, 40)):
        for code in ("SH01", "SZ01"):
            fire(rows[(code, yesterday)].id, "record_report", user(closers[code]), _day_report(2))
            fire(rows[(code, yesterday)].id, "sign", user(closers[code]))
    with clock.as_of(_local(today - timedelta(days=1), 20, 20)):  # 35 minutes late, by the store manager
        fire(rows[("HZ01", yesterday)].id, "record_report", user("dianzhang2"), _day_report(1))
        fire(rows[("HZ01", yesterday)].id, "sign", user("dianzhang2"))
    # GZ01 never closed yesterday: overdue, escalated to its store manager and then the region


def _complaints(now, user, fire) -> None:
    base = {"customer": "王女士", "contact": "139-0000-1234", "channel": "phone", "order_ref": "SO-20261",
            "category": "product_quality", "severity": "high", "description": "羊毛衫洗后缩水，要求退换。"}
    with clock.as_of(now - timedelta(days=3)):
        handled = runtime.start("complaint", "SH01", user("dianyuan1a"), base)
        fire(handled.id, "acknowledge", user("he.kefu"))
        fire(handled.id, "assign", user("he.kefu"), {"assignee": "dianyuan1b"})
        fire(handled.id, "resolve", user("dianyuan1b"), {"resolution": "已为顾客换新并赠送护理剂"})
        fire(handled.id, "follow_up", user("he.kefu"), {"satisfaction": 5, "follow_up_notes": "顾客满意"})
        fire(handled.id, "close", user("he.kefu"))
    with clock.as_of(now - timedelta(hours=5)):
        runtime.start("complaint", "GZ01", user("dianyuan3a"), base | {
            "customer": "陈先生", "severity": "critical", "channel": "wechat", "description": "收银多扣款，情绪激动。"})
    with clock.as_of(now - timedelta(days=1)):
        assigned = runtime.start("complaint", "HZ01", user("he.kefu"),
                                 base | {"customer": "赵女士", "severity": "medium", "category": "service"})
        fire(assigned.id, "acknowledge", user("he.kefu"))
        fire(assigned.id, "assign", user("he.kefu"), {"assignee": "dianyuan2a"})


def _cohort(today, user) -> None:
    with clock.as_of(_local(today - timedelta(days=3), 8)):
        runtime.start("training_cohort", "EAST", user("chen.peixun"), {
            "name": f"{today:%Y年%m月}新员工班", "start_date": (today - timedelta(days=3)).isoformat(), "stages": 3,
            "days_per_stage": 4, "rest_days_per_stage": 1, "evening_start": "19:00", "evening_hours": "2",
            "trainees": ["xin.yi", "xin.er"]})


def _instances(workflow: str):
    return db.session.scalars(sa.select(Instance).where(Instance.workflow == workflow)).all()
