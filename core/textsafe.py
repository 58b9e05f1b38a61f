"""Names made safe to show: file names are data, and data must never drive the terminal.

A file may be named ``\\x1b]0;pwned\\x07.jpg`` (retitles the terminal) or ``\\x1b[2J.png``
(clears it), and a name whose bytes are not UTF-8 reaches Python as lone surrogates
(``os.fsdecode``), which a strict UTF-8 stdout refuses to encode. Everything picksel
prints for a person (CLI text output, error lines, the TUI) goes through ``printable``;
JSON output goes through ``json_text`` instead, because JSON is data for programs.

Conventions (the README documents them):

* text: a control character (C0, DEL, C1) is shown as ``\\xNN``; a byte of a file name that
  is not UTF-8 is shown as ``\\xNN`` too (like ``bytes.decode(errors="backslashreplace")``);
  any other lone surrogate as ``\\udNNN``; bidirectional overrides (which reorder what the
  eye reads) as ``\\uNNNN``. Everything else, accents and CJK included, is left as is.
* JSON: valid UTF-8, controls escaped by JSON's own rules (``\\u001b``, ``\\u009b``), and a
  non-UTF-8 byte as the escape ``\\udcNN``: Python's ``json.loads`` gives back the
  surrogate-escaped string, and ``os.fsencode`` of it gives back the original bytes.
"""

from __future__ import annotations

import json
import re
from typing import Any

# C0 controls, DEL, C1 controls, every surrogate, and the bidi embedding/override/isolate
# characters (U+202A-U+202E, U+2066-U+2069).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069]")
# What ``json.dumps(..., ensure_ascii=False)`` leaves raw but a terminal or a strict UTF-8
# encoder must not see: DEL, C1 controls, surrogates, bidi controls (C0 it escapes itself).
_JSON_UNSAFE = re.compile("[\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if 0xDC80 <= code <= 0xDCFF:  # os.fsdecode's stand-in for the raw byte code - 0xDC00
        return f"\\x{code - 0xDC00:02x}"
    return f"\\u{code:04x}"


def printable(text: object) -> str:
    """``text`` (a str, or a Path or anything with ``str()``) with every character that
    could act on a terminal, or could not be encoded, replaced by a visible escape."""
    return _UNSAFE.sub(_escape, str(text))


def printable_lines(text: str) -> str:
    """``printable`` for multi-line text (a caption file): line breaks stay line breaks."""
    return "\n".join(printable(line) for line in text.split("\n"))


def is_printable(text: str) -> bool:
    """True when ``printable(text) == text``."""
    return _UNSAFE.search(text) is None


def json_text(payload: Any, *, indent: int | None = 1) -> str:
    """``payload`` as JSON text that encodes to valid UTF-8 and holds no raw control.

    Readable non-ASCII characters stay as they are (``ensure_ascii=False``); the few that
    ``_JSON_UNSAFE`` names become ``\\uNNNN`` escapes, which are valid inside any JSON
    string (the only place such characters can occur in JSON text).
    """
    text = json.dumps(payload, ensure_ascii=False, indent=indent)
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
