"""``python -m xp``."""

from __future__ import annotations

import sys

from xp.cli import main

sys.exit(main())
