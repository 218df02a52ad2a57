"""`python -m avm`: the container's command (see README.md, "Container contract")."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
