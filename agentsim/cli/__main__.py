"""``python -m agentsim.cli``."""

import sys

from . import main

sys.exit(main())
