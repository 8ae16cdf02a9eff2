"""``python -m norefusal.training``: the same as ``norefusal train``."""

import sys

from norefusal._cli import main

sys.exit(main(["train", *sys.argv[1:]]))
