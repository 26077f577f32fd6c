"""The UI through Flask's test client: sign-in, cookies, rate limits, CSRF on every POST form, scope on every
page that takes an object id, languages, forms generated from schemas, inbox and bulk actions."""
import io
import re
from datetime import timedelta

import sqlalchemy as sa

import engine
from engine import org
from engine.db import db

pytest_plugins = ["tests.ui_fixtures"]


def plan(people, month="2026-12", budget="3000"):
    inst = engine.start("monthly_plan", "T1", people["rep1"], {"month": month, "budget": budget})
    return engine.fire(inst.id, "submit", people["rep1"])


def test_healthz_and_landing(app, people, signed_in):
    c = app.test_client()
    assert c.get("/healthz").get_json() == {"status": "ok"}
    assert c.get("/").status_code == 302 and "/login" in c.get("/inbox").headers["Location"]
    assert signed_in("rep1").get("/").headers["Location"].endswith("/inbox")


def test_login_cookie_flags_and_no_enumeration(app, people, anonymous):
    s = anonymous()
    wrong = s.post("/login", {"login": "rep1", "password": "nope"})
    unknown = s.post("/login", {"login": "nobody", "password": "nope"})
    assert wrong.status_code == unknown.status_code == 401
    assert "登录名或密码错误" in wrong.get_data(as_text=True)
    strip = lambda r: re.sub(r'value="[^"]*"', "", r.get_data(as_text=True))  # noqa: E731
    assert strip(wrong) == strip(unknown).replace('"nobody"', '"rep1"').replace("nobody", "rep1")
    ok = s.client.post("/login?next=//evil.example/x", data={"login": "rep1", "password": "pw-rep1",
                                                             "csrf_token": s.token})
    assert ok.status_code == 302 and ok.headers["Location"] == "/inbox"  # no open redirect
    assert "frame-ancestors 'none'" in ok.headers["Content-Security-Policy"]
    cookie = ok.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    https = anonymous(base_url="https://localhost")
    r = https.post("/login", {"login": "rep1", "password": "pw-rep1"})
    assert r.status_code == 302 and "Secure" in r.headers["Set-Cookie"]


def test_failed_logins_are_limited_per_account_and_per_address(app, people, anonymous, clock, monkeypatch):
    s = anonymous()
    for _ in range(5):
        assert s.post("/login", {"login": "rep1", "password": "bad"}).status_code == 401
    blocked = s.post("/login", {"login": "rep1", "password": "pw-rep1"})  # from this address, even the right one
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 0
    assert s.post("/login", {"login": "salesmgr", "password": "pw-salesmgr"}).status_code == 302
    monkeypatch.setitem(app.config, "UI_LOGIN_ADDRESS_LIMIT", 3)
    other = anonymous()
    for login in ("a1", "a2"):
        other.post("/login", {"login": login, "password": "bad"})
    assert other.post("/login", {"login": "sm1", "password": "pw-sm1"}).status_code == 429  # 3 from this address


def test_logout_and_change_password(app, people, signed_in):
    s = signed_in("rep1")
    assert s.post("/account", {"form": "password", "pw-current": "bad", "pw-new": "longenough1",
                               "pw-repeat": "longenough1"}).status_code == 422
    other = signed_in("rep1")  # a second session of the same person
    r = s.post("/account", {"form": "password", "pw-current": "pw-rep1", "pw-new": "longenough1",
                            "pw-repeat": "longenough1"})
    assert r.status_code == 302
    assert s.get("/inbox").status_code == 200
    assert other.get("/inbox").status_code == 302  # a changed password ends the other sessions
    assert s.post("/logout").status_code == 302 and s.get("/inbox").status_code == 302
    db.session.expire_all()
    assert org.user_by_login("rep1").check_password("longenough1")


# CSRF on every UI POST route: tests/test_security_web.py (generated from the URL map).


def test_instance_pages_check_scope(app, people, clock, signed_in):
    inst = plan(people)
    assert signed_in("salesmgr").get(f"/instances/{inst.id}").status_code == 200
    stranger = signed_in("sm3")  # a store manager in another region
    assert stranger.get(f"/instances/{inst.id}").status_code == 404
    assert stranger.get("/instances/999999").status_code == 404
    assert stranger.post(f"/instances/{inst.id}/actions/approve").status_code == 404
    r = stranger.post("/inbox/bulk", {"ids": [str(inst.id)], "trigger": "approve"})
    assert 'class="error"' in r.get_data(as_text=True) and "未找到，或您无权查看" in r.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(type(inst), inst.id).state == "manager_review"
    assert stranger.get("/start/monthly_plan").status_code == 404  # not a rep: may not start plans
    assert stranger.get("/admin").status_code == 404
    assert signed_in("admin").get("/admin").status_code == 200


def test_language_default_accept_language_and_user_setting(app, people, signed_in, anonymous):
    assert "我的待办" in signed_in("rep1").get("/inbox").get_data(as_text=True)
    english = anonymous(lang="en-US,en;q=0.9")
    assert "Sign in" in english.get("/login").get_data(as_text=True)  # before sign-in: Accept-Language
    assert "登录" in anonymous().get("/login").get_data(as_text=True)
    page = signed_in("south", lang="zh-CN").get("/inbox").get_data(as_text=True)  # south's own setting: en
    assert "My tasks" in page and "我的待办" not in page
    zh = signed_in("rep1", lang="zh-CN")
    assert zh.post("/account", {"form": "settings", "s-locale": "en"}).status_code == 302
    assert "My tasks" in zh.get("/inbox").get_data(as_text=True)  # the user's setting beats Accept-Language


def test_start_form_keeps_input_and_shows_errors_next_to_fields(app, people, clock, signed_in):
    s = signed_in("rep1")
    form = s.get("/start/monthly_plan").get_data(as_text=True)
    assert 'name="targets.amount"' in form and 'name="actions.0.title"' in form
    bad = {"org_unit": "T1", "month": "2026-12", "budget": "-5", "notes": "先拜访老客户", "actions.0.title": "拜访",
           "actions.1.week": "9", "targets.amount": "abc", "targets.new_customers": "3", "targets.visits": "10"}
    r = s.post("/start/monthly_plan", bad)
    html = r.get_data(as_text=True)
    assert r.status_code == 422
    assert re.search(r'data-field="budget">不能小于0', html)
    assert re.search(r'data-field="targets.amount">不是有效的数字', html)
    assert re.search(r'data-field="actions.1.title">此项为必填项', html)
    assert 'value="先拜访老客户"' not in html and "先拜访老客户</textarea>" in html  # nothing lost
    assert 'value="拜访"' in html
    bad.update({"budget": "5000", "targets.amount": "100000", "actions.1.week": ""})
    r = s.post("/start/monthly_plan", bad)
    assert r.status_code == 302
    inst = db.session.get(__import__("engine.models", fromlist=["Instance"]).Instance,
                          int(r.headers["Location"].rsplit("/", 1)[1]))
    assert inst.data["targets"]["amount"] == "100000.00" and inst.data["actions"][0]["title"] == "拜访"


def test_action_errors_are_translated_and_refusals_shown(app, people, clock, signed_in):
    inst = plan(people)
    s = signed_in("salesmgr")
    page = s.get(f"/instances/{inst.id}").get_data(as_text=True)
    assert 'id="action-approve"' in page and 'id="action-return"' in page
    r = s.post(f"/instances/{inst.id}/actions/return", {"version": str(inst.version)})
    assert r.status_code == 422 and "此操作需要填写意见" in r.get_data(as_text=True)
    r = s.post(f"/instances/{inst.id}/actions/approve", {"version": "1"})  # a stale page
    assert r.status_code == 409 and "其他人已先行修改" in r.get_data(as_text=True)
    rep = signed_in("rep1")
    assert 'id="action-approve"' not in rep.get(f"/instances/{inst.id}").get_data(as_text=True)
    assert rep.post(f"/instances/{inst.id}/actions/approve").status_code == 403


def test_inbox_orders_overdue_first_and_bulk_approves(app, people, clock, signed_in):
    first, second = plan(people), plan(people, "2027-01")
    clock.advance(days=3)  # both review deadlines (2 working days) have passed
    third = plan(people, "2027-02")
    s = signed_in("salesmgr")
    html = s.get("/inbox").get_data(as_text=True)
    assert html.index("已超期") < html.index(f"#{third.id}")
    assert "已超期" in html and "月度销售计划 3" in html
    assert f"#{first.id}" in s.get("/inbox?due=overdue").get_data(as_text=True)
    assert f"#{third.id}" not in s.get("/inbox?due=overdue").get_data(as_text=True)
    r = s.post("/inbox/bulk", {"ids": [str(first.id), str(second.id)], "trigger": "approve"})
    assert r.status_code == 200 and r.get_data(as_text=True).count('class="ok"') == 2
    r = s.post("/inbox/bulk", {"ids": [str(first.id)], "trigger": "approve"})  # already done: reported, not fired
    assert 'class="error"' in r.get_data(as_text=True)
    db.session.expire_all()
    states = {i: db.session.get(type(first), i).state for i in (first.id, second.id, third.id)}
    assert states == {first.id: "approved", second.id: "approved", third.id: "manager_review"}
    assert clock.current - timedelta(days=3)  # (the clock is the only mock)


def test_bulk_lists_what_it_approves_and_never_signs(app, people, clock, signed_in):
    first, second = plan(people), plan(people, "2027-01")
    page = signed_in("salesmgr").get("/inbox").get_data(as_text=True)
    listed = page[page.index('class="bulk-list"'):]
    assert f"#{first.id} 月度销售计划" in listed and f"#{second.id} 月度销售计划" in listed
    # a handover counted and open for signing (its time is now): signing is done on its page, never in bulk
    counts = {"cash_expected": "100.00", "cash_counted": "100.00", "goods": []}
    handover = engine.start("shift_handover", "S1", people["sm1"], {"handover_at": clock.current.isoformat(),
                                                                    "counts": counts})
    a1 = signed_in("a1")
    page = a1.get("/inbox").get_data(as_text=True)
    assert f'data-instance="{handover.id}"' in page and 'value="sign_in"' not in page
    assert f'name="ids" value="{handover.id}"' not in page  # nothing of it may be done in bulk
    r = a1.post("/inbox/bulk", {"ids": [str(handover.id)], "trigger": "sign_in"})
    assert 'class="error"' in r.get_data(as_text=True) and "逐一" in r.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(type(handover), handover.id).version == 1  # not signed


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def test_attachments_upload_view_and_scope(app, people, clock, signed_in):
    inst = plan(people)
    rep = signed_in("rep1")
    r = rep.post(f"/instances/{inst.id}/attachments", {"file": (io.BytesIO(PNG), "收据.png")},
                 content_type="multipart/form-data")
    assert r.status_code == 302
    page = rep.get(f"/instances/{inst.id}").get_data(as_text=True)
    link = re.search(rf'href="(/instances/{inst.id}/attachments/\d+)"', page).group(1)
    assert "收据.png" in page and "添加了附件" in page  # listed, and in the history
    got = signed_in("salesmgr").get(link)
    assert got.status_code == 200 and got.data == PNG and got.headers["X-Content-Type-Options"] == "nosniff"
    stranger = signed_in("sm3")
    assert stranger.get(link).status_code == 404
    assert stranger.post(f"/instances/{inst.id}/attachments", {"file": (io.BytesIO(PNG), "x.png")},
                         content_type="multipart/form-data").status_code == 404
    bad = rep.post(f"/instances/{inst.id}/attachments", {"file": (io.BytesIO(b"<html>"), "x.html")},
                   content_type="multipart/form-data")
    assert bad.status_code == 415 and "只能附加照片" in bad.get_data(as_text=True)
    other = plan(people, "2027-01")
    assert rep.get(link.replace(f"/instances/{inst.id}/", f"/instances/{other.id}/")).status_code == 404


def test_rq_dashboard_is_for_administrators_only(app, people, signed_in, rq_queue):
    assert app.test_client().get("/admin/rq/").status_code == 302  # to the sign-in page
    assert signed_in("sm1").get("/admin/rq/").status_code == 404
    admin = signed_in("admin")
    assert admin.get("/admin/rq/").status_code == 200
    assert admin.get("/admin/rq/0/data/queues.json").get_json() == {"queues": []}
    assert "/admin/rq/" in admin.get("/admin").get_data(as_text=True)
    # its buttons post by XMLHttpRequest: a cross-site form (no such header) is refused
    assert admin.post("/admin/rq/queue/signoff/failed/empty", csrf=None).status_code == 400
    assert admin.get("/admin/rq/requeue/signoff").status_code == 400
    assert admin.post("/admin/rq/queue/signoff/failed/empty", csrf=None,
                      headers={"X-Requested-With": "XMLHttpRequest"}).status_code == 200


def test_admin_delegations_and_calendar(app, people, clock, signed_in):
    from engine import calendar
    from engine.org import Delegation

    admin = signed_in("admin")
    page = admin.get("/admin?month=2026-10").get_data(as_text=True)
    assert "法定节假日" in page and "调休上班" in page  # October 2026: National Day and its make-up days
    r = admin.post("/admin/delegations", {"from_login": "sm1", "to_login": "nobody",
                                          "starts_at": "2026-11-03T09:00", "ends_at": "2026-11-05T18:00"})
    assert r.status_code == 422 and "未知人员：nobody" in r.get_data(as_text=True)
    r = admin.post("/admin/delegations", {"from_login": "sm1", "to_login": "dep1",
                                          "starts_at": "2026-11-03T09:00", "ends_at": "2026-11-05T18:00"})
    assert r.status_code == 302
    d = db.session.scalar(db.select(Delegation))
    assert d.starts_at.isoformat() == "2026-11-03T01:00:00+00:00"  # company time, stored in UTC
    assert signed_in("sm1").post(f"/admin/delegations/{d.id}/delete").status_code == 403  # not an admin
    assert admin.post("/admin/calendar", {"day": "2026-11-07", "working": "1", "note": "调休"}).status_code == 302
    calendar.invalidate()
    assert calendar.current().is_working_day(__import__("datetime").date(2026, 11, 7))
    assert signed_in("east").post("/admin/calendar", {"day": "2026-11-08", "working": "1"}).status_code == 404
    assert admin.post(f"/admin/delegations/{d.id}/delete").status_code == 302
    assert admin.post("/admin/delegations/999/delete").status_code == 404


def test_admin_users_and_roles(app, people, signed_in):
    from engine.org import RoleAssignment

    admin = signed_in("admin")
    r = admin.post("/admin/users", {"login": "newrep", "name": "新代表", "email": "n@example.com",
                                    "password": "long-enough", "locale": "zh", "role": "rep", "org_unit": "T1"})
    assert r.status_code == 302
    r = admin.post("/admin/users", {"login": "newrep", "name": "又一个", "password": "long-enough"})
    assert r.status_code == 422 and "登录名 newrep 已被使用" in r.get_data(as_text=True)
    assert admin.post("/admin/roles", {"login": "newrep", "role": "trainer", "org_unit": "EAST"}).status_code == 302
    r = admin.post("/admin/roles", {"login": "newrep", "role": "trainer", "org_unit": "EAST"})
    assert r.status_code == 422 and "已在该单位担任此角色" in r.get_data(as_text=True)
    r = admin.post("/admin/roles", {"login": "newrep", "role": "rep", "org_unit": "NOPE"})
    assert r.status_code == 422 and "未知单位或不在您的管理范围：NOPE" in r.get_data(as_text=True)
    db.session.rollback()
    grant = db.session.scalar(db.select(RoleAssignment).where(RoleAssignment.role == "trainer",
                                                              RoleAssignment.user_id == org.user_by_login("newrep").id))
    assert signed_in("sm1").post(f"/admin/roles/newrep/{grant.id}/delete").status_code == 403  # not an admin
    assert admin.post(f"/admin/roles/newrep/{grant.id}/delete").status_code == 302
    assert admin.post(f"/admin/roles/newrep/{grant.id}/delete").status_code == 404  # gone
    own = db.session.scalar(db.select(RoleAssignment).where(RoleAssignment.user_id == people["admin"].id))
    r = admin.post(f"/admin/roles/admin/{own.id}/delete")
    assert r.status_code == 422 and "不能移除自己的管理员角色" in r.get_data(as_text=True)


def test_admin_new_user_form_needs_an_admin_and_checks_like_the_api(app, people, signed_in):
    from engine.org import User

    good = {"login": "xin.ren", "name": "新人", "email": "xin.ren@example.com", "password": "long-enough",
            "locale": "zh", "role": "assistant", "org_unit": ""}
    assert signed_in("rep1").post("/admin/users", good).status_code == 403  # not an administrator: no account
    assert db.session.scalar(db.select(User).where(User.login == "xin.ren")) is None
    admin = signed_in("admin")
    for field, value, says in [
        ("login", "ZHENG.YEWU", "小写英文字母"), ("login", "wu.zhugu\u0430n", "小写英文字母"),
        ("login", "a/../b", "小写英文字母"), ("login", "<b>x</b> y", "小写英文字母"),
        ("email", "", "有效的电子邮箱"), ("email", "not-an-email", "有效的电子邮箱"),
        ("email", "x@example.com\r\nBcc: y@evil.example", "有效的电子邮箱"),
        ("name", "新\r\nBcc: y@evil.example", "不能包含换行"),
    ]:
        r = admin.post("/admin/users", {**good, field: value})
        page = r.get_data(as_text=True)
        assert r.status_code == 422, (field, value)
        assert re.search(rf'<input[^>]*name="{field}"[^>]*aria-invalid="true"[^>]*><span class="error" '
                         rf'data-field="{field}">[^<]*{says}', page), (field, value)
    assert db.session.scalar(db.select(sa.func.count()).select_from(User).where(User.login.like("%x%"))) == 0
    assert admin.post("/admin/users", good).status_code == 302


def test_admin_pages_refuse_managing_someone_lent_outside_authority(app, people, clock, signed_in):
    from engine import org

    org.add_user("s1admin", "S1 管理员", "s1admin@example.com", "pw-s1admin", [("admin", "S1")])
    org.delegate(people["boss"], people["sm1"], clock.now(), clock.now() + timedelta(days=7))
    db.session.commit()
    s1admin = signed_in("s1admin")
    r = s1admin.post("/admin/roles", {"login": "sm1", "role": "assistant", "org_unit": "S1"})
    assert r.status_code == 403
    r = s1admin.post("/admin/delegations", {"from_login": "sm1", "to_login": "dep1",
                                            "starts_at": "2026-11-03T09:00", "ends_at": "2026-11-05T18:00"})
    assert r.status_code == 403
    assert org.roles_at(people["sm1"], org.unit_by_code("S1")) == {"store_manager"}
