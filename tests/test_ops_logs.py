"""Structured logs: one JSON object per line with the request id (echoed in X-Request-ID), method, path, status,
duration and user; in a worker, the RQ job id; readable text in development."""
import io
import json
import logging

import pytest

from engine import tokens
from web import logs


@pytest.fixture
def captured(tmp_path):
    """install(format) → a function returning the JSON (or text) lines logged since. A file, not a buffer, so
    that forked RQ work horses write to it too."""
    root = logging.getLogger()
    level = root.level
    installed = []

    def install(fmt="json"):
        path = tmp_path / f"log-{len(installed)}.txt"
        stream = path.open("a", encoding="utf-8")
        installed.append((logs.install(fmt, "DEBUG", stream), stream))
        return lambda: path.read_text(encoding="utf-8").splitlines()

    yield install
    for handler, stream in installed:
        root.removeHandler(handler)
        stream.close()
    root.setLevel(level)


def job_that_logs() -> str:
    logging.getLogger("signoff.test").warning("inside a job")
    return "done"


def test_request_lines_carry_the_request_id_user_and_timing(app, people, captured):
    lines = captured("json")
    token = tokens.issue(people["rep1"])
    c = app.test_client()
    r = c.get("/api/v1/me", headers={"Authorization": f"Bearer {token}", "X-Request-ID": "edge-42.a:b"})
    assert r.status_code == 200 and r.headers["X-Request-ID"] == "edge-42.a:b"
    r2 = c.get("/healthz", headers={"X-Request-ID": "bad id {\"forged\": 1}"})  # not sane: replaced
    generated = r2.headers["X-Request-ID"]
    assert len(generated) == 32 and generated.isalnum()

    records = [json.loads(line) for line in lines()]  # every line is one JSON object
    access = [x for x in records if x["logger"] == "signoff.request"]
    me = next(x for x in access if x["path"] == "/api/v1/me")
    assert me["request_id"] == "edge-42.a:b" and me["method"] == "GET" and me["status"] == 200
    assert me["user_id"] == people["rep1"].id and me["level"] == "INFO" and me["duration_ms"] >= 0
    assert me["message"] == "GET /api/v1/me 200" and me["time"].endswith("+00:00")
    probe = next(x for x in access if x["path"] == "/healthz")
    assert probe["request_id"] == generated and probe["level"] == "DEBUG" and "user_id" not in probe
    c.get("/metrics")
    assert [x["level"] for x in map(json.loads, lines()) if x.get("path") == "/metrics"] == ["DEBUG"]  # scrapes
    assert "forged" not in json.dumps(records)


def test_worker_lines_carry_the_job_id(app, rq_queue, captured):
    lines = captured("json")
    from engine.jobs import AppWorker

    AppWorker.app = app
    worker = AppWorker([rq_queue], connection=rq_queue.connection)
    job = rq_queue.enqueue(job_that_logs)
    worker.work(burst=True, logging_level="INFO")
    assert job.get_status(refresh=True) == "finished"
    inside = [json.loads(x) for x in lines() if "inside a job" in x]
    assert inside and inside[-1]["job_id"] == job.id and inside[-1]["level"] == "WARNING"
    assert "request_id" not in inside[-1]


def test_text_format_for_development_and_no_other_format(app, captured):
    lines = captured("text")
    r = app.test_client().get("/readyz", headers={"X-Request-ID": "dev-1"})
    assert r.status_code == 200
    [line] = [x for x in lines() if "GET /readyz 200" in x]
    assert "[request_id=dev-1]" in line and "signoff.request" in line and not line.startswith("{")
    with pytest.raises(RuntimeError, match="LOG_FORMAT must be json or text"):
        logs.install("xml")
    assert logs.install("") is None  # leaves logging alone (the tests' default)


def test_json_formatter_keeps_tracebacks_on_one_line():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    log = logging.getLogger("signoff.test.exc")
    log.addHandler(handler)
    try:
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("it failed")
    finally:
        log.removeHandler(handler)
    [line] = stream.getvalue().splitlines()
    record = json.loads(line)
    assert record["message"] == "it failed" and "ValueError: boom" in record["exc"]
