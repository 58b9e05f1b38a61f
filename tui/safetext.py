"""Rich text with file names made harmless (see ``picksel.textsafe``).

Dialogs build multi-line ``Text`` with styled parts and file names inside; ``safe_text``
escapes the names' control characters after the fact, keeping every style and every
line break, so one call where the text is shown covers everything built before it.
"""

from __future__ import annotations

from rich.text import Text

from picksel.textsafe import is_printable, printable_lines


def safe_text(text: Text | str) -> Text:
    """``text`` with controls and undecodable bytes escaped; plain strings are not markup."""
    if isinstance(text, str):
        return Text(printable_lines(text))
    if is_printable(text.plain.replace("\n", "")):
        return text
    cuts = sorted({0, len(text.plain), *(o for s in text.spans for o in (s.start, s.end))})
    out = Text(style=text.style, justify=text.justify, no_wrap=text.no_wrap, end=text.end)
    for piece in text.divide(cuts[1:-1]):
        safe = Text(printable_lines(piece.plain), style=piece.style)
        for span in piece.spans:  # a piece lies wholly inside or outside each span
            safe.stylize(span.style, 0, len(safe))
        out.append_text(safe)
    return out
