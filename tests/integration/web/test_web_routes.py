"""The web app's routes: the page for every path outside /api/, versioned assets, and the API's JSON kept."""

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient


@pytest.fixture
def web(client: TestClient) -> TestClient:
    """The shared app: these routes read no data."""
    return client


@pytest.mark.parametrize("path", ["/", "/sign-in", "/chats/123", "/chats/a/runs/b", "/workflows/new", "/anything/else"])
def test_every_path_outside_the_api_answers_the_app(web: TestClient, path: str) -> None:
    response = web.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache"
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert '<main id="main"' in response.text


def test_the_page_names_only_assets_of_this_origin_and_they_are_served_immutable(web: TestClient) -> None:
    page = web.get("/").text
    assert "http://" not in page and "https://" not in page and "//" not in page.replace("<!doctype", "")
    assets = re.findall(r'(?:href|src)="(/assets/[^"]+)"', page)
    assert {Path(asset).suffix for asset in assets} >= {".css", ".js", ".svg"}
    for asset in assets:
        response = web.get(asset)
        assert response.status_code == 200, asset
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    script = web.get(next(a for a in assets if a.endswith("main.js")))
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"


def test_an_asset_of_another_version_is_served_but_not_kept(web: TestClient) -> None:
    response = web.get("/assets/000000000000/app.css")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-cache"


@pytest.mark.parametrize("path", ["/assets/x/nope.js", "/assets/x/%2e%2e/index.html", "/assets/x/%2e%2e/%2e%2e/db.py"])
def test_a_missing_asset_is_a_json_404(web: TestClient, path: str) -> None:
    response = web.get(path)
    assert response.status_code == 404
    assert response.json()["error"] == "Not Found"


@pytest.mark.parametrize("method", ["GET", "POST", "PATCH", "DELETE"])
@pytest.mark.parametrize("path", ["/api", "/api/", "/api/nope", "/api/chats/x/y/z"])
def test_unknown_api_paths_keep_their_json_404(web: TestClient, method: str, path: str) -> None:
    response = web.request(method, path)
    assert response.status_code == 404
    assert response.json() == {"error": "Not Found", "message": "No such resource."}


def test_a_write_to_an_app_path_is_a_json_405(web: TestClient) -> None:
    response = web.post("/chats", json={})
    assert response.status_code == 405
    assert response.json()["error"] == "Method Not Allowed"


def test_the_app_is_not_in_the_api_description(web: TestClient) -> None:
    paths = web.get("/api/openapi.json").json()["paths"]
    assert all(path.startswith("/api/") for path in paths)
