"""Fixtures for the UI tests: compiled catalogues, a logged-in test client, the app served on 127.0.0.1 in a
thread, and Debian's Chromium driven by Playwright (no browser download)."""
import re
import shutil
import threading
from pathlib import Path

import pytest
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session", autouse=True)
def _catalogues():
    """Compile the .po catalogues when their .mo is missing or older (`make install` does it too)."""
    for po in (ROOT / "web" / "translations").glob("*/LC_MESSAGES/messages.po"):
        mo = po.with_suffix(".mo")
        if not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime:
            with po.open("rb") as f:
                catalog = read_po(f)
            with mo.open("wb") as f:
                write_mo(f, catalog)


@pytest.fixture
def fresh_limits(ctx):
    """Forget failed-login counts (they live in Redis)."""
    from engine import queue

    conn = queue.current().connection
    for key in conn.scan_iter("signoff:ui:login-fail:*"):
        conn.delete(key)
    yield
    for key in conn.scan_iter("signoff:ui:login-fail:*"):
        conn.delete(key)


def csrf_token(html: str) -> str:
    m = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', html)
    assert m, "no CSRF token on the page"
    return m.group(1)


class Session:
    """A test client signed in as someone; `post` adds the page's CSRF token unless told otherwise."""

    def __init__(self, app, login: str | None = None, lang: str = "zh", base_url: str = "http://localhost"):
        self.client = app.test_client()
        self.base_url = base_url
        self.headers = {"Accept-Language": lang, "Referer": base_url + "/"}
        self.token = None
        if login:
            page = self.get("/login").get_data(as_text=True)
            r = self.client.post("/login", data={"login": login, "password": "pw-" + login,
                                                 "csrf_token": csrf_token(page)}, headers=self.headers,
                                 base_url=self.base_url)
            assert r.status_code == 302, r.get_data(as_text=True)
        self.token = csrf_token(self.get("/inbox" if login else "/login").get_data(as_text=True))

    def get(self, url: str, headers: dict | None = None, **kw):
        return self.client.get(url, headers={**self.headers, **(headers or {})}, base_url=self.base_url, **kw)

    def post(self, url: str, data: dict | None = None, csrf: str | None = "page", headers: dict | None = None, **kw):
        data = dict(data or {})
        if csrf == "page":
            data["csrf_token"] = self.token
        elif csrf is not None:
            data["csrf_token"] = csrf
        return self.client.post(url, data=data, headers={**self.headers, **(headers or {})}, base_url=self.base_url,
                                **kw)


@pytest.fixture
def signed_in(app, people, fresh_limits):
    """signed_in("rep1") → a Session for that person."""
    return lambda login, lang="zh": Session(app, login, lang)


@pytest.fixture
def anonymous(app, fresh_limits):
    """anonymous() → a Session nobody has signed in to (lang, base_url as for Session)."""
    return lambda **kw: Session(app, **kw)


@pytest.fixture
def shoot():
    """shoot(page, "name") saves a full-page screenshot to tests/artifacts/name.png."""
    return screenshot


@pytest.fixture
def diagram_drawn():
    """diagram_drawn(page): the state diagram was drawn from the vendored mermaid (text when npm was missing)."""
    def wait(page) -> None:
        if (ROOT / "web" / "static" / "vendor" / "mermaid.min.js").exists():
            page.wait_for_selector("body[data-diagram=ready] pre.mermaid svg")
    return wait


@pytest.fixture
def live_server(app, people, fresh_limits):
    """The app on a free 127.0.0.1 port, in a thread; yields its base URL."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(5)


@pytest.fixture
def browser_as(playwright_driver, live_server, tmp_path):
    """browser_as("rep1") → a Playwright page signed in as that person, each in a new empty profile."""
    contexts = []

    def open_as(login: str, width: int = 1200, height: int = 900, lang: str = "zh-CN"):
        profile = tmp_path / f"profile-{login}-{len(contexts)}"
        context = playwright_driver.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True, locale=lang,
            viewport={"width": width, "height": height})
        contexts.append((context, profile))
        page = context.pages[0] if context.pages else context.new_page()
        page.set_default_timeout(15000)
        page.goto(live_server + "/login")
        page.fill("input[name=login]", login)
        page.fill("input[name=password]", "pw-" + login)
        page.click("button[type=submit]")
        page.wait_for_url(re.compile(r".*/inbox.*"))
        page.base = live_server
        return page

    yield open_as
    for context, profile in contexts:
        context.close()
        shutil.rmtree(profile, ignore_errors=True)


def screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
