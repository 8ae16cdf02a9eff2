"""``python -m norefusal.training``: the same as ``norefusal train``."""

import sys

from . import main

sys.exit(main(sys.argv[1:]))
