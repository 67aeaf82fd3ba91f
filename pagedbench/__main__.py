"""`python -m pagedbench ...`: the same command line as the `pagedbench` console script."""

import sys

from pagedbench.cli import main

if __name__ == "__main__":
    sys.exit(main())
