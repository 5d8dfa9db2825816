"""Lean algorithms (mounted at /LeanCLI) and the pure execution rules they share with the audit."""
