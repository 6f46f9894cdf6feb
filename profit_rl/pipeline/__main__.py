"""`python -m profit_rl.pipeline`, the same as `profit-rl pipeline`."""

import sys

from .runner import main

sys.exit(main())
