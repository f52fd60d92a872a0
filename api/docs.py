"""Swagger UI (``/docs``) and ReDoc (``/redoc``) served from assets installed with the
project (the PyPI package ``fastapi-offline`` ships the Swagger UI and ReDoc bundles),
so the pages work without internet; FastAPI's defaults load them from a CDN."""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from starlette.responses import FileResponse, HTMLResponse

ASSETS = Path(fastapi_offline.__file__).resolve().parent / "static"
ASSETS_URL = "/docs/assets"
# Fixed routes, not a static mount: every route of the app stays an HTTP route that the
# edge tests walk, and nothing but these four files can be asked for.
ASSET_TYPES = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "redoc.standalone.js": "text/javascript",
    "favicon.png": "image/png",
}
DOCS_URL, REDOC_URL, OAUTH2_REDIRECT_URL = "/docs", "/redoc", "/docs/oauth2-redirect"
#: Paths answered without a token (with ``/openapi.json``).
PUBLIC_PATHS = frozenset(
    {DOCS_URL, REDOC_URL, OAUTH2_REDIRECT_URL} | {f"{ASSETS_URL}/{n}" for n in ASSET_TYPES}
)


def _asset_route(app: FastAPI, name: str, media_type: str) -> None:
    path = ASSETS / name

    async def asset() -> FileResponse:
        return FileResponse(
            path, media_type=media_type, headers={"Cache-Control": "public, max-age=86400"}
        )

    app.add_api_route(f"{ASSETS_URL}/{name}", asset, methods=["GET"], include_in_schema=False)


def install_docs(app: FastAPI) -> None:
    """The assets and the two pages (the app is built with ``docs_url=None``)."""
    openapi_url = app.openapi_url or "/openapi.json"
    for name, media_type in ASSET_TYPES.items():
        _asset_route(app, name, media_type)

    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=OAUTH2_REDIRECT_URL,
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_URL}/favicon.png",
        )

    @app.get(OAUTH2_REDIRECT_URL, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get(REDOC_URL, include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )
