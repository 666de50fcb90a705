"""`python -m monitor`: the monitor's command line (see monitor/cli.py)."""

from monitor.cli import main

main()
