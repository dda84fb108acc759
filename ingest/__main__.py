"""``python -m ingest``: run one ingestor with settings from the environment."""

import sys

from ingest.service import IngestService
from ingest.settings import IngestSettings
from stream.service import main as run_main


def main(argv: list[str] | None = None) -> int:
    """Run until SIGINT/SIGTERM (``argv`` is unused: configuration comes from the env)."""
    del argv
    return run_main(lambda: IngestService(IngestSettings()))


if __name__ == "__main__":
    sys.exit(main())
