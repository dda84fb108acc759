"""``python -m ops_api``: run the ops API with uvicorn (settings from ``API_*``)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from typing import Final

from pydantic import ValidationError

from ops_api.app import serve
from ops_api.settings import ApiSettings
from stream.service import describe_invalid

__all__ = ["main"]

logger = logging.getLogger("ops_api")

_EXIT_CONFIG: Final = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ops_api",
        description="Hanoi IOC ops API: REST, WebSocket live feed and the console at /.",
    )
    parser.add_argument("--host", help="interface to bind (API_HOST, default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="TCP port (API_PORT, default 8000)")
    parser.add_argument(
        "--log-level",
        default=os.environ.get("LOG_LEVEL", "info").lower(),
        choices=["debug", "info", "warning", "error"],
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the API until interrupted; 2 when the configuration is refused."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    try:
        settings = ApiSettings(**overrides)
    except ValidationError as exc:
        logger.error("configuration error / lỗi cấu hình: %s", describe_invalid(exc))
        return _EXIT_CONFIG
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(settings, log_level=args.log_level))
    return 0


if __name__ == "__main__":
    sys.exit(main())
