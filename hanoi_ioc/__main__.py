"""``python -m hanoi_ioc`` is the ``hanoi-ioc`` command."""

import sys

from hanoi_ioc.cli import main

if __name__ == "__main__":
    sys.exit(main())
