"""Maintainer tools: regenerate files the project takes from Lean (each checked by a test)."""
