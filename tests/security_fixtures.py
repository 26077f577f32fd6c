"""Fixtures for the security tests: the `people` org (tests/conftest.py) plus the people a scope test needs, one
object of each kind inside and outside a subtree, signed-in clients for every actor, and a fingerprint of
everything a write could change (so "refused" also means "nothing written")."""
import hashlib
import io
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import current_app

import engine
from engine import attachments, org, webhooks
from engine.db import db
from engine.models import Notification, NotificationStatus
from tests.api_fixtures import Api
from tests.ui_fixtures import Session

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
# Tables a read may legitimately touch: tokens are issued as the test signs people in to the API.
NOT_FINGERPRINTED = {"api_tokens"}

# The viewers of an instance at each store, by the product's rule (DOMAIN.md, engine/authority.py): a role
# held at the unit or above it, or a part in it; delegations lend the delegator's roles while they run.
EAST_WIDE = {"east", "admin_east", "trainer", "agent"}        # roles held at region EAST
COMPANY_WIDE = {"boss", "acct", "admin"}                        # roles held at HQ
VIEWERS = {
    "S1": {"sm1", "dep1", "a1", "xsm"} | EAST_WIDE | COMPANY_WIDE,
    "S2": {"sm2", "a2"} | EAST_WIDE | COMPANY_WIDE,              # a1's stand-in for sm2 has ended: not a1
    "S3": {"sm3", "a3", "xsm", "south", "dep1"} | COMPANY_WIDE,  # dep1 stands in for sm3 this week
    "T1": {"rep1", "salesmgr"} | EAST_WIDE | COMPANY_WIDE,
}
# Who may load a stocktake's book stock (store_manager, deputy_manager at the store or above).
BOOK_LOADERS = {"S1": {"sm1", "dep1", "xsm"}, "S2": {"sm2"}, "S3": {"sm3", "xsm", "dep1"}}
# Who may return a monthly plan under review (sales_manager, regional_manager covering T1; not its creator).
PLAN_RETURNERS = {"salesmgr", "east", "boss"}


@dataclass
class Obj:
    """One object the matrix calls routes on: `key` goes into the URL; `inside` is True when it lies in EAST
    (the sub-administrator's subtree)."""

    name: str
    key: object
    unit: str
    inside: bool
    extra: dict = field(default_factory=dict)


@dataclass
class World:
    people: dict
    instances: dict       # unit code → Obj (a stocktake at S1/S2/S3, a monthly plan at T1)
    admin_objects: dict   # kind → (inside Obj, outside Obj)
    job_id: str


def _instance(workflow, unit, who, data, then=None) -> Obj:
    inst = engine.start(workflow, unit, who, data)
    if then:
        inst = engine.fire(inst.id, then, who)
    att = attachments.add(current_app.instance_path, inst, who, "receipt.png", io.BytesIO(PNG))
    return Obj(f"{workflow}@{unit}", inst.id, unit, unit != "S3", {"attachment": att.id})


@pytest.fixture(name="world")
def world_fixture(app, people, clock, rq_queue) -> World:
    """The `people` org plus: admin_east (admin of region EAST only), xsm (store manager of S1 in EAST and S3
    in SOUTH), off (a store manager of S1, deactivated by `actors` once signed in); dep1 stands in for sm3
    this week, a1's stand-in for sm2 ended yesterday. Objects: a stocktake at each store, a submitted monthly
    plan at T1, an attachment on each, webhooks at S1 and S3, a failed email at S1 and S3, and one queued RQ job."""
    extra = {"admin_east": [("admin", "EAST")], "xsm": [("store_manager", "S1"), ("store_manager", "S3")],
             "off": [("store_manager", "S1")]}
    for login, roles in extra.items():
        people[login] = org.add_user(login, login.title(), f"{login}@example.com", "pw-" + login, roles)
    now = clock.now()
    org.delegate(people["sm3"], people["dep1"], now - timedelta(days=1), now + timedelta(days=7))
    org.delegate(people["sm2"], people["a1"], now - timedelta(days=8), now - timedelta(days=1))
    db.session.commit()
    instances = {unit: _instance("stocktake", unit, people[f"sm{unit[1]}"], {"month": "2026-11"})
                 for unit in ("S1", "S2", "S3")}
    instances["T1"] = _instance("monthly_plan", "T1", people["rep1"], {"month": "2026-12", "budget": "100"},
                                then="submit")
    hooks = [webhooks.create(people["admin"], f"https://hooks.example.com/{u}", ["step.overdue"],
                             org.unit_by_code(u).id) for u in ("S1", "S3")]
    role_of = {login: db.session.scalar(sa.select(org.RoleAssignment.id).where(
        org.RoleAssignment.user_id == people[login].id)) for login in ("a1", "a3")}
    delegation = {d.from_user.login: d.id for d in db.session.scalars(sa.select(org.Delegation))}
    admin_objects = {
        "unit": (Obj("unit S1", "S1", "S1", True), Obj("unit S3", "S3", "S3", False)),
        "user": (Obj("user a1", "a1", "S1", True), Obj("user a3", "a3", "S3", False)),
        "assignment": (Obj("a1's role", ("a1", role_of["a1"]), "S1", True),
                       Obj("a3's role", ("a3", role_of["a3"]), "S3", False)),
        "delegation": (Obj("sm2→a1", delegation["sm2"], "S2", True), Obj("sm3→dep1", delegation["sm3"], "S3", False)),
        "webhook": (Obj("hook S1", hooks[0].id, "S1", True), Obj("hook S3", hooks[1].id, "S3", False)),
    }
    failed = {}
    for unit in ("S1", "S3"):  # an email that could not be delivered, for the incidents page
        n = db.session.scalar(sa.select(Notification).where(Notification.instance_id == instances[unit].key))
        n.status, n.last_error = NotificationStatus.FAILED.value, "550 no such mailbox"
        failed[unit] = n.id
    db.session.commit()
    admin_objects["email"] = (Obj("failed email S1", failed["S1"], "S1", True),
                              Obj("failed email S3", failed["S3"], "S3", False))
    job = rq_queue.enqueue("os.getcwd")  # never run: something for the job pages to show
    return World(people, instances, admin_objects, job.id)


def fingerprint(queue=None) -> str:
    """A digest of every row a write could change (all tables but the API tokens the test itself issues), and
    of the RQ queue's jobs (queued and failed) when `queue` is given."""
    db.session.rollback()
    jobs = (sorted(queue.job_ids), sorted(queue.failed_job_registry.get_job_ids())) if queue is not None else None
    digest = hashlib.sha256(repr(jobs).encode())
    with db.engine.connect() as conn:
        for table in db.metadata.sorted_tables:
            if table.name in NOT_FINGERPRINTED:
                continue
            key = [c for c in table.primary_key.columns] or list(table.columns)
            for row in conn.execute(sa.select(table).order_by(*key)):
                digest.update(repr(tuple(row)).encode())
    return digest.hexdigest()


class Actors:
    """Signed-in clients, made on first use: `actors.ui("sm1")` (a UI Session, CSRF token at hand) and
    `actors.api` (bearer tokens per login). None is the anonymous visitor."""

    def __init__(self, app, people):
        self.app = app
        self.api = Api(app.test_client(), people)
        self.sessions = {}

    def ui(self, login):
        if login not in self.sessions:
            self.sessions[login] = Session(self.app, login)
        return self.sessions[login]


@pytest.fixture(name="actors")
def actors_fixture(app, world, fresh_limits, monkeypatch) -> Actors:
    monkeypatch.setitem(app.config, "UI_LOGIN_ADDRESS_LIMIT", 1000)  # one address signs everybody in
    result = Actors(app, world.people)
    result.ui("off"), result.api.token("off")  # signed in while still employed …
    world.people["off"].active = False  # … then deactivated: the session and the token must stop working
    db.session.commit()
    return result
