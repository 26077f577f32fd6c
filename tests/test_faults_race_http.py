"""Fault test 5 (issue 8): the approval race over HTTP on PostgreSQL.

100 discount requests wait for the store manager. For each, 50 API calls — approve and return, from four
people who may act on the step — are released at the same instant against gunicorn (4 processes × 4
threads). Exactly one wins; every other caller gets 409 with where the instance is now; the history has
exactly one event for the step; the instance is where the winner's action took it.
"""
import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import requests
import sqlalchemy as sa

import engine
from engine import tokens
from engine.db import db
from engine.models import AuditEvent, Instance
from tests.server_fixtures import deployment  # noqa: F401

REQUEST = {"customer": "李女士", "amount": "1280.00", "discount_percent": "15", "reason": "老客户"}
INSTANCES, CALLS = 100, 50
KEEP_ALIVE = 60
# Who may act on store_review at S1: the two store managers approve or return; the regional managers above
# (EAST, HQ) may return it too. The submitter, a1, may do neither.
APPROVERS, RETURNERS = ("sm1", "sm1asst"), ("sm1", "sm1asst", "east", "boss")
DEST = {"approve": "approved", "return": "draft"}


def _calls(rng: random.Random) -> list[tuple[str, str]]:
    """Half approve, half return, in a random order, each from someone allowed to."""
    calls = [("approve", rng.choice(APPROVERS)) for _ in range(CALLS // 2)]
    calls += [("return", rng.choice(RETURNERS)) for _ in range(CALLS - CALLS // 2)]
    rng.shuffle(calls)
    return calls


class Racers:
    """CALLS threads, each with its own keep-alive HTTP session, released together by a barrier per step.

    gunicorn keeps idle connections open for KEEP_ALIVE seconds, far longer than a step takes, so a session
    never sends a call on a connection the server has just closed (that call would be lost, not refused)."""

    def __init__(self, base: str, bearer: dict[str, str]):
        self.base, self.bearer = base, bearer
        self.local = threading.local()
        self.pool = ThreadPoolExecutor(CALLS)

    def _session(self) -> requests.Session:
        if not hasattr(self.local, "session"):
            self.local.session = requests.Session()
        return self.local.session

    def _post(self, barrier, instance_id, trigger, login):
        body = {"data": {}, "comment": f"{trigger} by {login}"}
        headers = {"Authorization": f"Bearer {self.bearer[login]}", "Accept-Language": "en"}
        barrier.wait()
        r = self._session().post(f"{self.base}/api/v1/instances/{instance_id}/actions/{trigger}",
                                 json=body, headers=headers, timeout=60)
        return trigger, login, r.status_code, r.headers.get("Content-Type", ""), r.json()

    def race(self, instance_id: int, calls: list[tuple[str, str]]) -> list[tuple]:
        barrier = threading.Barrier(len(calls))
        futures = [self.pool.submit(self._post, barrier, instance_id, t, login) for t, login in calls]
        return [f.result() for f in futures]


def test_fifty_concurrent_approve_or_return_per_step_over_http(app, ctx, people, rq_queue, deployment):  # noqa: F811
    ids = []
    for _ in range(INSTANCES):
        inst = engine.start("discount_request", "S1", people["a1"], REQUEST)
        engine.fire(inst.id, "submit", people["a1"])
        ids.append(inst.id)
    bearer = {login: tokens.issue(people[login]) for login in set(APPROVERS + RETURNERS)}
    # 5,000 calls from four people in well under a minute would hit the per-user budget (429): that limit has
    # its own test; here every call must reach the engine.
    web = deployment.gunicorn(workers=4, threads=4, keep_alive=KEEP_ALIVE, API_RATE_LIMIT=0)

    racers, rng = Racers(web.url, bearer), random.Random(8)
    statuses, winners, bad = Counter(), {}, []
    started = time.monotonic()
    for instance_id in ids:
        for trigger, login, status, ctype, body in racers.race(instance_id, _calls(rng)):
            statuses[status] += 1
            if not ctype.startswith("application/json") or "Traceback" in str(body):
                bad.append((instance_id, status, ctype, body))
            if status == 200:
                winners.setdefault(instance_id, []).append((trigger, login, body))
            elif status == 409:
                details = body.get("details", {})
                if body.get("error") not in ("not_available", "version_conflict") or "state" not in details:
                    bad.append((instance_id, status, body))
                winners.setdefault(("lost", instance_id), []).append(details.get("state"))
            else:
                bad.append((instance_id, status, body))
    elapsed = time.monotonic() - started
    racers.pool.shutdown()

    db.session.expire_all()
    instances = {i.id: i for i in db.session.scalars(sa.select(Instance).where(Instance.id.in_(ids)))}
    step_events = Counter(db.session.scalars(
        sa.select(AuditEvent.instance_id).where(AuditEvent.instance_id.in_(ids),
                                                AuditEvent.trigger.in_(("approve", "return")))))
    won = Counter(w[0][0] for k, w in winners.items() if isinstance(k, int))
    final = Counter(i.state for i in instances.values())
    print(f"\nrace over HTTP: {INSTANCES} steps × {CALLS} calls = {sum(statuses.values())} requests in "
          f"{elapsed:.1f} s ({sum(statuses.values()) / elapsed:.0f}/s) on gunicorn 4×4; "
          f"200: {statuses[200]}, 409: {statuses[409]}, other: {sum(statuses.values()) - statuses[200] - statuses[409]}"
          f"; winners: {dict(won)}; step audit events: {sum(step_events.values())}; final states: {dict(final)}")

    assert bad == [], bad[:5]
    assert sum(statuses.values()) == INSTANCES * CALLS
    assert statuses[200] == INSTANCES and statuses[409] == INSTANCES * (CALLS - 1), statuses
    for instance_id in ids:
        inst = instances[instance_id]
        (trigger, login, body), = winners[instance_id]  # exactly one success for this step
        assert step_events[instance_id] == 1, (instance_id, step_events[instance_id])
        assert inst.state == DEST[trigger] == body["state"], (instance_id, trigger, inst.state, body["state"])
        assert inst.version == 3 == body["version"]  # start, submit, and the one winning action
        # every loser was told where the instance is now: where the winner took it
        assert set(winners[("lost", instance_id)]) == {inst.state}, (instance_id, winners[("lost", instance_id)])
        event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.instance_id == instance_id,
                                                              AuditEvent.trigger == trigger))
        assert event.actor.login == login and event.comment == f"{trigger} by {login}"
    assert won["approve"] > 0 and won["return"] > 0, won  # both kinds of action really competed
