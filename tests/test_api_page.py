"""The planner page: served at /, self-contained (no CDN, no external resource), its script and
stylesheet served, and the OpenAPI document lists every route."""

from __future__ import annotations

import re

import pytest



def test_page_and_assets_are_served_without_external_resources(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    refs = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert refs and all(r.startswith("/static/") for r in refs)
    for ref in refs:
        r = client.get(ref)
        text = r.text.replace("http://www.w3.org/2000/svg", "")  # the SVG namespace, not a fetch
        assert r.status_code == 200 and "http://" not in text and "https://" not in text
    js = client.get("/static/app.js").text
    assert "localStorage" in js and "/api/v1" in js and "innerHTML" not in js


def test_openapi_lists_every_route_and_bearer_auth(client):
    spec = client.get("/api/v1/openapi.json").json()
    paths = set(spec["paths"])
    for p in ("/api/v1/service-orders", "/api/v1/service-orders/{order_id}", "/api/v1/assets",
              "/api/v1/assets/{asset_id}", "/api/v1/assets/{asset_id}/telemetry", "/api/v1/uptime",
              "/api/v1/mttr", "/api/v1/sla", "/api/v1/ingest/stats", "/health"):
        assert p in paths
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert set(spec["paths"]["/api/v1/service-orders/{order_id}"]) == {"get", "patch"}
