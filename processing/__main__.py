"""``python -m processing``: run one processing instance with settings from the environment."""

import asyncio
import logging
import sys

from processing.service import run_service
from processing.settings import ProcessingSettings


def main(argv: list[str] | None = None) -> int:
    """Run processing until SIGINT/SIGTERM."""
    del argv
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(run_service(ProcessingSettings()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
