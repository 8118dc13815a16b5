#!/usr/bin/env python
"""Run the huey consumer: ``huey_consumer.py main.huey -w 4``."""
import sys

from consumer.cli import main

if __name__ == '__main__':
    sys.exit(main())
