"""The evaluators' *Rapporto di utilizzo*: built once as data, rendered to five formats."""
