"""picksel: pick a diverse or representative subset of an image album.

This package (the repository's ``core/`` folder) is the engine. It never imports
Textual, so the headless CLI and scripts stay light; the Textual app lives in
``picksel.tui`` (the repository's ``tui/`` folder).
"""

__version__ = "0.1.0"
