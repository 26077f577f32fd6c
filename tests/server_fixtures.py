"""A real multi-process deployment for fault and production tests: gunicorn serving `wsgi:app` with N worker
processes, and `flask --app wsgi worker` RQ workers, started as subprocesses the way README's "Running in
production" says, against the test database and Redis.

Use `deployment` (a fixture): `web = deployment.gunicorn(workers=4, threads=4)`, `deployment.worker()`; all it
started is stopped when the test ends, and the logs are printed when a test fails so the cause is visible.
"""
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent  # the venv that runs the tests also has gunicorn and flask


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def production_env(database_url: str, redis_url: str, instance_path, **overrides) -> dict:
    """The environment of a production process (SIGNOFF_ENV=production), as README's table describes it.

    Only what the README names is set, so a setting the code needs but the README forgets shows up here.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEST_", "SIGNOFF_", "FLASK_", "MAIL_"))}
    env.update(SIGNOFF_ENV="production", DATABASE_URL=database_url, REDIS_URL=redis_url,
               SECRET_KEY="production-test-" + secrets.token_hex(16), SIGNOFF_INSTANCE=str(instance_path),
               PYTHONUNBUFFERED="1")
    env.update({k: str(v) for k, v in overrides.items()})
    return env


class Process:
    """A subprocess in its own process group (so its children are stopped with it), logging to a file."""

    def __init__(self, name: str, argv: list[str], env: dict, log_dir: Path):
        self.name, self.argv = name, argv
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "ab")  # noqa: SIM115  (closed in stop)
        self.proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM the group (gunicorn and RQ shut down gracefully on it), SIGKILL whatever is left."""
        if self.alive():
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
            except ProcessLookupError:
                pass
        self._log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class Web(Process):
    """gunicorn serving wsgi:app on a free loopback port."""

    def __init__(self, env: dict, log_dir: Path, workers: int, threads: int, timeout: int, keep_alive: int,
                 name: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        argv = [str(BIN / "gunicorn"), "--workers", str(workers), "--threads", str(threads),
                "--timeout", str(timeout), "--graceful-timeout", "5", "--keep-alive", str(keep_alive),
                "--bind", f"127.0.0.1:{self.port}",
                # gunicorn's control socket defaults to one path per user: two servers on a machine would clash
                "--control-socket", str(log_dir / f"{name}.ctl"), "wsgi:app"]
        super().__init__(name, argv, env, log_dir)

    def wait_ready(self, deadline: float = 30) -> None:
        """Until the app answers /readyz with 200: the processes serve, the database and Redis answer."""
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            if not self.alive():
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
            try:
                if requests.get(self.url + "/readyz", timeout=5).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn not ready after {deadline} s:\n{self.log()[-3000:]}")

    def worker_pids(self) -> list[int]:
        """The gunicorn worker processes (children of the master)."""
        out = subprocess.run(["pgrep", "-P", str(self.pid)], capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]


class Deployment:
    """Starts and stops the processes of one production-like deployment."""

    def __init__(self, log_dir: Path, database_url: str, redis_url: str, **settings):
        """`settings`: more environment variables for every process (MAIL_SERVER, BASE_URL, …)."""
        self.log_dir = log_dir
        self.base_env = production_env(database_url, redis_url, log_dir / "instance", **settings)
        self.processes: list[Process] = []

    def env(self, **overrides) -> dict:
        return {**self.base_env, **{k: str(v) for k, v in overrides.items()}}

    def gunicorn(self, workers: int = 2, threads: int = 1, timeout: int = 30, keep_alive: int = 2, **env) -> Web:
        web = Web(self.env(**env), self.log_dir, workers, threads, timeout, keep_alive,
                  f"gunicorn-{len(self.processes)}")
        self.processes.append(web)
        web.wait_ready()
        return web

    def worker(self, **env) -> Process:
        """One `flask --app wsgi worker` (RQ worker with scheduler)."""
        p = Process(f"worker-{len(self.processes)}", [str(BIN / "flask"), "--app", "wsgi", "worker"],
                    self.env(**env), self.log_dir)
        self.processes.append(p)
        return p

    def flask(self, *args: str, check: bool = True, **env) -> subprocess.CompletedProcess:
        """Run a `flask --app wsgi …` command to completion, as an operator would."""
        return subprocess.run([str(BIN / "flask"), "--app", "wsgi", *args], cwd=ROOT, env=self.env(**env),
                              capture_output=True, text=True, timeout=120, check=check)

    def stop(self) -> None:
        for p in reversed(self.processes):
            p.stop()

    def logs(self) -> str:
        """Each process's errors in full (they may be anywhere in a long log), then the end of its log."""
        return "\n".join(f"----- {p.name} ({' '.join(p.argv[-3:])})\n{_errors(p.log())}\n----- end of {p.name}\n"
                         f"{p.log()[-3000:]}" for p in self.processes)


def _errors(text: str, limit: int = 8) -> str:
    """The first `limit` error records: JSON log lines at ERROR, and plain tracebacks down to their last line."""
    found, block = [], None
    for line in text.splitlines():
        if block is not None:
            block.append(line)
            if line and not line[0].isspace() and not line.startswith(("Traceback", "During handling", "The above")):
                found.append("\n".join(block))
                block = None
        elif line.startswith("Traceback"):
            block = [line]
        elif '"level": "ERROR"' in line:
            found.append(line)
    return f"{len(found)} errors\n" + "\n".join(found[:limit])


def needs_services() -> None:
    if not (os.environ.get("TEST_DATABASE_URL") and os.environ.get("TEST_REDIS_URL")):
        pytest.skip("a multi-process deployment needs PostgreSQL and Redis (TEST_DATABASE_URL, TEST_REDIS_URL)")


@pytest.fixture
def deployment(app, tmp_path):
    """gunicorn and RQ worker subprocesses on the test database (already migrated by `app`) and Redis.
    PostgreSQL only: SQLite is one machine's file, not what a multi-process deployment runs on."""
    needs_services()
    d = Deployment(tmp_path, os.environ["TEST_DATABASE_URL"], os.environ["TEST_REDIS_URL"])
    yield d
    d.stop()
    print(d.logs())  # pytest shows it only when the test failed
