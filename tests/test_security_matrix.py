"""The authorization matrix: every UI and API route that takes an object (an id, a login, a code, a job or a
workflow name in its URL) × a holder of every role × objects in their own store, another store of their region,
another region (and, for administrators, inside and outside their subtree). 0 unauthorized successes: a GET of
someone else's object is 403/404, a write is 403/404/409 and changes nothing; the authorized GETs succeed (so
the test can fail). ROUTES must name every such route in the URL map: a new one without an entry fails here.
"""
import io
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from engine import org
from tests.security_fixtures import (  # noqa: F401
    BOOK_LOADERS,
    PLAN_RETURNERS,
    PNG,
    VIEWERS,
    Obj,
    actors_fixture,
    fingerprint,
    world_fixture,
)
from tests.ui_fixtures import Session, fresh_limits  # noqa: F401

# A holder of every role (engine.org.Role), the sub-administrator, a person with stores in two regions, a
# deactivated person still holding a session and a token, and nobody (None).
ACTORS = [None, "sm1", "dep1", "a1", "rep1", "salesmgr", "trainer", "agent", "east", "south", "boss", "acct",
          "admin", "admin_east", "xsm", "off"]
# URL arguments that name no object anyone owns: files shipped with the app and its packages.
NOT_OBJECTS = {"static", "rq_dashboard.static", "api_docs_assets"}
STARTERS = {"S1": {"sm1", "xsm"}, "S2": set(), "S3": {"xsm", "dep1"}}  # store_manager at the unit (dep1 for sm3)
RQ = "/admin/rq"
STOCK_KEEPERS = {"S1": {"sm1", "dep1", "xsm", "admin", "admin_east"}, "S3": {"xsm", "dep1", "admin"}}
XHR = {"X-Requested-With": "XMLHttpRequest"}  # rq-dashboard's own CSRF defence: send it, so only scope refuses


@dataclass(frozen=True)
class Route:
    """How to call one endpoint on one object, which objects it is tried on, and who may."""

    family: str                                   # which objects: instance, unit, user, …, rq, workflow, start
    call: Callable                                # (client, obj) → response; client: UI Session or API caller
    may: Callable[[str, Obj], bool]               # does this login have scope over this object?
    api: bool = False
    refusal: int | None = None                    # one more status that refuses, where the route has one


def viewer(login, o):
    return login in VIEWERS[o.unit]


def report_reader(login, o):
    """A report is a stocktake's (T1's instance is a monthly plan: 404 to everyone)."""
    return viewer(login, o) and o.unit != "T1"


def administrator(login, o):
    return login == "admin" or (login == "admin_east" and o.inside)


def company_admin(login, o):
    return login == "admin"


def anyone(login, o):
    return True


def _book_csv():
    return {"file": (io.BytesIO(b"sku,quantity\nA100,5\n"), "book.csv")}


def _act_form(o):
    if o.unit == "T1":
        return f"/instances/{o.key}/actions/return", {"comment": "redo"}
    return f"/instances/{o.key}/actions/load_book", {"book.0.sku": "A100", "book.0.quantity": "5"}


def _act_json(o):
    if o.unit == "T1":
        return f"/instances/{o.key}/actions/return", {"comment": "redo"}
    return f"/instances/{o.key}/actions/load_book", {"data": {"book": [{"sku": "A100", "quantity": 5}]}}


def _may_act(login, o):
    return login in (PLAN_RETURNERS if o.unit == "T1" else BOOK_LOADERS[o.unit])


def _start_body(o):
    return {"org_unit": o.unit, "month": "2026-12"}


ROUTES = {
    # ---- UI: instances and their attachments
    ("ui.instance", "GET"): Route("instance", lambda c, o: c.get(f"/instances/{o.key}"), viewer),
    ("ui.attachment", "GET"): Route(
        "instance", lambda c, o: c.get(f"/instances/{o.key}/attachments/{o.extra['attachment']}"), viewer),
    ("ui.act", "POST"): Route("instance", lambda c, o: c.post(*_act_form(o)), _may_act),
    ("ui.report", "GET"): Route("instance", lambda c, o: c.get(f"/instances/{o.key}/report.xlsx"), report_reader),
    ("ui.upload", "POST"): Route("instance", lambda c, o: c.post(
        f"/instances/{o.key}/attachments", {"file": (io.BytesIO(PNG), "x.png")}, content_type="multipart/form-data"),
        viewer),
    ("ui.start", "GET"): Route("workflow", lambda c, o: c.get("/start/stocktake"),
                               lambda login, o: login in STARTERS["S1"] | STARTERS["S3"]),
    # (a unit the person may not start at is not among the form's choices: "choose an org unit", 422)
    ("ui.start", "POST"): Route("start", lambda c, o: c.post("/start/stocktake", _start_body(o)),
                                lambda login, o: login in STARTERS[o.unit], refusal=422),
    # ---- UI: administration
    ("ui.delete_delegation", "POST"): Route("delegation", lambda c, o: c.post(f"/admin/delegations/{o.key}/delete"),
                                            administrator),
    ("ui.revoke_role", "POST"): Route("assignment", lambda c, o: c.post(f"/admin/roles/{o.key[0]}/{o.key[1]}/delete"),
                                      administrator),
    # ---- UI: incidents (failed jobs are company-wide; a failed email belongs to its instance's unit)
    **{(f"ui.{action}_job", "POST"): Route(
        "rq", lambda c, o, action=action: c.post(f"/admin/incidents/jobs/{o.key}/{action}"), company_admin)
       for action in ("retry", "resolve")},
    **{(f"ui.{action}_email", "POST"): Route(
        "email", lambda c, o, action=action: c.post(f"/admin/incidents/emails/{o.key}/{action}"), administrator)
       for action in ("retry", "resolve")},
    # ---- UI: rq-dashboard (jobs and queues are company-wide: the company's administrators only)
    **{(f"rq_dashboard.{name}", "GET"): Route("rq", lambda c, o, path=path: c.get(RQ + path.format(job=o.key)),
                                              company_admin)
       for name, path in [("queues_overview", "/"), ("job_info", "/0/data/job/{job}.json"),
                          ("list_jobs", "/0/data/jobs/signoff/queued/10/asc/1.json"),
                          ("list_queues", "/0/data/queues.json"), ("list_workers", "/0/data/workers.json"),
                          ("job_view", "/0/view/job/{job}"), ("jobs_overview", "/0/view/jobs"),
                          ("workers_overview", "/0/view/workers")]},
    **{(f"rq_dashboard.{name}", "POST"): Route(
        "rq", lambda c, o, path=path: c.post(RQ + path.format(job=o.key), headers=XHR), company_admin)
       for name, path in [("delete_job_view", "/job/{job}/delete"), ("requeue_job_view", "/job/{job}/requeue"),
                          ("empty_queue", "/queue/signoff/queued/empty"), ("compact_queue", "/queue/signoff/compact"),
                          ("requeue_all", "/requeue/signoff")]},
    ("rq_dashboard.requeue_all", "GET"): Route("rq", lambda c, o: c.get(RQ + "/requeue/signoff", headers=XHR),
                                               company_admin),
    # ---- API: instances
    ("api_instances.InstanceItem", "GET"): Route("instance", lambda c, o: c("GET", f"/instances/{o.key}"), viewer,
                                                 True),
    ("api_instances.InstanceHistory", "GET"): Route(
        "instance", lambda c, o: c("GET", f"/instances/{o.key}/history"), viewer, True),
    ("api_instances.InstanceDiagram", "GET"): Route(
        "instance", lambda c, o: c("GET", f"/instances/{o.key}/diagram"), viewer, True),
    ("api_instances.InstanceAction", "POST"): Route(
        "instance", lambda c, o: c("POST", _act_json(o)[0], json=_act_json(o)[1]), _may_act, True),
    # the till's figures for a handover: the objects here are no handovers, so everyone is refused (whom it is
    # allowed to on a handover: tests/test_security_writes.py)
    ("api_instances.HandoverExpected", "POST"): Route(
        "instance", lambda c, o: c("POST", f"/instances/{o.key}/expected", json={"expected": {"cash": "1.00"}}),
        lambda login, o: False, True),
    ("api_attachments.Attachments", "GET"): Route(
        "instance", lambda c, o: c("GET", f"/instances/{o.key}/attachments"), viewer, True),
    ("api_attachments.Attachments", "POST"): Route("instance", lambda c, o: c(
        "POST", f"/instances/{o.key}/attachments", data={"file": (io.BytesIO(PNG), "x.png")},
        content_type="multipart/form-data"), viewer, True),
    ("api_downloads.ReportXlsx", "GET"): Route(
        "instance", lambda c, o: c("GET", f"/instances/{o.key}/report.xlsx"), report_reader, True),
    ("api_downloads.ReportHtml", "GET"): Route(
        "instance", lambda c, o: c("GET", f"/instances/{o.key}/report.html"), report_reader, True),
    ("api_attachments.AttachmentFile", "GET"): Route(
        "instance", lambda c, o: c("GET", f"/instances/{o.key}/attachments/{o.extra['attachment']}"), viewer, True),
    # who may keep a store's list: tests/test_security_writes.py; here, that nobody else gets past the door
    ("api_imports.StockListItem", "PUT"): Route("unit", lambda c, o: c(
        "PUT", f"/org-units/{o.key}/stock-list", data={"file": (io.BytesIO(b"sku\nA100\n"), "stock.csv")},
        content_type="multipart/form-data"), lambda login, o: login in STOCK_KEEPERS[o.unit], True),
    ("api_imports.BookStock", "POST"): Route("instance", lambda c, o: c(
        "POST", f"/instances/{o.key}/book-stock", data=_book_csv(), content_type="multipart/form-data"),
        lambda login, o: o.unit != "T1" and login in BOOK_LOADERS[o.unit], True),
    ("api_instances.Instances", "POST"): Route("start", lambda c, o: c(  # (the unit is in the body)
        "POST", "/instances", json={"workflow": "stocktake", "org_unit": o.unit, "data": {"month": "2026-12"}}),
        lambda login, o: login in STARTERS[o.unit], True),
    # ---- API: administration
    ("api_admin.UnitItem", "GET"): Route("unit", lambda c, o: c("GET", f"/org-units/{o.key}"), administrator, True),
    ("api_admin.UnitItem", "PATCH"): Route("unit", lambda c, o: c("PATCH", f"/org-units/{o.key}",
                                                                  json={"name": "taken"}), administrator, True),
    ("api_admin.UserItem", "GET"): Route("user", lambda c, o: c("GET", f"/users/{o.key}"), administrator, True),
    ("api_admin.UserItem", "PATCH"): Route(
        "user", lambda c, o: c("PATCH", f"/users/{o.key}", json={"password": "taken-over"}), administrator, True),
    ("api_admin.UserItem", "DELETE"): Route("user", lambda c, o: c("DELETE", f"/users/{o.key}"), administrator, True),
    ("api_admin.UserRoles", "GET"): Route("user", lambda c, o: c("GET", f"/users/{o.key}/roles"), administrator, True),
    ("api_admin.UserRoles", "POST"): Route("user", lambda c, o: c(
        "POST", f"/users/{o.key}/roles", json={"role": "store_manager", "org_unit": o.unit}), administrator, True),
    ("api_admin.UserRoleItem", "DELETE"): Route(
        "assignment", lambda c, o: c("DELETE", f"/users/{o.key[0]}/roles/{o.key[1]}"), administrator, True),
    ("api_admin.DelegationItem", "DELETE"): Route(
        "delegation", lambda c, o: c("DELETE", f"/delegations/{o.key}"), administrator, True),
    ("api_webhooks.WebhookItem", "GET"): Route("webhook", lambda c, o: c("GET", f"/webhooks/{o.key}"),
                                               administrator, True),
    ("api_webhooks.WebhookItem", "PATCH"): Route(
        "webhook", lambda c, o: c("PATCH", f"/webhooks/{o.key}", json={"url": "https://evil.example/x"}),
        administrator, True),
    ("api_webhooks.WebhookItem", "DELETE"): Route("webhook", lambda c, o: c("DELETE", f"/webhooks/{o.key}"),
                                                  administrator, True),
    ("api_webhooks.Deliveries", "GET"): Route("webhook", lambda c, o: c("GET", f"/webhooks/{o.key}/deliveries"),
                                              administrator, True),
    # ---- API: workflow definitions are the company's published rules: any signed-in person reads them
    ("api_workflows.WorkflowItem", "GET"): Route("workflow", lambda c, o: c("GET", "/workflows/stocktake"), anyone,
                                                 True),
    ("api_workflows.WorkflowDiagram", "GET"): Route(
        "workflow", lambda c, o: c("GET", "/workflows/stocktake/diagram"), anyone, True),
}


def routes_with_objects(app) -> set[tuple[str, str]]:
    """(endpoint, method) of every rule in the URL map whose URL names something (it has arguments)."""
    found = set()
    for rule in app.url_map.iter_rules():
        if rule.arguments and rule.endpoint not in NOT_OBJECTS:
            found |= {(rule.endpoint, m) for m in rule.methods - {"HEAD", "OPTIONS"}}
    return found


def test_every_route_with_an_object_has_an_entry(app):
    missing = routes_with_objects(app) - set(ROUTES)
    print(f"\n{len(routes_with_objects(app))} (endpoint, method) pairs with URL arguments in the URL map, "
          f"{len(ROUTES)} entries in the matrix")
    assert not missing, f"add these routes to ROUTES with who may call them: {sorted(missing)}"


def _objects(world, family):
    if family == "instance":
        return list(world.instances.values())
    if family == "start":
        return [Obj(f"start at {u}", None, u, u != "S3") for u in ("S1", "S2", "S3")]
    if family == "rq":
        return [Obj("rq job", world.job_id, "HQ", False)]
    if family == "workflow":
        return [Obj("workflow stocktake", "stocktake", "HQ", False)]
    return list(world.admin_objects[family])


def _refused(r, route: Route, write: bool) -> bool:
    """A refusal that shows nothing: the status, or for the UI a redirect to the sign-in page."""
    if r.status_code == route.refusal:
        return True
    if route.api:
        return r.status_code in ({401, 403, 404, 409} if write else {401, 403, 404})
    if r.status_code == 302:
        return "/login" in r.headers["Location"]
    return r.status_code in ({403, 404, 409} if write else {403, 404})


def _api_caller(api, login):
    return lambda method, url, **kw: api.call(method, url, as_=login, **kw)


def test_no_one_reaches_an_object_outside_their_scope(app, world, actors, rq_queue):
    held = {role for login in ACTORS if login for role, _unit in org.roles_of(world.people[login])}
    assert held == {r.value for r in org.Role}, f"no actor holds: {sorted({r.value for r in org.Role} - held)}"
    anonymous = Session(app)
    counts = Counter()
    failures = []
    for (endpoint, method), route in sorted(ROUTES.items()):
        write = method != "GET"
        for obj in _objects(world, route.family):
            before = fingerprint(rq_queue) if write else None  # once per route and object: the calls are refusals
            for login in ACTORS:
                may = login is not None and login != "off" and route.may(login, obj)
                if may and write:
                    counts["allowed writes"] += 1  # not fired: they would change the objects the others try
                    continue
                client = _api_caller(actors.api, login) if route.api else actors.ui(login) if login else anonymous
                r = route.call(client, obj)
                counts["cases"] += 1
                case = f"{method} {endpoint} on {obj.name} as {login or 'anonymous'}: {r.status_code}"
                if may:
                    counts["authorized reads"] += 1
                    if r.status_code != 200:
                        failures.append(f"authorized read refused: {case}")
                elif not _refused(r, route, write):
                    failures.append(f"UNAUTHORIZED SUCCESS: {case}")
                else:
                    counts["refusals"] += 1
            if write and fingerprint(rq_queue) != before:
                failures.append(f"refused, but something was written: {method} {endpoint} on {obj.name}")
    print(f"\nmatrix: {len(ROUTES)} routes × {len(ACTORS)} actors × their objects = {counts['cases']} calls; "
          f"{counts['authorized reads']} authorized reads succeeded as expected, {counts['refusals']} refusals "
          f"(writes checked for no effect), {counts['allowed writes']} allowed writes not fired; "
          f"unauthorized successes: {sum('UNAUTHORIZED' in f for f in failures)}")
    assert not failures, "\n".join(failures)


def test_a_regions_administrator_does_not_reach_people_who_also_work_elsewhere(world, actors):
    """xsm manages S1 (EAST) and S3 (SOUTH). EAST's administrator sees them, but may not take over their
    account (password, deactivation) nor lend their SOUTH authority to anyone by a delegation: only the
    company's administrator may. Both paths: API and the admin page."""
    api = actors.api
    body = {"from_user": "xsm", "to_user": "admin_east", "starts_at": "2026-11-01T00:00:00+00:00",
            "ends_at": "2026-11-09T00:00:00+00:00"}
    before = fingerprint()
    attempts = [
        api.get("/users/xsm", as_="admin_east"),  # (reading is fine: they work in EAST)
        api.patch("/users/xsm", as_="admin_east", json={"password": "taken-over"}),
        api.patch("/users/xsm", as_="admin_east", json={"email": "attacker@example.com"}),
        api.delete("/users/xsm", as_="admin_east"),
        api.post("/delegations", as_="admin_east", json=body),
        actors.ui("admin_east").post("/admin/delegations", {"from_login": "xsm", "to_login": "admin_east",
                                                            "starts_at": "2026-11-01T09:00",
                                                            "ends_at": "2026-11-09T09:00"}),
    ]
    statuses = [r.status_code for r in attempts]
    print(f"\nsub-administrator vs a person in two regions: {statuses}")
    assert statuses[0] == 200 and all(s in (403, 404, 422) for s in statuses[1:]), statuses
    assert fingerprint() == before
    assert api.patch("/users/xsm", as_="admin", json={"email": "xsm@example.org"}).status_code == 200
    assert api.post("/delegations", as_="admin", json=body).status_code == 201


def test_listings_show_exactly_what_each_person_may_see(world, actors, clock):
    """The routes without an id list objects: API instances (also filtered to another region), tasks and the
    overdue report, and the UI inbox and dashboard. Each shows exactly the instances the actor may see."""
    clock.advance(days=2)  # every step is overdue now: the overdue report has rows to leak
    ids = {unit: o.key for unit, o in world.instances.items()}
    checked = 0
    for login in ACTORS[1:]:
        active = login != "off"
        units = {u for u in ids if active and login in VIEWERS[u]}
        seen = {ids[u] for u in units}
        listed = actors.api.get("/instances?limit=200", as_=login)
        if not active:
            assert listed.status_code == 401
            continue
        assert {i["id"] for i in listed.json["items"]} == seen, login
        south = actors.api.get("/instances?org_unit=S3", as_=login).json["items"]
        assert {i["id"] for i in south} == seen & {ids["S3"]}, login
        assert {t["instance"]["id"] for t in actors.api.get("/tasks", as_=login).json} <= seen, login
        report = actors.api.get("/reports/overdue", as_=login).json
        assert {row["org_unit"]["code"] for row in report} <= units, login
        for page in ("/inbox", "/dashboard?month=2026-12"):
            html = actors.ui(login).get(page).get_data(as_text=True)
            assert {int(i) for i in re.findall(r'href="/instances/(\d+)', html)} <= seen, (login, page)
        checked += 1
    print(f"\nlistings: {checked} active people × 6 listings (API instances, API instances in S3, tasks, overdue "
          f"report, inbox, dashboard) showed only what they may see; the deactivated one got 401")
