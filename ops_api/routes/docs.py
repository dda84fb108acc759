"""API documentation from local files: Swagger UI at ``/docs``, ReDoc at ``/redoc``.

The JavaScript and CSS come from the ``fastapi-offline`` package (Swagger UI 5 and ReDoc 2,
installed with the API), served under ``/docs/assets``; nothing is loaded from the internet,
so the pages work in an operations centre without one. ``API_DOCS_ENABLED=false`` (the
default in prod) removes these routes and ``/openapi.json``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Final

from fastapi import APIRouter
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse

__all__ = ["ASSETS_DIR", "ASSETS_URL", "router"]

ASSETS_DIR: Final = Path(str(resources.files("fastapi_offline") / "static"))
ASSETS_URL: Final = "/docs/assets"
_OPENAPI: Final = "/openapi.json"
_TITLE: Final = "Hanoi IOC — ops API"
# Both pages start with a small inline script (FastAPI's templates); everything else is ours.
_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' "
        "'unsafe-inline'; img-src 'self' data:; worker-src 'self' blob:; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

router = APIRouter(include_in_schema=False)


@router.get("/docs")
async def swagger_ui() -> HTMLResponse:
    """Swagger UI."""
    page = get_swagger_ui_html(
        openapi_url=_OPENAPI,
        title=f"{_TITLE} — Swagger UI",
        swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS_URL}/favicon.png",
    )
    page.headers.update(_HEADERS)
    return page


@router.get("/redoc")
async def redoc() -> HTMLResponse:
    """ReDoc."""
    page = get_redoc_html(
        openapi_url=_OPENAPI,
        title=f"{_TITLE} — ReDoc",
        redoc_js_url=f"{ASSETS_URL}/redoc.standalone.js",
        redoc_favicon_url=f"{ASSETS_URL}/favicon.png",
        with_google_fonts=False,
    )
    page.headers.update(_HEADERS)
    return page
