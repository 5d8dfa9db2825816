"""Audit trail of Lean runs: database, ingestion, consistency check, manifest, parity."""
