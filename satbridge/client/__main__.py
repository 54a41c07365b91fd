"""`python -m satbridge.client` == `satctl`."""

import sys

from satbridge.client.cli import main

sys.exit(main())
