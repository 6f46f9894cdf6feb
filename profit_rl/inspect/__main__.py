"""`python -m profit_rl.inspect`, the same as `profit-rl inspect`."""

import sys

from .command import main

sys.exit(main())
