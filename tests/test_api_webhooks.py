"""Webhooks: registration (admins, HTTPS), HMAC-signed deliveries by real RQ workers to a real HTTP receiver
on localhost, retries after a failure, event ids for de-duplication, and the delivery log."""
import json
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
    """A real HTTP server in a thread; answers 500 to the first `fail` requests, then 204."""

    def __init__(self):
        self.received = []
        self.fail = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((dict(self.headers), body))
                status = 500 if receiver.fail > 0 else 204
                receiver.fail -= 1
                self.send_response(status)
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
