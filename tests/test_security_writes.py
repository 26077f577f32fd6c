"""The write-side authorization matrix: every state-changing rule of the URL map (POST, PUT, PATCH, DELETE: the UI,
/api/v1 and rq-dashboard) × every actor of tests/test_security_matrix.py (a holder of every role, the
sub-administrator, a person in two regions, a deactivated person, nobody). WRITES says, for each (endpoint,
method), how to call it with a valid body and EXACTLY who may: an allowed actor succeeds and the database shows
the intended change; anyone else gets 401/403/404 (or the route's documented refusal) and nothing is written.
A state-changing route without an entry fails here, and so does an entry whose route is gone.

The allowed sets are written out by hand from the product's rules (DOMAIN.md, issue 12, the roles and the
segregation of duties in workflows/*.py), never computed by the code under test.
"""
import functools
import io
import itertools
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from rq.job import JobStatus
from werkzeug.security import check_password_hash

import engine
from engine import org, queue, stock, tokens, webhooks
from engine.attachments import Attachment
from engine.calendar import CalendarOverride, CalendarYear
from engine.db import db
from engine.models import AuditEvent, Instance, Notification, NotificationStatus
from engine.org import Delegation, OrgUnit, RoleAssignment, User
from engine.targets import AnnualTarget
from engine.webhooks import Webhook
from tests.security_fixtures import PNG, VIEWERS, actors_fixture, fingerprint, world_fixture  # noqa: F401
from tests.test_security_matrix import ACTORS, RQ, XHR
from tests.ui_fixtures import Session, fresh_limits  # noqa: F401

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
ACTIVE = frozenset(ACTORS) - {None, "off"}     # everyone still employed
ADMINS = frozenset({"admin", "admin_east"})    # administrators whose subtree holds the object (it lies in EAST)
COMPANY_ADMIN = frozenset({"admin"})           # … when it reaches outside EAST, or is company-wide
STAFF = {"S1": VIEWERS["S1"] - {"off"}, "S3": VIEWERS["S3"]}  # who sees (and may attach to) an instance there
PLAN_RETURNERS = {"salesmgr", "east", "boss"}  # sales_manager, regional_manager over T1; not rep1, its creator
COHORT = {"name": "写权限矩阵班", "start_date": "2026-11-02", "stages": 1, "days_per_stage": 2,
          "rest_days_per_stage": 0, "evening_start": "19:00", "evening_hours": "2", "trainees": ["rep1"]}
COMPLAINT = {"customer": "李女士", "contact": "138 0000 0000", "channel": "store", "category": "service",
             "severity": "medium", "description": "店员态度不好"}
CLOSE_REPORT = {"sales": [{"sku": "A100", "quantity": 1, "amount": "10.00"}], "receipts_total": "10.00", "cash": "0"}
SHORT_CASH = {"cash_expected": "1000.00", "cash_counted": "990.00"}  # a discrepancy: the handover needs a countersign


# ---- fresh objects: each allowed call changes state, so a case builds its object again for every allowed actor

class Maker:
    """Builds the objects the cases act on, through the engine; unique names from a counter."""

    def __init__(self, world, clock, rq_queue):
        self.people, self.world, self.clock, self.queue = world.people, world, clock, rq_queue
        self.numbers = itertools.count(1)

    def name(self, prefix: str) -> str:
        return f"{prefix}{next(self.numbers)}"

    def person(self, *roles: tuple[str, str]) -> str:
        login = self.name("p")
        org.add_user(login, login.title(), f"{login}@example.com", "pw-made-here", list(roles))  # one hash, cached
        db.session.commit()
        return login

    def delegation(self, from_login: str, to_login: str) -> int:
        now = self.clock.now()
        d = org.delegate(org.user_by_login(from_login), org.user_by_login(to_login), now - timedelta(days=1),
                         now + timedelta(days=7))
        db.session.commit()
        return d.id

    def plan(self) -> int:
        """A monthly plan at T1 awaiting its sales manager (rep1 submitted it)."""
        inst = engine.start("monthly_plan", "T1", self.people["rep1"], {"month": "2026-12", "budget": "100"})
        return engine.fire(inst.id, "submit", self.people["rep1"]).id

    def handover(self, signed: bool = False) -> int:
        """A handover at S1 whose cash is short; `signed`: sm1 signed out and a1 in, a countersign is due."""
        inst = engine.start("shift_handover", "S1", self.people["sm1"],
                            {"handover_at": self.clock.now().isoformat(), "counts": SHORT_CASH})
        if signed:
            engine.fire(inst.id, "sign_out", self.people["sm1"])
            inst = engine.fire(inst.id, "sign_in", self.people["a1"])
            assert inst.state == "countersign", inst.state
        return inst.id

    def handover_uncounted(self) -> int:
        """A handover at S1 nobody has counted yet: the till's expected figures may still come."""
        at = self.clock.now().isoformat()
        return engine.start("shift_handover", "S1", self.people["sm1"], {"handover_at": at}).id

    def stocktake(self, unit: str = "S1", review: bool = False) -> int:
        """A stocktake counting at `unit`; `review`: a1 counted, xsm recounted, the variances await approval."""
        p = self.people
        inst = engine.start("stocktake", unit, p[f"sm{unit[1]}"], {"month": "2026-12"})
        # One stocktake per store and month is a business rule, not an authorization one: free the month so the
        # next object of this kind can be made (the matrix needs one per allowed actor).
        db.session.get(Instance, inst.id).dedupe_key = None
        db.session.commit()
        if review:
            engine.fire(inst.id, "load_book", p["sm1"], {"book": [{"sku": "A100", "quantity": 10}]})
            engine.fire(inst.id, "enter_counts", p["a1"], {"zone": "A柜", "lines": [{"sku": "A100", "counted": 5}]})
            engine.fire(inst.id, "submit_counts", p["a1"])
            inst = engine.fire(inst.id, "recount", p["xsm"], {"lines": [{"sku": "A100", "counted": 5}]})
            assert inst.state == "variance_review", inst.state
        return inst.id

    def evening_close(self, signed: bool = False) -> int:
        """Today's evening close at S1; `signed`: a1 recorded and signed it, the allocation list is due."""
        p = self.people
        day = self.clock.now().astimezone(ZoneInfo("Asia/Shanghai")).date().isoformat()
        inst = engine.start("evening_close", "S1", p["dep1"], {"day": day})
        db.session.get(Instance, inst.id).dedupe_key = None  # one close per store and day: free the day again
        db.session.commit()
        if signed:
            engine.fire(inst.id, "record_report", p["a1"], CLOSE_REPORT)
            inst = engine.fire(inst.id, "sign", p["a1"])
            assert inst.state == "allocation", inst.state
        return inst.id

    def complaint(self) -> int:
        return engine.start("complaint", "S1", self.people["sm1"], COMPLAINT).id

    def cohort(self) -> int:
        """A training cohort at EAST on its first training day; trainer runs it."""
        inst = engine.start("training_cohort", "EAST", self.people["trainer"], COHORT)
        return engine.fire(inst.id, "open_day", None).id

    def hook(self, unit: str) -> int:
        return webhooks.create(self.people["admin"], f"https://hooks.example.com/{self.name('h')}",
                               ["step.overdue"], org.unit_by_code(unit).id).id

    def failed_email(self, unit: str) -> int:
        """The world's undeliverable email at `unit`, failed and unresolved (again)."""
        n = db.session.get(Notification, self.world.admin_objects["email"][0 if unit == "S1" else 1].key)
        n.status = NotificationStatus.FAILED.value
        n.context = {k: v for k, v in (n.context or {}).items() if k != "resolved"}
        db.session.commit()
        return n.id

    def queued_job(self) -> str:
        return self.queue.enqueue("os.getcwd").id

    def failed_job(self) -> str:
        """A job in the failed registry, as a worker leaves one that raised."""
        job = self.queue.enqueue("os.getcwd")
        self.queue.remove(job)
        job.set_status(JobStatus.FAILED)
        self.queue.failed_job_registry.add(job, ttl=3600, exc_string="ZeroDivisionError")
        return job.id

    def dangling_id(self) -> str:
        """A queue entry whose job is gone (what rq-dashboard's `compact` removes)."""
        job_id = self.name("ghost-")
        self.queue.push_job_id(job_id)
        return job_id


# ---- what the cases look at afterwards (a fresh read of the database or Redis)

def fresh(model, key):
    db.session.rollback()
    return db.session.get(model, key, populate_existing=True)


def last_actor(instance_id: int) -> str | None:
    """Who took the instance's latest step."""
    db.session.rollback()
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.instance_id == instance_id)
                              .order_by(AuditEvent.seq.desc()).limit(1))
    return event.actor.login if event and event.actor else None


def user(login: str) -> User | None:
    db.session.rollback()
    return db.session.scalar(sa.select(User).where(User.login == login).execution_options(populate_existing=True))


def assignment(login: str, role: str, unit: str) -> int | None:
    return db.session.scalar(sa.select(RoleAssignment.id).join(User, RoleAssignment.user_id == User.id)
                             .join(OrgUnit, RoleAssignment.org_unit_id == OrgUnit.id)
                             .where(User.login == login, RoleAssignment.role == role, OrgUnit.code == unit))


def queued() -> list[str]:
    return queue.current().job_ids


def failed() -> list[str]:
    return queue.current().failed_job_registry.get_job_ids()


# ---- the cases

@dataclass(frozen=True)
class Case:
    """One way to call a route, on an object `make(maker)` builds (once for all the refusals, then once per
    allowed actor); `done(obj, login, response)` says the intended change is there."""

    title: str
    allowed: frozenset
    call: Callable                    # (client, obj, login) → response; client: ApiAs or a UI Session
    done: Callable
    make: Callable = lambda m: None
    api: bool = False
    refusal: frozenset = frozenset()  # more statuses that refuse, where the route documents them
    own_session: bool = False         # the call ends or replaces the client's session: give it a fresh one


class ApiAs:
    """The API as one actor: `c("POST", url, json=…)`; `c.fresh_token()` for calls that revoke tokens."""

    def __init__(self, api, login):
        self.api, self.login = api, login

    def __call__(self, method, url, **kw):
        return self.api.call(method, url, as_=self.login, **kw)


def api(title, allowed, method, url, body=None, done=None, make=lambda m: None, refusal=(), upload=None):
    """An API case. `url` and `body` may be functions of (obj, login); `upload()` gives multipart files."""
    def call(c, obj, login):
        kw = {"json": body(obj, login) if callable(body) else body} if body is not None else {}
        if upload:
            kw = {"data": upload(), "content_type": "multipart/form-data"}
        return c(method, url(obj, login) if callable(url) else url, **kw)
    return Case(title, frozenset(allowed), call, done, make, True, frozenset(refusal))


def ui(title, allowed, url, form=None, done=None, make=lambda m: None, refusal=(), upload=None, headers=None):
    def call(session, obj, login):
        data = dict(form(obj, login) if callable(form) else form or {})
        kw = {"headers": headers} if headers else {}
        if upload:
            data |= upload()
            kw["content_type"] = "multipart/form-data"
        return session.post(url(obj, login) if callable(url) else url, data, **kw)
    return Case(title, frozenset(allowed), call, done, make, False, frozenset(refusal))


def took_step(obj, login, r):
    return last_actor(obj) == login


def png():
    return {"file": (io.BytesIO(PNG), "receipt.png")}


def stock_csv():
    return {"file": (io.BytesIO("编码,名称,单价\nA100,羊毛衫,120.00\n".encode()), "stock.csv")}


def _stock_skus(code):
    db.session.rollback()
    return stock.stock_list(org.unit_by_code(code)).skus


def book_csv():
    return {"file": (io.BytesIO(b"sku,quantity\nA100,5\n"), "book.csv")}


# the representative trigger of each workflow: (title, make, trigger, API data, UI form, comment, allowed)
TRIGGERS = [
    ("monthly_plan approve", Maker.plan, "approve", {}, {}, None, {"salesmgr"}),
    ("monthly_plan return", Maker.plan, "return", {}, {}, "redo", PLAN_RETURNERS),
    ("shift_handover sign_out", Maker.handover, "sign_out", {}, {}, None, {"sm1", "dep1", "xsm"}),
    # the store manager's countersignature (店长复签) by one who did not sign (sm1 signed out, a1 in), the sales
    # manager covering S1 (nobody here: salesmgr covers T1) and the regional managers above S1; not the deputy
    ("shift_handover countersign", lambda m: m.handover(signed=True), "countersign", {}, {}, "counted twice",
     {"xsm", "east", "boss"}),
    # the till/ERP's figures: its service account (an administrator over the store), never the people who count
    ("shift_handover set_expected", Maker.handover_uncounted, "set_expected", {"expected": {"cash": "1000.00"}},
     {"expected.cash": "1000.00"}, None, ADMINS),
    ("stocktake load_book", Maker.stocktake, "load_book", {"book": [{"sku": "A100", "quantity": 5}]},
     {"book.0.sku": "A100", "book.0.quantity": "5"}, None, {"sm1", "dep1", "xsm"}),
    # the store manager and the regional managers above, but not whoever counted (a1) or recounted (xsm)
    ("stocktake approve_variances", lambda m: m.stocktake(review=True), "approve_variances",
     {"reasons": [{"sku": "A100", "reason": "破损"}]}, {"reasons.0.sku": "A100", "reasons.0.reason": "破损"}, "ok",
     {"sm1", "east", "boss"}),
    # whoever closes the store (its assistants, deputy and managers), nobody above it
    ("evening_close record_report", Maker.evening_close, "record_report", CLOSE_REPORT,
     {"sales.0.sku": "A100", "sales.0.quantity": "1", "sales.0.amount": "10.00", "receipts_total": "10.00",
      "cash": "0"}, None, {"sm1", "dep1", "a1", "xsm"}),
    # the business manager above the store (none here: salesmgr covers T1, not S1), else the regional managers
    ("evening_close confirm_allocation", lambda m: m.evening_close(signed=True), "confirm_allocation", {}, {}, None,
     {"east", "boss"}),
    ("complaint assign", Maker.complaint, "assign", {"assignee": "a1"}, {"assignee": "a1"}, None,
     {"sm1", "xsm", "agent"}),
    ("training_cohort record_observation", Maker.cohort, "record_observation",
     {"trainee": "rep1", "observation": "主动迎客"}, {"trainee": "rep1", "observation": "主动迎客"}, None, {"trainer"}),
]


def _api_action(title, make, trigger, data, form, comment, allowed):
    body = {"data": data} | ({"comment": comment} if comment else {})
    return api(title, allowed, "POST", lambda o, _: f"/instances/{o}/actions/{trigger}", body, took_step, make)


def _ui_action(title, make, trigger, data, form, comment, allowed):
    return ui(title, allowed, lambda o, _: f"/instances/{o}/actions/{trigger}",
              form | ({"comment": comment} if comment else {}), took_step, make)


# managing a person: only an administrator whose subtree holds every role they hold AND every delegation they
# hold or give (the other party's roles too)
def _in_east(m):
    return m.person(("assistant", "S1"))


def _standing_in_for_south(m):
    login = _in_east(m)
    m.delegation("a3", login)
    return login


def _south_stands_in(m):
    login = _in_east(m)
    m.delegation(login, "a3")
    return login


PEOPLE = [("in EAST", _in_east, ADMINS),
          ("in EAST standing in for a3 of SOUTH", _standing_in_for_south, COMPANY_ADMIN),
          ("in EAST for whom a3 of SOUTH stands in", _south_stands_in, COMPANY_ADMIN),
          ("in EAST and SOUTH", lambda m: m.person(("assistant", "S1"), ("assistant", "S3")), COMPANY_ADMIN)]
# creating a person: an administrator, with roles inside their subtree (role-less people: administrators)
NEW_PEOPLE = [("with a role at S1", ("assistant", "S1"), ADMINS), ("with a role at S3", ("assistant", "S3"),
              COMPANY_ADMIN), ("without roles", None, ADMINS)]
DELEGATIONS = [("inside EAST", lambda m: m.delegation(_in_east(m), _in_east(m)), ADMINS),
               ("from EAST to a3 of SOUTH", lambda m: m.delegation(_in_east(m), "a3"), COMPANY_ADMIN),
               ("from a3 of SOUTH to EAST", lambda m: m.delegation("a3", _in_east(m)), COMPANY_ADMIN)]
NEW_DELEGATIONS = [("inside EAST", lambda m: (_in_east(m), _in_east(m)), ADMINS),
                   ("to a3 of SOUTH", lambda m: (_in_east(m), "a3"), COMPANY_ADMIN),
                   ("from a3 of SOUTH", lambda m: ("a3", _in_east(m)), COMPANY_ADMIN)]
IN_AND_OUT = (("S1", ADMINS), ("S3", COMPANY_ADMIN))


def _person_body(o, ru):
    return {"login": o, "name": "New", "email": f"{o}@example.com", "password": "pw-long-enough"}


def _created(role_unit):
    return lambda o, who, r: user(o) is not None and (not role_unit or assignment(o, *role_unit) is not None)


def _delegated(o, who, r):
    db.session.rollback()
    ids = [user(login).id for login in o]
    return db.session.scalar(sa.select(Delegation.id).where(Delegation.from_user_id == ids[0],
                                                           Delegation.to_user_id == ids[1])) is not None


def _without_s1_role(o, who, r):
    return assignment(o, "assistant", "S1") is None


def _s1_role_url(prefix, suffix=""):
    return lambda o, _: f"{prefix}/{o}/{'roles/' if not suffix else ''}{assignment(o, 'assistant', 'S1')}{suffix}"


def _attachments(o):
    db.session.rollback()
    return db.session.scalar(sa.select(sa.func.count()).select_from(Attachment).where(Attachment.instance_id == o))


def _email_handled(o, who, r):
    n = fresh(Notification, o)
    return n.status == NotificationStatus.PENDING.value or (n.context or {}).get("resolved", {}).get("by") == who


def _tokens(m):
    return {}  # filled by the call: the tokens or the session it used


def _sign_in(session, obj, login):
    """Post one's own credentials from a session nobody has signed in to (None: a login nobody has)."""
    obj["session"] = session = Session(session.client.application)
    return session.post("/login", {"login": login or "nobody", "password": f"pw-{login}"})


def _sign_out(session, obj, login):
    obj["session"] = session
    return session.post("/logout")


def _inbox(obj) -> int:
    """What the session of the call gets for the inbox now: 200 signed in, 302 (to the sign-in page) not."""
    return obj["session"].get("/inbox").status_code


def _revoke(path, everywhere):
    """Revoke with a token made for this call (the matrix's own tokens stay usable); `done` checks it is dead."""
    def call(c, obj, login):
        if login not in ACTIVE:
            return c("DELETE", path)
        person = org.user_by_login(login)
        obj["tokens"] = [tokens.issue(person) for _ in range(2 if everywhere else 1)]
        return c.api.call("DELETE", path, headers={"Authorization": f"Bearer {obj['tokens'][0]}"})
    return call


def _revoked(o, who, r):
    db.session.rollback()
    return all(tokens.authenticate(t) is None for t in o["tokens"])


def start_month(door: str, unit: str, who: str | None) -> str:
    """A month no other start of the matrix uses (one stocktake per store and month); refused starters share one."""
    allowed = {("S1", "sm1"): 0, ("S1", "xsm"): 1, ("S3", "xsm"): 0, ("S3", "dep1"): 1}
    if (unit, who) not in allowed:
        return "2026-06"
    return f"2026-{10 - allowed[unit, who] - (2 if door == 'ui' else 0):02d}"


WRITES: dict[tuple[str, str], list[Case]] = {
    # ---- signing in and out, one's own account: the credentials or the session decide
    ("ui.login", "POST"): [Case("sign in", ACTIVE, _sign_in, lambda o, who, r: _inbox(o) == 200, _tokens,
                                refusal=frozenset({401}), own_session=True)],
    ("ui.logout", "POST"): [Case("sign out", ACTIVE, _sign_out, lambda o, who, r: _inbox(o) == 302, _tokens,
                                 own_session=True)],
    ("ui.account", "POST"): [ui("change one's language", ACTIVE, "/account", {"form": "settings", "s-locale": "en"},
                                lambda o, who, r: user(who).locale == "en")],
    ("api_tokens.create_token", "POST"): [api(
        "log in for a token", ACTIVE, "POST", "/tokens",
        lambda o, who: {"login": who or "nobody", "password": f"pw-{who}"},
        lambda o, who, r: r.status_code == 201 and tokens.authenticate(r.json["token"]).login == who,
        refusal={401})],
    ("api_tokens.revoke_token", "DELETE"): [Case("log out (this token)", ACTIVE,
                                                 _revoke("/tokens/current", False), _revoked, _tokens, True)],
    # being added for issue 12 (revoke all of one's tokens): rename the key to the endpoint that gets merged
    ("api_tokens.revoke_tokens", "DELETE"): [Case("log out everywhere", ACTIVE, _revoke("/tokens", True), _revoked,
                                                  _tokens, True)],
    # ---- workflows: start, act, attach, book stock, the inbox's bulk actions (a month of its own per allowed
    # starter and door: one stocktake per store and month; the refused get the first)
    ("api_instances.Instances", "POST"): [
        api(f"start a stocktake at {u}", allowed, "POST", "/instances",
            lambda o, who, u=u: {"workflow": "stocktake", "org_unit": u, "data": {"month": start_month("api", u, who)}},
            lambda o, who, r: last_actor(r.json["id"]) == who)
        for u, allowed in (("S1", {"sm1", "xsm"}), ("S3", {"xsm", "dep1"}))],  # dep1 stands in for sm3
    ("ui.start", "POST"): [  # at a unit one may not start at: "choose an org unit" (422)
        ui(f"start a stocktake at {u}", allowed, "/start/stocktake",
           lambda o, who, u=u: {"org_unit": u, "month": start_month("ui", u, who)},
           lambda o, who, r: last_actor(int(r.headers["Location"].rsplit("/", 1)[1])) == who, refusal={422})
        for u, allowed in (("S1", {"sm1", "xsm"}), ("S3", {"xsm", "dep1"}))],
    ("api_instances.InstanceAction", "POST"): [_api_action(*t) for t in TRIGGERS],
    ("ui.act", "POST"): [_ui_action(*t) for t in TRIGGERS],
    ("api_instances.HandoverExpected", "POST"): [api(
        "the till's expected figures for a handover", ADMINS, "POST", lambda o, _: f"/instances/{o}/expected",
        {"expected": {"cash": "1000.00"}}, took_step, Maker.handover_uncounted)],
    ("ui.bulk", "POST"): [ui(  # a refused id is reported on the page (200); nothing is fired
        "return plans in bulk", PLAN_RETURNERS, "/inbox/bulk",
        lambda o, who: {"trigger": "return", "ids": str(o), "comment": "redo"},
        lambda o, who, r: fresh(Instance, o).state == "draft" and last_actor(o) == who, Maker.plan, refusal={200})],
    ("api_attachments.Attachments", "POST"): [
        api(f"attach to the stocktake at {u}", STAFF[u], "POST", lambda o, _: f"/instances/{o}/attachments",
            done=lambda o, who, r: _attachments(o) == 1, make=lambda m, u=u: m.stocktake(u), upload=png)
        for u in ("S1", "S3")],
    ("ui.upload", "POST"): [
        ui(f"attach to the stocktake at {u}", STAFF[u], lambda o, _: f"/instances/{o}/attachments",
           done=lambda o, who, r: _attachments(o) == 1, make=lambda m, u=u: m.stocktake(u), upload=png)
        for u in ("S1", "S3")],
    ("api_imports.BookStock", "POST"): [
        api(f"load book stock at {u}", allowed, "POST", lambda o, _: f"/instances/{o}/book-stock",
            done=took_step, make=lambda m, u=u: m.stocktake(u), upload=book_csv)
        for u, allowed in (("S1", {"sm1", "dep1", "xsm"}), ("S3", {"xsm", "dep1"}))],
    # a store's stock list: its store and deputy managers (dep1 stands in for sm3 at S3), administrators over it
    ("api_imports.StockListItem", "PUT"): [
        api(f"replace the stock list of {u}", allowed, "PUT", f"/org-units/{u}/stock-list",
            done=lambda o, who, r, u=u: r.status_code == 200 and _stock_skus(u) == ["A100"], upload=stock_csv)
        for u, allowed in (("S1", {"sm1", "dep1", "xsm"} | ADMINS), ("S3", {"xsm", "dep1"} | COMPANY_ADMIN))],
    # ---- administration: units, people, roles, delegations, targets, webhooks, the calendar
    ("api_admin.Units", "POST"): [
        api(f"add a unit below {parent}", allowed, "POST", "/org-units",
            lambda o, who, parent=parent: {"code": o, "name": "new", "kind": "store", "parent": parent},
            lambda o, who, r: r.status_code == 201, lambda m: m.name("U"), refusal={422})
        for parent, allowed in (("EAST", ADMINS), ("SOUTH", COMPANY_ADMIN))],
    ("api_admin.UnitItem", "PATCH"): [
        api(f"rename {u}", allowed, "PATCH", f"/org-units/{u}", lambda o, who: {"name": f"by {who}"},
            lambda o, who, r: db.session.scalar(sa.select(OrgUnit.name).where(OrgUnit.code == o)) == f"by {who}",
            lambda m, u=u: u)
        for u, allowed in IN_AND_OUT],
    ("api_admin.Users", "POST"): [
        api(f"add a person {title}", allowed, "POST", "/users",
            lambda o, who, ru=ru: _person_body(o, ru) | {"roles": [{"role": ru[0], "org_unit": ru[1]}] if ru else []},
            _created(ru), lambda m: m.name("new"), refusal={422})
        for title, ru, allowed in NEW_PEOPLE],
    ("ui.create_user", "POST"): [
        ui(f"add a person {title}", allowed, "/admin/users",
           lambda o, who, ru=ru: _person_body(o, ru) | ({"role": ru[0], "org_unit": ru[1]} if ru else {}),
           _created(ru), lambda m: m.name("new"), refusal={422})
        for title, ru, allowed in NEW_PEOPLE],
    ("api_admin.UserItem", "PATCH"): [
        api(f"reset the password of a person {title}", allowed, "PATCH", lambda o, _: f"/users/{o}",
            lambda o, who: {"password": f"reset-by-{who}"},
            lambda o, who, r: user(o).check_password(f"reset-by-{who}"), make, refusal={422})
        for title, make, allowed in PEOPLE],
    ("api_admin.UserItem", "DELETE"): [
        api(f"deactivate a person {title}", allowed, "DELETE", lambda o, _: f"/users/{o}",
            done=lambda o, who, r: not user(o).active, make=make, refusal={422})
        for title, make, allowed in PEOPLE],
    ("api_admin.UserRoles", "POST"): [
        api(f"give a role at S2 to a person {title}", allowed, "POST", lambda o, _: f"/users/{o}/roles",
            {"role": "assistant", "org_unit": "S2"}, lambda o, who, r: assignment(o, "assistant", "S2") is not None,
            make, refusal={422})
        for title, make, allowed in PEOPLE],
    ("ui.grant_role", "POST"): [
        ui(f"give a role at S2 to a person {title}", allowed, "/admin/roles",
           lambda o, who: {"login": o, "role": "assistant", "org_unit": "S2"},
           lambda o, who, r: assignment(o, "assistant", "S2") is not None, make, refusal={422})
        for title, make, allowed in PEOPLE],
    ("api_admin.UserRoleItem", "DELETE"): [
        api(f"take the S1 role of a person {title}", allowed, "DELETE", _s1_role_url("/users"),
            done=_without_s1_role, make=make, refusal={422})
        for title, make, allowed in PEOPLE],
    ("ui.revoke_role", "POST"): [
        ui(f"take the S1 role of a person {title}", allowed, _s1_role_url("/admin/roles", "/delete"),
           done=_without_s1_role, make=make, refusal={422})
        for title, make, allowed in PEOPLE],
    ("api_admin.Delegations", "POST"): [
        api(f"record a delegation {title}", allowed, "POST", "/delegations",
            lambda o, who: {"from_user": o[0], "to_user": o[1], "starts_at": "2026-11-03T00:00:00+08:00",
                            "ends_at": "2026-11-10T00:00:00+08:00"}, _delegated, make, refusal={422})
        for title, make, allowed in NEW_DELEGATIONS],
    ("ui.add_delegation", "POST"): [
        ui(f"record a delegation {title}", allowed, "/admin/delegations",
           lambda o, who: {"from_login": o[0], "to_login": o[1], "starts_at": "2026-11-03T09:00",
                           "ends_at": "2026-11-10T09:00"}, _delegated, make, refusal={422})
        for title, make, allowed in NEW_DELEGATIONS],
    ("api_admin.DelegationItem", "DELETE"): [
        api(f"remove a delegation {title}", allowed, "DELETE", lambda o, _: f"/delegations/{o}",
            done=lambda o, who, r: fresh(Delegation, o) is None, make=make)
        for title, make, allowed in DELEGATIONS],
    ("ui.delete_delegation", "POST"): [
        ui(f"remove a delegation {title}", allowed, lambda o, _: f"/admin/delegations/{o}/delete",
           done=lambda o, who, r: fresh(Delegation, o) is None, make=make)
        for title, make, allowed in DELEGATIONS],
    ("api_imports.Targets", "PUT"): [
        api(f"set an annual target at {u}", allowed, "PUT", "/targets",
            lambda o, who, u=u: {"targets": [{"year": 2027, "org_unit": u, "amount": f"{o}.00", "new_customers": 3,
                                              "visits": 10}]},
            lambda o, who, r: db.session.scalar(sa.select(AnnualTarget.id).where(AnnualTarget.amount == o)) is not None,
            lambda m: next(m.numbers), refusal={422})
        for u, allowed in (("T1", ADMINS), ("S3", COMPANY_ADMIN))],
    ("api_webhooks.Webhooks", "POST"): [
        api(f"register a webhook for {u}", allowed, "POST", "/webhooks",
            lambda o, who, u=u: {"url": f"https://hooks.example.com/{who}", "events": ["step.overdue"],
                                 "org_unit": u}, lambda o, who, r: r.status_code == 201, refusal={422})
        for u, allowed in IN_AND_OUT],
    ("api_webhooks.WebhookItem", "PATCH"): [
        api(f"re-point the webhook of {u}", allowed, "PATCH", lambda o, _: f"/webhooks/{o}",
            lambda o, who: {"url": f"https://hooks.example.com/{who}"},
            lambda o, who, r: fresh(Webhook, o).url == f"https://hooks.example.com/{who}", lambda m, u=u: m.hook(u))
        for u, allowed in IN_AND_OUT],
    ("api_webhooks.WebhookItem", "DELETE"): [
        api(f"stop the webhook of {u}", allowed, "DELETE", lambda o, _: f"/webhooks/{o}",
            done=lambda o, who, r: not fresh(Webhook, o).active, make=lambda m, u=u: m.hook(u))
        for u, allowed in IN_AND_OUT],
    ("ui.set_calendar_day", "POST"): [ui(  # the business calendar is company-wide
        "make a Saturday a working day", COMPANY_ADMIN, "/admin/calendar",
        lambda o, who: {"day": "2026-12-05", "working": "1", "note": f"by {who}"},
        lambda o, who, r: fresh(CalendarOverride, date(2026, 12, 5)).note == f"by {who}")],
    ("ui.confirm_calendar_year", "POST"): [ui(  # statutory years are company-wide too
        "confirm a statutory year", COMPANY_ADMIN, "/admin/calendar/confirm", {"year": "2029"},
        lambda o, who, r: getattr(fresh(CalendarYear, 2029), "confirmed_by", None) == who)],
    ("ui.import_calendar_year", "POST"): [ui(
        "import a year's official list", COMPANY_ADMIN, "/admin/calendar/import", {"year": "2029"},
        lambda o, who, r: getattr(fresh(CalendarYear, 2029), "confirmed_by", None) == who,
        upload=lambda: {"file": (io.BytesIO(b"2029-01-01,off,\xe5\x85\x83\xe6\x97\xa6\n"), "2029.csv")})],
    # ---- incidents: an undeliverable email belongs to its instance's unit; failed jobs are company-wide
    **{(f"ui.{action}_email", "POST"): [
        ui(f"{action} the failed email at {u}", allowed, lambda o, _, action=action:
           f"/admin/incidents/emails/{o}/{action}", done=_email_handled, make=lambda m, u=u: m.failed_email(u))
        for u, allowed in IN_AND_OUT] for action in ("retry", "resolve")},
    **{(f"ui.{action}_job", "POST"): [
        ui(f"{action} a failed job", COMPANY_ADMIN, lambda o, _, action=action: f"/admin/incidents/jobs/{o}/{action}",
           done=lambda o, who, r: o not in failed(), make=Maker.failed_job)]
       for action in ("retry", "resolve")},
    # ---- rq-dashboard (its own CSRF defence is the XMLHttpRequest header: sent, so only the scope refuses)
    ("rq_dashboard.delete_job_view", "POST"): [ui(
        "delete a job", COMPANY_ADMIN, lambda o, _: f"{RQ}/job/{o}/delete", done=lambda o, who, r: o not in queued(),
        make=Maker.queued_job, headers=XHR)],
    ("rq_dashboard.requeue_job_view", "POST"): [ui(
        "requeue a failed job", COMPANY_ADMIN, lambda o, _: f"{RQ}/job/{o}/requeue",
        done=lambda o, who, r: o in queued(), make=Maker.failed_job, headers=XHR)],
    ("rq_dashboard.requeue_all", "POST"): [ui(
        "requeue every failed job", COMPANY_ADMIN, f"{RQ}/requeue/signoff",
        done=lambda o, who, r: o in queued(), make=Maker.failed_job, headers=XHR)],
    ("rq_dashboard.empty_queue", "POST"): [ui(
        "empty the queue", COMPANY_ADMIN, f"{RQ}/queue/signoff/queued/empty",
        done=lambda o, who, r: not queued(), make=Maker.queued_job, headers=XHR)],
    ("rq_dashboard.compact_queue", "POST"): [ui(
        "compact the queue", COMPANY_ADMIN, f"{RQ}/queue/signoff/compact",
        done=lambda o, who, r: o not in queued(), make=Maker.dangling_id, headers=XHR)],
}


@pytest.fixture
def _fast_password_checks(monkeypatch):
    """Signing in checks a scrypt hash on purpose slowly; this matrix signs people in hundreds of times, so each
    (hash, password) pair is checked once (the same algorithm, like conftest's cached hashing)."""
    cached = functools.lru_cache(maxsize=None)(check_password_hash)
    monkeypatch.setattr(org, "check_password_hash", cached)
    monkeypatch.setattr(tokens, "check_password_hash", cached)


def write_routes(app) -> set[tuple[str, str]]:
    """(endpoint, method) of every rule in the URL map that changes state."""
    return {(rule.endpoint, m) for rule in app.url_map.iter_rules() for m in rule.methods & WRITE_METHODS}


def test_every_state_changing_route_has_an_entry_and_every_entry_a_route(app):
    routes = write_routes(app)
    missing, stale = routes - set(WRITES), set(WRITES) - routes
    print(f"\n{len(routes)} state-changing (endpoint, method) pairs in the URL map, {len(WRITES)} in WRITES, "
          f"{sum(len(cases) for cases in WRITES.values())} cases")
    assert not missing, f"add these routes to WRITES with exactly who may call them: {sorted(missing)}"
    assert not stale, f"these WRITES entries name no route of the URL map: {sorted(stale)}"


def _refused(case: Case, r) -> bool:
    if r.status_code in case.refusal:
        return True
    if case.api:
        return r.status_code in (401, 403, 404)
    if r.status_code == 302:
        return "/login" in r.headers["Location"]
    return r.status_code in (403, 404)


def _succeeded(case: Case, r) -> bool:
    if not 200 <= r.status_code < 400:
        return False
    return case.own_session or r.status_code != 302 or "/login" not in r.headers["Location"]


def test_each_write_is_done_by_exactly_whom_it_may_be(_fast_password_checks, app, world, actors, clock, rq_queue):
    """Every case × every actor: refused ones first, on one object (nothing may change), then each allowed actor
    on a fresh object (it must change as intended)."""
    maker = Maker(world, clock, rq_queue)
    anonymous = Session(app)
    counts, failures = Counter(), []

    def client(case, login, allowed):
        if case.api:
            return ApiAs(actors.api, login)
        if login is None:
            return anonymous if not case.own_session else Session(app)
        return Session(app, login) if case.own_session and allowed else actors.ui(login)

    for (endpoint, method), cases in WRITES.items():
        if (endpoint, method) not in write_routes(app):
            continue  # reported by the test above
        for case in cases:
            obj = case.make(maker)
            before = fingerprint(rq_queue)
            for login in ACTORS:
                if login in case.allowed:
                    continue
                r = case.call(client(case, login, False), obj, login)
                counts["refusals"] += 1
                if not _refused(case, r):
                    failures.append(f"UNAUTHORIZED: {method} {endpoint} ({case.title}) as {login or 'anonymous'}: "
                                    f"{r.status_code}")
            if fingerprint(rq_queue) != before:
                failures.append(f"refused, but something was written: {method} {endpoint} ({case.title})")
            for login in sorted(case.allowed):
                obj = case.make(maker)
                r = case.call(client(case, login, True), obj, login)
                counts["allowed"] += 1
                if not (_succeeded(case, r) and case.done(obj, login, r)):
                    failures.append(f"REFUSED WRONGLY: {method} {endpoint} ({case.title}) as {login}: "
                                    f"{r.status_code} {r.get_data(as_text=True)[:160]!r}")
                if endpoint.startswith("api_tokens."):
                    actors.api.tokens.pop(login, None)  # (a revocation may have ended the matrix's own token)
            db.session.rollback()
    print(f"\nwrite matrix: {counts['refusals']} refused calls (each case's database and queues unchanged), "
          f"{counts['allowed']} allowed calls that changed what they should; {len(failures)} failures")
    assert not failures, "\n".join(failures)
