"""`python -m satbridge` == `satbridge`."""

import sys

from satbridge.cli import main

sys.exit(main())
