"""``python -m norefusal.training.multilingual``: train the multilingual refusal model."""

from ._train import main

raise SystemExit(main())
