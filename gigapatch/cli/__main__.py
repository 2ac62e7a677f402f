"""``python -m gigapatch.cli``: the ``gigapatch`` command."""

import sys

from gigapatch.cli import main

sys.exit(main())
