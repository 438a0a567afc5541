"""``python -m reprozoo`` is the ``reprozoo`` command."""

import sys

from reprozoo.cli import main

sys.exit(main())
