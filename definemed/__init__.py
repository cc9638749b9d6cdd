"""Shared code of the DeFineMed workflow: every script in scripts/ is a thin entry point over it."""
