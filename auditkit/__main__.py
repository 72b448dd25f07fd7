"""``python -m auditkit`` runs the command line."""

from auditkit.cli import main

main()
