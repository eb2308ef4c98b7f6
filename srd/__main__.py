"""Allow `python -m srd`."""

import sys

from srd.cli import main

sys.exit(main())
