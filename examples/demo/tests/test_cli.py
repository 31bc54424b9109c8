import json
import threading
import urllib.error
import urllib.request

import pytest

from demo_app import cli


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == "warmci-demo 0.1.0"


def test_load_assets_requires_app_js(tmp_path):
    (tmp_path / "index.html").write_text("<html></html>")
    with pytest.raises(cli.MissingAssetError, match="app.js"):
        cli.load_assets(tmp_path)


def test_serve_fails_loudly_without_bundle(tmp_path, monkeypatch, capsys):
    (tmp_path / "index.html").write_text("<html></html>")
    monkeypatch.setattr(cli, "static_dir", lambda: tmp_path)
    assert cli.main(["serve", "--port", "0"]) == 2
    assert "app.js" in capsys.readouterr().err


@pytest.fixture
def server():
    assets = {"index.html": b"<html>index</html>", "app.js": b"console.log(1)"}
    srv = cli.make_server("127.0.0.1", 0, assets, quiet=True)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join()


def _get(url):
    with urllib.request.urlopen(url, timeout=5) as resp:
        return resp.status, resp.headers["Content-Type"], resp.read()


def test_server_routes(server):
    status, ctype, body = _get(server + "/")
    assert (status, body) == (200, b"<html>index</html>")
    assert ctype.startswith("text/html")
    status, ctype, body = _get(server + "/app.js")
    assert ctype.startswith("text/javascript")
    status, ctype, body = _get(server + "/api/rows")
    data = json.loads(body)
    assert ctype == "application/json"
    assert data["columns"] == ["name", "language", "stars", "score"]
    assert data["rows"][0]["name"] == "buckaroo"


def test_server_404(server):
    with pytest.raises(urllib.error.HTTPError) as exc:
        _get(server + "/nope")
    assert exc.value.code == 404
