"""``python -m ingest``: run one ingestor with settings from the environment."""

import asyncio
import logging
import sys

from ingest.service import run_service
from ingest.settings import IngestSettings


def main(argv: list[str] | None = None) -> int:
    """Run the ingestor until SIGINT/SIGTERM."""
    del argv
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(run_service(IngestSettings()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
