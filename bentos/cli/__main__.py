"""`python -m bentos.cli` is the `modelguard` command."""

from bentos.cli.app import app

app(prog_name="modelguard")
