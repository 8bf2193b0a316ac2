"""Swagger UI (``/api/v1/docs``) and ReDoc (``/api/v1/redoc``) served from files installed with
the ``fastapi-offline`` package (its Swagger UI bundle, stylesheet and ReDoc standalone
script), so the pages work without network access and load nothing from a CDN.

ReDoc's script shows a logo fetched from Redocly's CDN in its sidebar; the copy served here
points that image at the local favicon instead, so the page makes no outside request at all."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, Response
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html

ASSETS = Path(fastapi_offline.__file__).parent / "static"
ASSETS_URL = "/docs-assets"
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


@lru_cache(maxsize=1)
def redoc_script() -> bytes:
    return (ASSETS / "redoc.standalone.js").read_bytes().replace(
        REDOC_LOGO.encode(), f"{ASSETS_URL}/favicon.png".encode())


def router(openapi_url: str, prefix: str) -> APIRouter:
    r = APIRouter(include_in_schema=False)

    @r.get(f"{ASSETS_URL}/redoc.standalone.js")
    def redoc_js():
        return Response(redoc_script(), media_type="text/javascript",
                        headers={"Cache-Control": "public, max-age=86400"})

    @r.get(f"{prefix}/docs")
    def swagger_ui():
        return get_swagger_ui_html(
            openapi_url=openapi_url, title="Prognos service API · Swagger UI",
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_URL}/favicon.png",
            # no call to the public validator service, no external fetch at all
            swagger_ui_parameters={"validatorUrl": None, "persistAuthorization": True},
        )

    @r.get(f"{prefix}/redoc")
    def redoc():
        return get_redoc_html(
            openapi_url=openapi_url, title="Prognos service API · ReDoc",
            redoc_js_url=f"{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{ASSETS_URL}/favicon.png", with_google_fonts=False,
        )

    return r
