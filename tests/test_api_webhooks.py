"""Webhooks: registration (admins, HTTPS, never an internal address, a cap per unit), HMAC-signed deliveries
by real RQ workers to a real HTTP receiver on localhost (allowed by WEBHOOK_ALLOWED_HOSTS), retries after a
failure, redirects not followed, a log that does not tell failures apart, event ids for de-duplication."""
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sqlalchemy as sa

from engine import timers, webhooks
from engine.db import db
from engine.webhooks import WebhookDelivery
from tests.api_fixtures import api_fixture  # noqa: F401
from tests.test_api_core import error


class Receiver:
    """A real HTTP server in a thread; answers 500 to the first `fail` requests, then 204 (or `redirect_to`
    with a 302), each after `delay` seconds. `received`: (headers, body) of each POST; `methods`: every request."""

    def __init__(self, delay: float = 0, redirect_to: str | None = None):
        self.received, self.methods, self.times = [], [], []
        self.fail = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.methods.append("POST")
                time.sleep(delay)
                receiver.received.append((dict(self.headers), body))
                receiver.times.append(time.monotonic())
                status = 500 if receiver.fail > 0 else 302 if redirect_to else 204
                receiver.fail -= 1
                self.send_response(status)
                if redirect_to:
                    self.send_header("Location", redirect_to)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self):
                receiver.methods.append("GET")
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/signoff"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def events(self):
        return [json.loads(body) for _, body in self.received]


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.stop()


@pytest.fixture(autouse=True)
def allow_loopback(app, monkeypatch):
    """The receivers here listen on loopback, which webhooks may reach only when it is listed."""
    monkeypatch.setitem(app.config, "WEBHOOK_ALLOWED_HOSTS", ["127.0.0.1"])


def register(api, receiver, events=None, as_="admin", **extra):
    r = api.post("/webhooks", as_=as_, json={"url": receiver.url, "events": events or [e.value for e in
                                                                                      webhooks.Event], **extra})
    assert r.status_code == 201, r.json
    return r.json


def test_registration_rules(api, app, monkeypatch):
    error(api.get("/webhooks", as_="sm1"), 403)
    error(api.post("/webhooks", as_="admin", json={"url": "ftp://x", "events": ["instance.started"]}), 422)
    error(api.post("/webhooks", as_="admin", json={"url": "https://x.example", "events": ["nope"]}), 422)
    error(api.post("/webhooks", as_="admin", json={"url": "https://x.example", "events": []}), 422)
    monkeypatch.setitem(app.config, "TESTING", False)
    error(api.post("/webhooks", as_="admin", json={"url": "http://127.0.0.1:9/x", "events": ["instance.started"]}),
          422)
    monkeypatch.setitem(app.config, "TESTING", True)
    hook = api.post("/webhooks", as_="admin", json={"url": "https://hooks.example.com/signoff",
                                                     "events": ["instance.started"], "org_unit": "EAST"}).json
    assert hook["org_unit"] == "EAST" and len(hook["secret"]) == 64
    listed = api.get("/webhooks", as_="admin").json
    assert [h["id"] for h in listed] == [hook["id"]] and "secret" not in listed[0]
    r = api.patch(f"/webhooks/{hook['id']}", as_="admin", json={"events": ["step.overdue", "step.escalated"]})
    assert r.json["events"] == ["step.escalated", "step.overdue"]
    assert api.delete(f"/webhooks/{hook['id']}", as_="admin").status_code == 204
    assert api.get(f"/webhooks/{hook['id']}", as_="admin").json["active"] is False
    error(api.get("/webhooks/9999", as_="admin"), 404)


def test_signed_deliveries_with_retry(api, app, work, receiver, monkeypatch, clock):
    monkeypatch.setitem(app.config, "WEBHOOK_BACKOFF", [1])
    hook = register(api, receiver)
    receiver.fail = 1  # the first POST fails with a 500
    inst = api.submitted()
    work()
    assert len(receiver.received) == 2  # started (failed once) then transitioned
    log = api.get(f"/webhooks/{hook['id']}/deliveries", as_="admin").json
    assert {(d["event"], d["status"], d["attempts"]) for d in log} == {
        ("instance.started", "pending", 1), ("instance.transitioned", "delivered", 1)}
    failed = next(d for d in log if d["status"] == "pending")
    assert failed["last_status_code"] == 500 and failed["next_attempt_at"]
    clock.advance(seconds=5)
    time.sleep(1.3)  # the retry was scheduled on RQ one (real) second after the failure
    work()
    log = api.get(f"/webhooks/{hook['id']}/deliveries", as_="admin").json
    assert {(d["event"], d["status"]) for d in log} == {("instance.started", "delivered"),
                                                       ("instance.transitioned", "delivered")}
    assert next(d for d in log if d["event"] == "instance.started")["attempts"] == 2
    # every POST is signed with the secret; the retry carries the same event id
    for headers, body in receiver.received:
        assert webhooks.verify(hook["secret"], headers["X-Signoff-Signature"], body)
        assert not webhooks.verify("wrong-secret", headers["X-Signoff-Signature"], body)
    ids = [h["X-Signoff-Event-Id"] for h, _ in receiver.received]
    assert len(ids) == 3 and len(set(ids)) == 2
    started = receiver.events()[0]
    assert started["event"] == "instance.started" and started["instance"]["id"] == inst["id"]
    assert started["instance"]["org_unit"] == "S1" and started["trigger"] == "start"


def test_overdue_and_escalation_events_and_scope(api, receiver, clock, rq_queue):
    everything = register(api, receiver, ["step.overdue", "step.escalated"])
    inst = api.submitted()
    api.submitted(as_="a3", unit="S3")
    clock.advance(hours=4, minutes=1)
    timers.run_due()
    rows = db.session.execute(sa.select(WebhookDelivery.event, WebhookDelivery.payload)
                              .where(WebhookDelivery.webhook_id == everything["id"])).all()
    events = sorted((e, p["instance"]["org_unit"]) for e, p in rows)
    assert events == [("step.escalated", "S1"), ("step.escalated", "S3"), ("step.overdue", "S1"),
                      ("step.overdue", "S3")]
    overdue = next(p for e, p in rows if e == "step.overdue" and p["instance"]["id"] == inst["id"])
    assert overdue["state"] == "store_review"
    # a webhook registered for EAST hears nothing of SOUTH's store S3
    from engine import org

    east_hook = register(api, receiver, ["instance.transitioned"], org_unit="EAST")
    api.post(f"/instances/{inst['id']}/actions/approve", as_="sm1", json={})
    api.post(f"/instances/{inst['id'] + 1}/actions/approve", as_="sm3", json={})
    units = db.session.scalars(sa.select(WebhookDelivery.payload).where(
        WebhookDelivery.webhook_id == east_hook["id"])).all()
    assert [p["instance"]["org_unit"] for p in units] == ["S1"]
    assert org.unit_by_code("EAST")


def deliveries_of(api, hook):
    return api.get(f"/webhooks/{hook['id']}/deliveries", as_="admin").json


def send() -> dict:
    """Send what is pending here and now (`flask webhooks send`), then look at the database afresh."""
    db.session.rollback()
    counts = webhooks.deliver_pending()
    db.session.rollback()
    db.session.expire_all()
    return counts


def test_internal_addresses_are_refused_at_registration(api, app, monkeypatch):
    monkeypatch.setitem(app.config, "WEBHOOK_ALLOWED_HOSTS", [])
    for url in ["https://127.0.0.1:6379", "https://[::1]:5432/", "https://169.254.169.254/latest/meta-data/",
                "https://10.1.2.3/x", "https://192.168.1.1/", "https://172.16.0.9/", "https://0.0.0.0/",
                "https://224.0.0.1/", "https://240.0.0.1/", "https://[::ffff:127.0.0.1]/", "https://[fe80::1]/",
                "https://[fc00::1]/", "https://localhost:5432/", "http://127.0.0.1:9/x", "https://100.64.0.1/"]:
        body = error(api.post("/webhooks", as_="admin", json={"url": url, "events": ["instance.started"]}), 422)
        assert "url" in body["errors"], (url, body)
    assert api.get("/webhooks", as_="admin").json == []
    ok = api.post("/webhooks", as_="admin", json={"url": "https://hooks.example.com/x", "events": ["step.overdue"]})
    assert ok.status_code == 201
    body = error(api.patch(f"/webhooks/{ok.json['id']}", as_="admin", json={"url": "https://127.0.0.2/x"}), 422)
    assert "url" in body["errors"]
    assert api.get(f"/webhooks/{ok.json['id']}", as_="admin").json["url"] == "https://hooks.example.com/x"
    # listed hosts and networks are allowed
    monkeypatch.setitem(app.config, "WEBHOOK_ALLOWED_HOSTS", ["127.0.0.1", "10.8.0.0/16"])
    for url in ["http://127.0.0.1:9/x", "https://10.8.3.4/x"]:
        assert api.post("/webhooks", as_="admin", json={"url": url, "events": ["step.overdue"]}).status_code == 201
    error(api.post("/webhooks", as_="admin", json={"url": "https://10.9.0.1/", "events": ["step.overdue"]}), 422)


def test_a_name_that_resolves_inside_is_refused_at_send_time(api, app, receiver, monkeypatch, rq_queue):
    """The name did not resolve when it was registered; by the time of sending it resolves to loopback."""
    port = receiver.server.server_address[1]
    hook = api.post("/webhooks", as_="admin", json={"url": f"http://receiver.invalid:{port}/hooks",
                                                     "events": ["instance.started"]}).json
    real = socket.getaddrinfo

    def resolver(host, *args, **kwargs):  # the resolver only: everything else is real
        return real("127.0.0.1" if host == "receiver.invalid" else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    monkeypatch.setitem(app.config, "WEBHOOK_ALLOWED_HOSTS", [])
    api.start()
    assert send() == {"delivered": 0, "retrying": 1, "failed": 0}
    assert receiver.methods == []
    [d] = deliveries_of(api, hook)
    assert (d["status"], d["last_status_code"], d["last_error"]) == ("pending", None, "delivery failed")
    # allowed by its address: the connection goes to the address checked, the request still names the host
    monkeypatch.setitem(app.config, "WEBHOOK_ALLOWED_HOSTS", ["127.0.0.0/8"])
    db.session.execute(sa.update(WebhookDelivery).values(next_attempt_at=None))
    db.session.commit()
    assert send()["delivered"] == 1
    assert receiver.received[0][0]["Host"] == f"receiver.invalid:{port}"


def test_a_redirect_is_a_failed_attempt(api, app, rq_queue):
    target = Receiver()
    sender = Receiver(redirect_to=target.url)
    try:
        hook = register(api, sender, ["instance.started"])
        api.start()
        assert send() == {"delivered": 0, "retrying": 1, "failed": 0}
        assert sender.methods == ["POST"] and target.methods == []
        [d] = deliveries_of(api, hook)
        assert (d["status"], d["last_status_code"], d["last_error"]) == ("pending", 302, "HTTP 302")
    finally:
        sender.stop()
        target.stop()


def test_the_log_does_not_tell_failures_apart(api, app, monkeypatch, rq_queue):
    """Refused, timed out and a TLS handshake with a plain HTTP server all read "delivery failed"."""
    monkeypatch.setitem(app.config, "WEBHOOK_TIMEOUT", 0.5)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    silent = socket.socket()  # accepts connections (the backlog) and never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    plain = Receiver()
    try:
        hooks = [api.post("/webhooks", as_="admin", json={"url": url, "events": ["instance.started"]}).json
                 for url in [f"http://127.0.0.1:{closed_port}/x", f"http://127.0.0.1:{silent.getsockname()[1]}/x",
                             plain.url.replace("http://", "https://")]]
        api.start()
        assert send() == {"delivered": 0, "retrying": 3, "failed": 0}
        for hook in hooks:
            [d] = deliveries_of(api, hook)
            assert (d["last_status_code"], d["last_error"]) == (None, "delivery failed"), hook["url"]
    finally:
        silent.close()
        plain.stop()


def test_webhooks_per_unit_are_capped(api, app, monkeypatch):
    monkeypatch.setitem(app.config, "WEBHOOK_MAX_PER_UNIT", 2)

    def new(unit):
        return api.post("/webhooks", as_="admin", json={"url": "https://hooks.example.com/x", "org_unit": unit,
                                                         "events": ["instance.started"]})

    first, _ = new("EAST").json, new("EAST").json
    body = error(new("EAST"), 422)
    assert "org_unit" in body["errors"] and "at most 2" in body["errors"]["org_unit"][0]
    assert new("SOUTH").status_code == 201  # another unit has its own places
    assert api.delete(f"/webhooks/{first['id']}", as_="admin").status_code == 204
    third = new("EAST")
    assert third.status_code == 201
    body = error(api.patch(f"/webhooks/{first['id']}", as_="admin", json={"active": True}), 422)
    assert "org_unit" in body["errors"]
    assert len([h for h in api.get("/webhooks", as_="admin").json if h["active"]]) == 3


def test_a_slow_receiver_does_not_hold_up_the_others(api, app, work, monkeypatch):
    """A receiver that takes 5 s to answer (the timeout is 2 s) is tried once per round; the other endpoint
    gets all its events at once, not one timeout per event later."""
    monkeypatch.setitem(app.config, "WEBHOOK_TIMEOUT", 2)
    slow, fast = Receiver(delay=5), Receiver()
    try:
        register(api, slow, ["instance.started", "instance.transitioned"])
        register(api, fast, ["instance.started", "instance.transitioned"])
        for _ in range(3):
            api.submitted()
        began = time.monotonic()
        work()
        assert len(fast.received) == 6
        assert slow.methods == ["POST"]  # its other five deliveries wait for the next round
        assert fast.times[-1] - began < 8  # six timeouts of the slow one would be 12 s
    finally:
        slow.stop()
        fast.stop()
