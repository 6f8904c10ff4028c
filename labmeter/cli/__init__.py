"""``labmeter``: one CLI, a subcommand per role (``main.py``). Each module parses the options
of one area, delegates to the roles below and prints; the work lives in those roles."""
