"""``python -m webhooks``: run one webhook dispatcher with settings from the environment."""

import sys

from stream.service import main as run_main
from webhooks.service import WebhookService
from webhooks.settings import WebhookSettings


def main(argv: list[str] | None = None) -> int:
    """Run until SIGINT/SIGTERM (``argv`` is unused: configuration comes from the env)."""
    del argv
    return run_main(lambda: WebhookService(WebhookSettings()))


if __name__ == "__main__":
    sys.exit(main())
