"""What the fault tests share: real `flask --app wsgi worker` processes that can be SIGKILLed as a whole, a
private redis-server that can be restarted, deadlines loaded in bulk, and the SMTP deliveries counted.

Workers run on the test database (TEST_DATABASE_URL), the given Redis and the test's aiosmtpd port, on the
real clock. They are killed the way a host kills a service: every process of the tree at once (RQ puts
each work horse in a process group of its own, so killing the workers' group alone would leave the horses
running their jobs to the end).

Test modules import the fixtures by their function names (`workers_fixture`, …) and use them by their
fixture names (`workers`, …).
"""
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from engine.db import db
from engine.models import Instance, Notification, Timer
from engine.org import OrgUnit, User

ROOT = Path(__file__).resolve().parent.parent

# The discount request's store review: rung 1 reminds the store managers, rung 2 escalates to their manager.
# With the `people` org that is (S1: sm1 and sm1asst | S2: sm2 | S3: sm3) and (S1, S2: east | S3: south).
RECIPIENTS = {("S1", 1): {"sm1", "sm1asst"}, ("S2", 1): {"sm2"}, ("S3", 1): {"sm3"},
              ("S1", 2): {"east"}, ("S2", 2): {"east"}, ("S3", 2): {"south"}}
CREATORS = {"S1": "a1", "S2": "a2", "S3": "a3"}
REQUEST = {"customer": "李女士", "amount": "1280.00", "discount_percent": "15", "reason": "老客户"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float, step: float = 0.2) -> bool:
    """Poll `predicate` until it is true or `timeout` seconds passed; returns its last value."""
    end = time.monotonic() + timeout
    while not (ok := predicate()) and time.monotonic() < end:
        time.sleep(step)
    return bool(ok)


# ---- worker processes ---------------------------------------------------------------------------------

def worker_env(app, smtp_port: int, redis_url: str, **settings) -> dict:
    """The environment of a worker process on the test's database, `redis_url` and SMTP server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SIGNOFF_", "FLASK_", "MAIL_"))}
    env.update(SIGNOFF_ENV="testing", TEST_REDIS_URL=redis_url, SIGNOFF_INSTANCE=app.instance_path,
               MAIL_SERVER="127.0.0.1", MAIL_PORT=str(smtp_port), PYTHONUNBUFFERED="1")
    env.update({k: str(v) for k, v in settings.items()})
    return env


def _children() -> dict[int, list[int]]:
    """Every process's children, from /proc."""
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            tree.setdefault(ppid, []).append(int(entry))
    return tree


def _descendants(pids: list[int]) -> list[int]:
    tree, found, todo = _children(), [], list(pids)
    while todo:
        kids = tree.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


class Workers:
    """N worker processes in one process group, started, SIGKILLed (the whole tree) and restarted at will."""

    def __init__(self, env: dict, log_dir: Path):
        self.env, self.log_dir = env, log_dir
        self.procs: list[subprocess.Popen] = []
        self.kills = 0
        self._logs = []
        self._started = 0

    def start(self, n: int) -> None:
        pgid = 0
        for _ in range(n):
            self._started += 1
            log = open(self.log_dir / f"worker-{self._started}.log", "wb")  # noqa: SIM115  (closed in stop)
            self._logs.append(log)
            proc = subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "worker"], cwd=ROOT,
                                    env=self.env, stdout=log, stderr=subprocess.STDOUT, process_group=pgid)
            pgid = pgid or proc.pid
            self.procs.append(proc)

    def kill(self) -> None:
        """SIGKILL every worker, its scheduler and its work horses at the same instant."""
        if not self.procs:
            return
        pgid = self.procs[0].pid
        os.killpg(pgid, signal.SIGSTOP)  # frozen first: nobody forks a new horse while the tree is listed
        for pid in _descendants([p.pid for p in self.procs]):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        os.killpg(pgid, signal.SIGKILL)
        for p in self.procs:
            p.wait(10)
        self.procs = []
        self.kills += 1

    def stop(self) -> None:
        """Warm shutdown (SIGTERM), then kill whatever is left."""
        if self.procs:
            os.killpg(self.procs[0].pid, signal.SIGTERM)
            try:
                for p in self.procs:
                    p.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
        self.procs = []
        for log in self._logs:
            log.close()

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
                         for p in sorted(self.log_dir.glob("worker-*.log")))


@pytest.fixture(name="workers")
def workers_fixture(app, smtp, rq_queue, tmp_path):
    """`workers(n, **settings)` starts n worker processes on the test's Redis and SMTP server; all are stopped
    at the end (their logs printed when the test failed)."""
    groups = []

    def start(n: int = 2, redis_url: str | None = None, **settings) -> Workers:
        url = redis_url or app.config["SIGNOFF_CONFIG"].REDIS_URL
        group = Workers(worker_env(app, smtp.port, url, **settings), tmp_path)
        group.start(n)
        groups.append(group)
        return group

    yield start
    for group in groups:
        group.stop()
        print(group.logs()[-6000:])


# ---- a private redis-server -----------------------------------------------------------------------------

class RedisServer:
    """A redis-server without persistence on a free port: `restart()` comes back empty, like a crash."""

    def __init__(self, tmp: Path):
        self.port, self.tmp = free_port(), tmp
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.pidfile = tmp / f"redis-{self.port}.pid"

    def start(self) -> None:
        subprocess.run(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                        "--appendonly", "no", "--daemonize", "yes", "--pidfile", str(self.pidfile),
                        "--dir", str(self.tmp)], check=True, stdout=subprocess.DEVNULL)
        assert wait_until(self._pong, 10), "private redis-server did not start"

    def stop(self) -> None:
        subprocess.run(["redis-cli", "-p", str(self.port), "shutdown", "nosave"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        wait_until(lambda: not self._pong(), 10)

    def restart(self) -> None:
        self.stop()
        self.start()

    def _pong(self) -> bool:
        return subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True,
                              text=True).stdout.strip() == "PONG"


@pytest.fixture(name="private_redis")
def private_redis_fixture(tmp_path):
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


# ---- deadlines and what they should send -----------------------------------------------------------------

@dataclass(frozen=True)
class Loaded:
    instance_ids: list[int]
    timer_ids: list[int]
    expected: dict[str, tuple[int, str]]  # Message-ID → (instance id, recipient login)


def load_due_timers(n: int, first_due: datetime, spread: float, rungs: tuple[int, ...] = (1, 2)) -> Loaded:
    """n discount requests waiting for their store manager (S1, S2, S3 in turn), each with one timer due between
    `first_due` and `spread` seconds later: `rungs` in turn (0: the deadline itself, no mail; 1: the reminder;
    2: the escalation). Bulk-loaded: the engine's own path to this state is covered by the workflow tests; here
    the point is what the workers do."""
    units = {u.code: u.id for u in db.session.scalars(sa.select(OrgUnit).where(OrgUnit.code.in_(CREATORS)))}
    users = {u.login: u.id for u in db.session.scalars(sa.select(User))}
    now = datetime.now(UTC)
    plan = [(code, rungs[i % len(rungs)], first_due + timedelta(seconds=spread * i / max(1, n - 1)))
            for i, code in enumerate(list(CREATORS) * (n // 3 + 1))][:n]
    ids = db.session.scalars(sa.insert(Instance).returning(Instance.id), [
        {"workflow": "discount_request", "definition_version": 1, "org_unit_id": units[code], "state": "store_review",
         "state_seq": 2, "data": REQUEST, "version": 2, "created_by_id": users[CREATORS[code]], "created_at": now,
         "updated_at": now, "state_entered_at": now, "due_at": due} for code, _, due in plan]).all()
    timer_ids = db.session.scalars(sa.insert(Timer).returning(Timer.id), [
        {"instance_id": iid, "state": "store_review", "state_seq": 2, "rung": rung,
         "action": ("deadline", "remind", "escalate")[rung], "due_at": due, "status": "pending"}
        for iid, (_, rung, due) in zip(ids, plan, strict=True)]).all()
    db.session.commit()
    expected = {f"<timer.{tid}.{users[login]}@signoff>": (iid, login)
                for tid, iid, (code, rung, _) in zip(timer_ids, ids, plan, strict=True)
                for login in RECIPIENTS.get((code, rung), ())}
    return Loaded(ids, timer_ids, expected)


def timer_statuses(timer_ids: list[int]) -> dict[str, int]:
    db.session.rollback()
    rows = db.session.execute(sa.select(Timer.status, sa.func.count()).where(Timer.id.in_(timer_ids))
                              .group_by(Timer.status)).all()
    db.session.rollback()
    return dict(rows)


def notification_statuses(loaded: Loaded, keys_like: str = "timer:%") -> dict[str, int]:
    """Statuses of the notifications about `loaded`'s instances (not those of instances the workers' scheduler
    starts meanwhile, such as the stores' daily handovers)."""
    db.session.rollback()
    rows = db.session.execute(sa.select(Notification.status, sa.func.count())
                              .where(Notification.idempotency_key.like(keys_like),
                                     Notification.instance_id.in_(loaded.instance_ids))
                              .group_by(Notification.status)).all()
    db.session.rollback()
    return dict(rows)


@dataclass
class Deliveries:
    raw: int            # messages the SMTP server accepted (for the expected Message-IDs)
    distinct: int       # distinct Message-IDs among them
    redelivered: int    # raw - distinct: the same message accepted again after a crash
    missing: int        # expected Message-IDs never received
    unexpected: int     # timer mail nobody expected (another instance, another recipient)
    distinct_duplicates: int  # different Message-IDs telling the same person the same thing twice

    def __str__(self):
        return (f"deliveries: raw {self.raw}, distinct {self.distinct}, re-delivered {self.redelivered}, "
                f"missing {self.missing}, unexpected {self.unexpected}, "
                f"distinct-message duplicates {self.distinct_duplicates}")


def count_deliveries(inbox, loaded: Loaded) -> Deliveries:
    """Count the timer mail the SMTP server received, per Message-ID, against what `loaded` should send.

    A distinct-message duplicate is judged from what the reader sees (addressee, subject, the instance the
    link opens), not from our Message-ID, so a rung fired twice under a new key would show here too."""
    ours = set(loaded.timer_ids)
    received = [m for m in list(inbox.messages) if _timer_id(m) in ours]
    ids = [str(m["Message-ID"]) for m in received]
    distinct = set(ids)
    seen, dupes = set(), 0
    for m in {str(m["Message-ID"]): m for m in received}.values():
        link = next((w for w in m.get_body(("plain",)).get_content().split() if "/instances/" in w), "")
        what = (m["To"].addresses[0].addr_spec, str(m["Subject"]).split("】")[0], link)
        dupes += what in seen
        seen.add(what)
    return Deliveries(raw=len(ids), distinct=len(distinct), redelivered=len(ids) - len(distinct),
                      missing=len(set(loaded.expected) - distinct), unexpected=len(distinct - set(loaded.expected)),
                      distinct_duplicates=dupes)


def _timer_id(message) -> int | None:
    """The timer a ladder email came from: its Message-ID is <timer.TIMER.USER@signoff>."""
    parts = str(message["Message-ID"]).split(".")
    return int(parts[1]) if parts[0] == "<timer" and len(parts) > 2 and parts[1].isdigit() else None
