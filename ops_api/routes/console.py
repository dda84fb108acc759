"""The operations console: a static page (``ops_api/static``) served at ``/``."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from ops_api.deps import StateDep

__all__ = ["STATIC_DIR", "router"]

STATIC_DIR: Final = Path(__file__).resolve().parent.parent / "static"
# Everything is local: no CDN, no inline script, only our own origin (and its WebSocket).
_SECURITY_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; "
        "style-src 'self'; script-src 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

_CLEARED_VISIBLE: Final = "__CLEARED_VISIBLE_S__"
"""Placeholder in index.html: how long the console keeps showing an alert after it cleared."""

router = APIRouter(include_in_schema=False)


@router.get("/")
async def console(state: StateDep) -> HTMLResponse:
    """The console page, with the settings it reads from its ``<meta>`` tags."""
    page = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    seconds = f"{state.settings.console_cleared_visible_s:g}"
    return HTMLResponse(page.replace(_CLEARED_VISIBLE, seconds), headers=_SECURITY_HEADERS)
