"""Allow `python -m srd`."""

import sys

from srd.cli.main import console_main

sys.exit(console_main())
