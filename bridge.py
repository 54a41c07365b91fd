#!/usr/bin/env python3
"""Thin entry: `python3 bridge.py ...` is `satbridge ...`."""

import sys

from satbridge.cli import main

if __name__ == "__main__":
    sys.exit(main())
