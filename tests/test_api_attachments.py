"""Attachments: upload, list, download, limits, visibility, and the history entry."""
import io
from pathlib import Path

from tests.api_fixtures import api_fixture  # noqa: F401
from tests.test_api_core import error

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100
PDF = b"%PDF-1.4\n" + b"x" * 50


def upload(api, iid, content, name="photo.png", as_="a1"):
    return api.post(f"/instances/{iid}/attachments", as_=as_, data={"file": (io.BytesIO(content), name)},
                    content_type="multipart/form-data")


def test_upload_list_download_and_history(api, app):
    inst = api.submitted()
    r = upload(api, inst["id"], PNG, "收银单.png")
    assert r.status_code == 201, r.json
    att = r.json
    assert att["content_type"] == "image/png" and att["size"] == len(PNG) and att["filename"] == "收银单.png"
    assert upload(api, inst["id"], PDF, "../../etc/evidence.pdf", as_="sm1").json["filename"] == "evidence.pdf"
    listed = api.get(f"/instances/{inst['id']}/attachments", as_="sm1").json
    assert [a["id"] for a in listed] == [att["id"], att["id"] + 1]
    r = api.get(f"/instances/{inst['id']}/attachments/{att['id']}", as_="east")
    assert r.status_code == 200 and r.data == PNG and r.mimetype == "image/png"
    assert "attachment" in r.headers["Content-Disposition"]
    files = list((Path(app.instance_path) / "attachments" / str(inst["id"])).iterdir())
    assert len(files) == 2
    history = api.get(f"/instances/{inst['id']}/history", as_="a1").json
    kinds = [(h["kind"], h.get("detail")) for h in history]
    assert ("attachment", "收银单.png") in kinds and kinds[0] == ("event", None)


def test_visibility(api):
    inst = api.submitted()
    att = upload(api, inst["id"], PNG).json
    error(upload(api, inst["id"], PNG, as_="a2"), 404)
    error(api.get(f"/instances/{inst['id']}/attachments", as_="a2"), 404)
    error(api.get(f"/instances/{inst['id']}/attachments/{att['id']}", as_="a2"), 404)
    other = api.submitted(as_="a2", unit="S2")
    # an attachment id under another instance's URL is not found
    error(api.get(f"/instances/{other['id']}/attachments/{att['id']}", as_="boss"), 404)


def test_limits(api, app, monkeypatch):
    inst = api.submitted()
    error(upload(api, inst["id"], b"MZ\x90\x00 not an image", "evil.png"), 415, "unsupported_media_type")
    error(upload(api, inst["id"], b"", "empty.png"), 422)
    monkeypatch.setitem(app.config, "ATTACHMENT_MAX_BYTES", 1000)
    error(upload(api, inst["id"], PNG + b"\x00" * 2000), 413, "too_large")
    error(upload(api, inst["id"], PNG + b"\x00" * 200_000), 413)
    r = api.post(f"/instances/{inst['id']}/attachments", as_="a1", json={"file": "x"})
    error(r, 422)
    assert api.get(f"/instances/{inst['id']}/attachments", as_="a1").json == []
