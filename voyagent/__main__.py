"""``python -m voyagent`` is the ``voyagent`` command."""

import sys

from voyagent.cli import main

sys.exit(main())
