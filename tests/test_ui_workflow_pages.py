"""Workflow-specific pages through the test client: the complaint board and form (choices in words), the
training cohort calendar, the monthly plan breakdown and plan vs. actual on the dashboard; scope per page."""
import html
import re

import engine
from engine import org
from engine.db import db

pytest_plugins = ["tests.ui_fixtures"]

COMPLAINT = {"customer": "王女士", "contact": "138-0000-0000", "channel": "phone", "order_ref": "SO-1001",
             "category": "product_quality", "severity": "high", "description": "外套开线，要求退换。"}


def test_complaint_form_board_and_scope(app, people, clock, signed_in):
    a1 = signed_in("a1")
    form = a1.get("/start/complaint").get_data(as_text=True)
    assert re.search(r'<option value="wechat"\s*>微信</option>', form)
    r = a1.post("/start/complaint", {**COMPLAINT, "org_unit": "S1", "severity": "urgent"})
    assert r.status_code == 422 and re.search(r'data-field="severity">必须是以下之一', r.get_data(as_text=True))
    r = a1.post("/start/complaint", {**COMPLAINT, "org_unit": "S1"})
    assert r.status_code == 302
    south = engine.start("complaint", "S3", people["a3"], COMPLAINT | {"customer": "李先生", "severity": "low"})
    board = signed_in("sm1").get("/boards/complaints").get_data(as_text=True)
    assert "王女士" in board and "李先生" not in board and "产品质量" in board  # another region's stays hidden
    page = signed_in("sm1").get(r.headers["Location"]).get_data(as_text=True)
    assert "电话" in page and "高" in page
    assert signed_in("sm1").get(f"/instances/{south.id}").status_code == 404
    english = signed_in("south").get("/boards/complaints").get_data(as_text=True)
    assert "李先生" in english and "low" in english and "王女士" not in english


def test_training_cohort_calendar(app, people, clock, signed_in):
    org.add_user("new1", "新人一", "n1@example.com", "pw-new1", [("rep", "T1")])
    org.add_user("new2", "新人二", "n2@example.com", "pw-new2", [("rep", "T1")])
    db.session.commit()
    inst = engine.start("training_cohort", "EAST", people["trainer"], {
        "name": "十一月新员工班", "start_date": "2026-11-02", "stages": 2, "days_per_stage": 2,
        "rest_days_per_stage": 1, "trainees": ["new1", "new2"]})
    page = signed_in("trainer").get(f"/instances/{inst.id}").get_data(as_text=True)
    assert page.count('class="day training') == 4 and page.count('class="day rest') == 1
    assert "第2阶段" in page and "学员观察记录" in page
    assert signed_in("sm3").get(f"/instances/{inst.id}").status_code == 404
    engine.fire(inst.id, "open_day", None)  # the first training evening (a timer does this)
    trainer = signed_in("trainer")
    page = trainer.get(f"/instances/{inst.id}").get_data(as_text=True)
    assert re.search(r'<select name="trainee"[^>]*>\s*<option value=""></option>\s*<option value="new1"', page)
    r = trainer.post(f"/instances/{inst.id}/actions/record_observation",
                     {"trainee": "new1", "observation": "主动迎客，介绍清楚", "rating": "4"})
    assert r.status_code == 302
    assert "主动迎客，介绍清楚 (4/5)" in trainer.get(f"/instances/{inst.id}").get_data(as_text=True)


def test_plan_breakdown_and_plan_vs_actual(app, people, clock, signed_in):
    inst = engine.start("monthly_plan", "T1", people["rep1"], {
        "month": "2026-11", "targets": {"amount": "100000", "new_customers": 5, "visits": 100}})
    page = signed_in("rep1").get(f"/instances/{inst.id}").get_data(as_text=True)
    assert "分解：按周和工作日" in page and "2026-11-30" in page and "100,000.00" in page
    engine.fire(inst.id, "submit", people["rep1"])
    engine.fire(inst.id, "approve", people["salesmgr"])
    engine.fire(inst.id, "start_evaluation", None)
    engine.fire(inst.id, "record_actuals", people["rep1"],
                {"actuals": {"amount": "80000", "new_customers": 5, "visits": 100}})
    dash = signed_in("salesmgr").get("/dashboard?month=2026-11").get_data(as_text=True)
    assert "各销售代表计划与实绩" in dash and "Rep1" in dash and "80.0 %" in dash
    assert dash.count('id="plans"') == 1 and "<section" not in dash.split("</title>")[0]  # once, in the body
    assert "Rep1" not in signed_in("sm3").get("/dashboard?month=2026-11").get_data(as_text=True)


def test_count_sheet_sends_only_counted_rows(app, people, clock, signed_in):
    book = [{"sku": f"S{n:03d}", "name": f"商品{n}", "quantity": 5} for n in range(30)]
    inst = engine.start("stocktake", "S1", people["sm1"], {"month": "2026-11", "book": book})
    a1 = signed_in("a1")
    page = a1.get(f"/instances/{inst.id}").get_data(as_text=True)
    assert 'name="lines.29.sku" value="S029"' in page and "商品29" in page
    form = {f"lines.{n}.sku": f"S{n:03d}" for n in range(30)} | {"zone": "A柜", "lines.3.counted": "5",
                                                                 "lines.7.counted": "x"}
    r = a1.post(f"/instances/{inst.id}/actions/enter_counts", form)
    assert r.status_code == 422 and re.search(r'data-field="lines.7.counted">不是有效的整数', r.get_data(as_text=True))
    form["lines.7.counted"] = "4"
    assert a1.post(f"/instances/{inst.id}/actions/enter_counts", form).status_code == 302
    db.session.rollback()
    counts = db.session.get(type(inst), inst.id).data["counts"]
    assert counts == {"A柜": [{"sku": "S003", "counted": 5}, {"sku": "S007", "counted": 4}]}


def visible_words(page: str) -> set[str]:
    """Latin words a reader sees on a page (scripts, the diagram's source text and attributes left out)."""
    page = re.sub(r"<script.*?</script>|<style.*?</style>|<pre class=\"mermaid\".*?</pre>", "", page, flags=re.S)
    return set(re.findall(r"[A-Za-z]{3,}", html.unescape(re.sub(r"<[^>]+>", " ", page))))


def test_chinese_pages_have_no_untranslated_words(app, people, clock, signed_in):
    at = clock.current.isoformat()
    counts = {"cash_expected": "100", "cash_counted": "90", "goods": []}
    ids = {
        "sm1": [engine.start("shift_handover", "S1", people["sm1"], {"handover_at": at, "counts": counts}).id,
                engine.start("stocktake", "S1", people["sm1"], {"month": "2026-11", "book": [
                    {"sku": "A1", "name": "杯", "quantity": 3}]}).id,
                engine.start("complaint", "S1", people["a1"], COMPLAINT).id],
        "rep1": [engine.start("monthly_plan", "T1", people["rep1"], {"month": "2026-12"}).id],
    }
    # names, formats
    data = {"Signoff", "CSV", "Excel", "PDF", "JPEG", "PNG", "GIF", "WebP", "YYYY", "unit", "RQ", "English"}
    data |= {u.name for u in people.values()} | {u.login for u in people.values()} | {"EAST", "SOUTH"}  # unit codes
    pages = [("sm1", f"/instances/{i}") for i in ids["sm1"]] + [("rep1", f"/instances/{ids['rep1'][0]}")]
    pages += [("sm1", p) for p in ("/inbox", "/dashboard", "/account", "/start", "/start/shift_handover",
                                    "/start/stocktake", "/boards/complaints")]
    pages += [("admin", f"/instances/{ids['sm1'][0]}")]  # the till's expected-figures form
    pages += [("a1", "/start/complaint"), ("trainer", "/start/training_cohort"), ("admin", "/admin"),
              ("rep1", "/start/monthly_plan")]
    for login, url in pages:
        words = visible_words(signed_in(login).get(url).get_data(as_text=True)) - data
        words = {w for w in words if not any(w in d or d in w for d in data if len(d) > 2)}
        assert not words, (url, sorted(words))


def test_the_handover_page_says_from_when_one_may_sign(app, people, clock, signed_in):
    # Monday 10:00 in Shanghai; the handover is at 14:00: counted already, signed only from 13:30
    counts = {"cash_expected": "100.00", "cash_counted": "100.00", "goods": []}
    inst = engine.start("shift_handover", "S1", people["sm1"], {"handover_at": "2026-11-02T14:00:00+08:00",
                                                               "counts": counts})
    dep1 = signed_in("dep1")
    page = dep1.get(f"/instances/{inst.id}").get_data(as_text=True)
    assert 'id="action-sign_out"' not in page and 'id="sign-from"' in page and "13:30 起签字" in page
    r = dep1.post(f"/instances/{inst.id}/actions/sign_out")
    assert r.status_code == 409 and "13:30 起签字" in r.get_data(as_text=True)
    clock.advance(hours=3, minutes=30)
    page = dep1.get(f"/instances/{inst.id}").get_data(as_text=True)
    assert 'id="action-sign_out"' in page and 'id="sign-from"' not in page


def test_a_tuesday_handover_without_the_full_count_marks_the_goods_field(app, people, clock, signed_in):
    form = {"org_unit": "S1", "handover_at": "2026-11-03T14:00", "shift": "midday", "counts.cash_expected": "100.00",
            "counts.cash_counted": "100.00", "counts.goods.0.sku": "A100", "counts.goods.0.expected": "3",
            "counts.goods.0.counted": "3"}
    r = signed_in("sm1").post("/start/shift_handover", form)
    page = r.get_data(as_text=True)
    assert r.status_code == 422
    assert re.search(r'data-field="counts\.goods">[^<]*周二', page), page[page.find('class="error"'):][:600]
    inst = engine.start("shift_handover", "S1", people["sm1"], {"handover_at": "2026-11-03T14:00:00+08:00"})
    form = {k: v for k, v in form.items() if k.startswith("counts.")}
    r = signed_in("a1").post(f"/instances/{inst.id}/actions/record_counts", form)
    page = r.get_data(as_text=True)
    assert r.status_code == 422 and "full_count:" not in page and "counts.goods:" not in page
    assert re.search(r'data-field="counts\.goods">[^<]*周二', page)
