"""`python -m chalicelib COMMAND`: see `chalicelib.cli`."""

import sys

from chalicelib.cli import main

sys.exit(main())
