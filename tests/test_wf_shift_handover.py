"""Shift handover: two different signers, completion by itself, countersignature on a discrepancy, the
Tuesday full count, the 30-minute deadline, and one scheduled handover per store per day."""
import multiprocessing
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

import engine
from engine import mail, org, scheduler, stock
from engine.db import db
from engine.errors import InvalidPayload, NotAvailable, NotPermitted
from engine.models import Instance, Notification
from tests.flows import mails, refused, reload, run_due, trail

MONDAY, TUESDAY = "2026-11-02T14:00:00+08:00", "2026-11-03T14:00:00+08:00"
SIGNING = datetime(2026, 11, 2, 5, 40, tzinfo=UTC)  # Monday 13:40 in Shanghai: signatures open at 13:30
GOODS = [{"sku": "A100", "name": "羊毛衫", "expected": 3, "counted": 3}]


def counts(cash="5000.00", goods=GOODS, full=False):
    return {"cash_expected": "5000.00", "cash_counted": cash, "receipts_total": "12880.00", "goods": goods,
            "full_count": full}


def test_two_people_sign_and_it_completes_by_itself(people, clock):
    inst = engine.start("shift_handover", "S1", people["sm1"], {"handover_at": MONDAY, "counts": counts()})
    clock.set(SIGNING)
    engine.fire(inst.id, "sign_out", people["sm1"])
    refused(NotPermitted, inst, "sign_in", people["sm1"])  # the same person cannot sign both sides
    inst = engine.fire(inst.id, "sign_in", people["dep1"])
    assert inst.state == "completed"
    assert trail(inst)[-3:] == [("sign_out", "sm1", "open"), ("sign_in", "dep1", "open"),
                                ("signed", "system", "completed")]


def test_discrepancy_needs_a_countersignature_from_someone_else(people, clock):
    inst = engine.start("shift_handover", "S1", people["dep1"], {"handover_at": MONDAY})
    clock.set(SIGNING)
    refused(InvalidPayload, inst, "sign_out", people["dep1"])  # counts first
    engine.fire(inst.id, "record_counts", people["a1"], {"counts": counts(cash="4990.00")})
    assert reload(inst).data["discrepancies"] == [{"item": "cash", "difference": "-10.00"}]
    engine.fire(inst.id, "sign_out", people["dep1"])
    refused(InvalidPayload, inst, "record_counts", people["a1"], {"counts": counts()})  # signed: frozen
    inst = engine.fire(inst.id, "sign_in", people["sm1"])
    assert inst.state == "countersign"
    refused(NotPermitted, inst, "countersign", people["sm1"], comment="ok")  # a signer
    refused(InvalidPayload, inst, "countersign", people["sm1asst"])  # the explanation is required
    assert engine.fire(inst.id, "countersign", people["sm1asst"], comment="找零差错，已登记").state == "completed"


def test_when_the_store_manager_signed_the_sales_manager_above_countersigns(people, clock):
    org.add_user("regsales", "华东销售主管", "regsales@example.com", "pw", [("sales_manager", "EAST")])
    db.session.commit()
    inst = engine.start("shift_handover", "S1", people["sm1"], {"handover_at": MONDAY, "counts": counts("4000.00")})
    clock.set(SIGNING)
    engine.fire(inst.id, "sign_out", people["sm1"])
    engine.fire(inst.id, "sign_in", people["sm1asst"])  # both store managers signed
    refused(NotPermitted, inst, "countersign", people["sm1asst"], comment="x")
    refused(NotPermitted, inst, "countersign", people["salesmgr"], comment="x")  # T1's: not above S1
    assert engine.fire(inst.id, "countersign", org.user_by_login("regsales"), comment="复核").state == "completed"


def test_tuesday_needs_a_full_count(people, clock):
    with pytest.raises(InvalidPayload) as e:
        engine.start("shift_handover", "S1", people["sm1"], {"handover_at": TUESDAY, "counts": counts()})
    assert list(e.value.errors) == ["counts.goods"]  # the field the counter fixes, beside it in the form
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Instance)) == 0
    inst = engine.start("shift_handover", "S1", people["sm1"], {"handover_at": TUESDAY})
    refused(InvalidPayload, inst, "record_counts", people["a1"], {"counts": counts()})
    full = [*GOODS, {"sku": "B200", "name": "围巾", "expected": 12, "counted": 12}]
    engine.fire(inst.id, "record_counts", people["a1"], {"counts": counts(goods=full, full=True)})
    assert reload(inst).data["counts"]["full_count"] is True


def test_late_signatures_escalate_to_the_store_manager_then_the_region(app, people, clock, smtp):
    engine.start("shift_handover", "S2", people["sm2"], {"handover_at": MONDAY})
    run_due(app, "2026-11-02T14:29:00+08:00")
    assert mails(smtp, "【超时升级】") == []
    run_due(app, "2026-11-02T14:30:00+08:00")
    assert mails(smtp, "【超时升级】") == ["sm2"]
    run_due(app, "2026-11-02T15:00:00+08:00")
    assert mails(smtp, "【超时升级】") == ["east", "sm2"]


def _schedule(app, when, results):
    with app.app_context():
        db.engine.dispose(close=False)
        results.put(sum(scheduler.run(when).values()))


def test_one_scheduled_handover_per_store_per_day(app, people, clock):
    from datetime import datetime

    org.unit_by_code("S2").settings = {"handover_time": "15:00"}
    db.session.commit()
    r = app.test_cli_runner().invoke(args=["timers", "schedule", "--now", "2026-11-02T13:59:00+08:00"])
    assert "nothing due" in r.output
    r = app.test_cli_runner().invoke(args=["timers", "schedule", "--now", "2026-11-02T14:00:00+08:00"])
    assert "shift_handover: 2" in r.output  # S1 and S3; S2 hands over at 15:00
    at_three = datetime.fromisoformat("2026-11-02T15:00:00+08:00")
    mp = multiprocessing.get_context("fork")
    results = mp.Queue()
    procs = [mp.Process(target=_schedule, args=(app, at_three, results)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert sum(results.get(timeout=5) for _ in procs) == 1  # S2, once, whichever worker won
    db.session.rollback()
    keys = db.session.scalars(sa.select(Instance.dedupe_key).where(Instance.workflow == "shift_handover")).all()
    assert sorted(keys) == [f"shift_handover:{s}:2026-11-02" for s in ("S1", "S2", "S3")]
    s2 = db.session.scalar(sa.select(Instance).where(Instance.dedupe_key == "shift_handover:S2:2026-11-02"))
    assert s2.data["handover_at"] == "2026-11-02T15:00:00+08:00" and s2.created_by_id is None


@pytest.mark.parametrize("handover_at, message", [("1900-01-01T14:00:00+08:00", "2000 to 2100"),
                                                  ("2026-10-25T14:00:00+08:00", "past"),
                                                  ("2026-11-10T14:00:00+08:00", "ahead"),
                                                  ("9999-12-31T14:00:00+08:00", "2000 to 2100")])
def test_a_handover_lies_within_a_week_of_now(people, clock, smtp, handover_at, message):
    with pytest.raises(InvalidPayload) as e:  # one dated 1900 used to be escalated at once
        engine.start("shift_handover", "S1", people["sm1"], {"handover_at": handover_at})
    assert message in str(e.value.errors["handover_at"])
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Instance)) == 0
    for ok in ("2026-10-27T14:00:00+08:00", "2026-11-08T14:00:00+08:00"):
        assert engine.start("shift_handover", "S1", people["sm1"], {"handover_at": ok}).state == "open"


def test_in_a_small_store_the_regional_manager_countersigns_when_the_store_manager_signed(people, clock):
    # S3 (SOUTH): its store manager and one assistant; no sales manager covers it
    inst = engine.start("shift_handover", "S3", people["sm3"], {"handover_at": MONDAY, "counts": counts("4900.00")})
    clock.set(SIGNING)
    engine.fire(inst.id, "sign_out", people["sm3"])
    clock.advance(minutes=5)
    inst = engine.fire(inst.id, "sign_in", people["a3"])
    assert inst.state == "countersign"
    told = db.session.scalars(sa.select(Notification).where(
        Notification.instance_id == inst.id, Notification.kind == "task",
        Notification.created_at == inst.state_entered_at)).all()
    assert [n.user.login for n in told] == ["south"]  # not the store manager, who signed and may not countersign
    refused(NotPermitted, inst, "countersign", people["sm3"], comment="ok")
    assert engine.fire(inst.id, "countersign", people["south"], comment="少100元，已追查").state == "completed"


def test_signatures_open_shortly_before_the_handover_never_days_early(people, clock):
    # Monday 10:00: next Monday's handover (six days ahead) and today's 14:00 one are both counted already
    ahead = engine.start("shift_handover", "S1", people["sm1"],
                         {"handover_at": "2026-11-08T14:00:00+08:00", "counts": counts()})
    today = engine.start("shift_handover", "S2", people["sm2"], {"handover_at": MONDAY, "counts": counts()})
    for inst, who in ((ahead, "dep1"), (today, "sm2")):
        assert "sign_out" not in [t.trigger for t in engine.available_actions(reload(inst), people[who])]
        with pytest.raises(NotAvailable) as e:
            engine.fire(inst.id, "sign_out", people[who])
        assert e.value.status == 409
    assert "possible from 2026-11-02 13:30 (Asia/Shanghai)" in e.value.message
    assert reload(today).version == 1  # nothing written
    clock.set(datetime(2026, 11, 2, 5, 30, tzinfo=UTC))  # 13:30
    assert "sign_out" in [t.trigger for t in engine.available_actions(reload(today), people["sm2"])]
    engine.fire(today.id, "sign_out", people["sm2"])
    assert engine.fire(today.id, "sign_in", people["a2"]).state == "completed"
    refused(NotAvailable, ahead, "sign_out", people["dep1"])


def test_a_store_may_open_signatures_earlier(people, clock):
    org.unit_by_code("EAST").settings = {"signature_window_minutes": 240}
    db.session.commit()
    inst = engine.start("shift_handover", "S1", people["sm1"], {"handover_at": MONDAY, "counts": counts()})
    engine.fire(inst.id, "sign_out", people["sm1"])  # 10:00, four hours before
    assert engine.fire(inst.id, "sign_in", people["dep1"]).state == "completed"


def body_of(smtp, login):
    got = [m for m in smtp.messages if m["To"].addresses[0].username == login]
    assert got, [m["To"] for m in smtp.messages]
    return got[-1].get_body(("plain",)).get_content()


def test_the_countersigner_sees_what_they_sign(people, clock, smtp):
    clock.set(SIGNING)
    short = counts("4990.00", goods=[{"sku": "A100", "name": "羊毛衫", "expected": 3, "counted": 2},
                                     {"sku": "B200", "name": "围巾", "expected": 5, "counted": 5}])
    inst = engine.start("shift_handover", "S1", people["sm1"],
                        {"handover_at": MONDAY, "counts": short | {"notes": "找零差错一次"}})
    engine.fire(inst.id, "sign_out", people["sm1"])
    inst = engine.fire(inst.id, "sign_in", people["dep1"])  # the seed's normal case: 店长 + 副店长
    assert inst.state == "countersign"
    facts = {f["label"]["zh"]: f["value"] for f in engine.state_facts(reload(inst))}
    assert facts == {"备注": "找零差错一次", "小票合计": "12880.00", "应有现金": "5000.00", "实点现金": "4990.00",
                     "货品 A100 羊毛衫": "3 → 2 (-1)",
                     "应有数来源": {"zh": "清点人自报", "en": "self-declared by the counters"}}
    mail.send_pending()
    body = body_of(smtp, "sm1asst")  # S1's other store manager, who did not sign
    for fact in ("找零差错一次", "12880.00", "5000.00", "4990.00", "A100 羊毛衫：3 → 2 (-1)", "清点人自报"):
        assert fact in body
    asked = [m["To"].addresses[0].username for m in smtp.messages if "差异待店长复核" in str(m["Subject"])]
    assert asked == ["sm1asst"]  # the signers are not asked


def test_the_till_supplies_the_expected_figures_before_counting(people, clock):
    clock.set(SIGNING)
    inst = engine.start("shift_handover", "S1", people["sm1"], {"handover_at": MONDAY})
    till = {"expected": {"cash": "5000.00", "receipts_total": "12880.00",
                         "goods": [{"sku": "A100", "name": "羊毛衫", "expected": 3}]}}
    refused(NotPermitted, inst, "set_expected", people["sm1"], till)  # not by the people who count
    engine.fire(inst.id, "set_expected", people["admin"], till)
    # the counter types only what was counted; a typed "expected" is overridden by the till's
    typed = {"cash_counted": "5000.00", "goods": [{"sku": "A100", "expected": 2, "counted": 2}]}
    inst = engine.fire(inst.id, "record_counts", people["a1"], {"counts": typed})
    c = inst.data["counts"]
    assert (c["cash_expected"], c["cash_expected_source"], c["goods"][0]["expected_source"]) == (
        "5000.00", "system", "system")
    assert inst.data["discrepancies"] == [{"item": "A100", "name": "", "difference": -1}]
    refused(InvalidPayload, inst, "set_expected", people["admin"], till)  # after counting: too late
    engine.fire(inst.id, "sign_out", people["sm1"])
    inst = engine.fire(inst.id, "sign_in", people["dep1"])
    facts = {f["label"]["en"]: f["value"] for f in engine.state_facts(reload(inst))}
    assert facts["Expected figures"]["en"] == "from the till/ERP" and facts["Receipts expected (till)"] == "12880.00"


def test_the_tills_step_is_no_task_in_an_administrators_inbox(people, clock):
    inst = engine.start("shift_handover", "S1", people["sm1"], {"handover_at": MONDAY})
    assert "set_expected" in [t.trigger for t in engine.available_actions(reload(inst), people["admin"])]
    assert [task.instance.id for task in engine.inbox(people["admin"])] == []
    assert [task.instance.id for task in engine.inbox(people["dep1"])] == [inst.id]


def test_expected_figures_typed_by_nobody_are_refused(people, clock):
    inst = engine.start("shift_handover", "S1", people["sm1"], {"handover_at": MONDAY})
    e = refused(InvalidPayload, inst, "record_counts", people["a1"], {"counts": {"cash_counted": "10.00"}})
    assert "counts.cash_expected" in e.errors


def test_tuesday_counts_every_sku_on_the_stores_stock_list(people, clock):
    stock.replace(org.unit_by_code("S1"), stock.parse("编码,名称,单价\nA100,羊毛衫,120\nB200,围巾,35.5\nC300,手套,20\n"
                                                      .encode(), "stock.csv"))
    some = [*GOODS, {"sku": "B200", "name": "围巾", "expected": 12, "counted": 12}]
    with pytest.raises(InvalidPayload) as e:
        engine.start("shift_handover", "S1", people["sm1"],
                     {"handover_at": TUESDAY, "counts": counts(goods=some, full=True)})
    assert e.value.errors == {"counts.goods": ["On Tuesdays every SKU the store stocks is counted; missing: C300."]}
    every = [*some, {"sku": "C300", "name": "手套", "expected": 4, "counted": 4}]
    inst = engine.start("shift_handover", "S1", people["sm1"],
                        {"handover_at": TUESDAY, "counts": counts(goods=every, full=True)})
    assert inst.state == "open"
    # Monday's handover counts what was sold: the list does not apply
    assert engine.start("shift_handover", "S1", people["sm1"], {"handover_at": MONDAY, "counts": counts()}).id


def test_the_stock_list_comes_from_the_last_checked_stocktake_book_when_newer(people, clock):
    unit = org.unit_by_code("S2")
    stock.replace(unit, [{"sku": "OLD1", "name": "", "unit_cost": None}])
    clock.advance(hours=1)
    book = [{"sku": "A100", "name": "羊毛衫", "quantity": 3}, {"sku": "D400", "name": "帽子", "quantity": 1}]
    take = engine.start("stocktake", "S2", people["sm2"], {"month": "2026-11", "book": book})
    assert stock.stock_list(unit).skus == ["OLD1"]  # a book not yet checked against a count
    engine.fire(take.id, "enter_counts", people["a2"], {"zone": "A", "lines": [{"sku": "A100", "counted": 3},
                                                                              {"sku": "D400", "counted": 1}]})
    engine.fire(take.id, "submit_counts", people["a2"])
    assert reload(take).state == "reporting"
    kept = stock.stock_list(unit)
    assert (kept.source, kept.skus) == ("stocktake", ["A100", "D400"])


def test_each_overdue_countersign_names_its_own_owner(app, people, clock, smtp):
    # two discrepancies at S1 falling due in the same batch: sm1 signed one, sm1asst the other
    clock.set(SIGNING)
    for signer in ("sm1", "sm1asst"):
        inst = engine.start("shift_handover", "S1", people["dep1"], {"handover_at": MONDAY, "counts": counts("1.00")})
        engine.fire(inst.id, "sign_out", people[signer])
        engine.fire(inst.id, "sign_in", people["dep1"])
    smtp.messages.clear()
    run_due(app, "2026-11-02T23:00:00+08:00")
    bodies = sorted(m.get_body(("plain",)).get_content() for m in smtp.messages if "【超时升级】" in str(m["Subject"]))
    owners = sorted(line for body in bodies for line in body.splitlines() if line.startswith("负责人"))
    assert owners == ["负责人：Sm1", "负责人：Sm1Asst"]
