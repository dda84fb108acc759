"""``python -m processing``: run one processing instance with settings from the environment."""

import sys

from processing.service import ProcessingService
from processing.settings import ProcessingSettings
from stream.service import main as run_main


def main(argv: list[str] | None = None) -> int:
    """Run until SIGINT/SIGTERM (``argv`` is unused: configuration comes from the env)."""
    del argv
    return run_main(lambda: ProcessingService(ProcessingSettings()))


if __name__ == "__main__":
    sys.exit(main())
