"""``python -m vireid_zoo.cli``: the ``vireid-zoo`` command."""

import sys

from vireid_zoo.cli import main

sys.exit(main())
