"""``python -m lunalm`` is the same as ``luna``."""

import sys

from lunalm.cli import main

sys.exit(main())
