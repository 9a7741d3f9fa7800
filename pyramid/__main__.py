"""``python -m pyramid`` runs the CLI."""

from .cli import main

main()
