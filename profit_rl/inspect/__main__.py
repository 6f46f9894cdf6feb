"""`python -m profit_rl.inspect`, the same as `profit-rl inspect`."""

import sys

from .cli import main

sys.exit(main())
