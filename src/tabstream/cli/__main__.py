"""``python -m tabstream.cli``."""

from tabstream.cli import main

main()
