"""Textual user interface for picksel (the repository's tui/ folder)."""
