"""Subcommands of the ``rasteret`` command line (``rasteret.cli`` wires them up)."""
