"""`python -m splitleak.tools.cli`: the same as the `splitleak` command."""

import sys

from splitleak.tools.cli import main

sys.exit(main())
