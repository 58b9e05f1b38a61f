"""Graphics modes and the textual-image widget class for each.

textual-image probes the terminal (sixel, the kitty graphics protocol, cell size; up
to 2 s) when ``textual_image.renderable`` is first imported, and that must happen
before the Textual app takes over the terminal. This module therefore imports
textual-image lazily: :func:`prepare_terminal` runs before ``App.run()`` and either
probes (auto, sixel, kitty) or, for a forced half-cell/text mode that needs no answer
from the terminal, records "no pixel graphics" so the import never waits. Tests (not
a tty) never probe either way.
"""

from __future__ import annotations

from enum import StrEnum

from textual.widget import Widget


class GraphicsMode(StrEnum):
    """User-selectable rendering of the map and image previews (``g`` cycles them)."""

    AUTO = "auto"
    SIXEL = "sixel"
    KITTY = "kitty"
    HALFCELL = "halfcell"
    TEXT = "text"

    @classmethod
    def parse(cls, value: str | GraphicsMode | None) -> GraphicsMode:
        """Accept the CLI spellings ("half-cell", "halfcell", "tgp" for kitty, "braille"
        or "unicode" for text); ValueError for anything else."""
        if isinstance(value, GraphicsMode):
            return value
        key = (value or "auto").strip().lower().replace("-", "").replace("_", "")
        aliases = {"tgp": "kitty", "braille": "text", "unicode": "text", "none": "text"}
        key = aliases.get(key, key)
        for mode in cls:
            if mode.value == key:
                return mode
        raise ValueError(f"unknown graphics mode {value!r} (auto, sixel, kitty, half-cell, text)")

    def next(self) -> GraphicsMode:
        """The next mode in the cycle auto → sixel → kitty → half-cell → text → auto."""
        modes = list(GraphicsMode)
        return modes[(modes.index(self) + 1) % len(modes)]

    @property
    def label(self) -> str:
        return "half-cell" if self is GraphicsMode.HALFCELL else self.value


def detected_mode() -> GraphicsMode:
    """What textual-image found when it probed the terminal: SIXEL, KITTY, HALFCELL (a
    tty without graphics) or TEXT (not a tty: tests, pipes)."""
    import textual_image.renderable as _renderable

    auto = _renderable.Image
    if auto is _renderable.SixelImage:
        return GraphicsMode.SIXEL
    if auto is _renderable.TGPImage:
        return GraphicsMode.KITTY
    if auto is _renderable.HalfcellImage:
        return GraphicsMode.HALFCELL
    return GraphicsMode.TEXT


def resolve(mode: GraphicsMode | str) -> GraphicsMode:
    """Concrete mode for ``mode`` (AUTO becomes :func:`detected_mode`)."""
    mode = GraphicsMode.parse(mode)
    return detected_mode() if mode is GraphicsMode.AUTO else mode


def map_mode(mode: GraphicsMode | str) -> GraphicsMode:
    """How the map pane draws in ``mode``: AUTO only uses pixels when the terminal
    answered for sixel or kitty graphics; otherwise the braille text map is sharper
    than half-cell blocks, so AUTO falls back to TEXT."""
    mode = GraphicsMode.parse(mode)
    if mode is GraphicsMode.AUTO:
        found = detected_mode()
        return found if found in (GraphicsMode.SIXEL, GraphicsMode.KITTY) else GraphicsMode.TEXT
    return mode


def image_class(mode: GraphicsMode | str) -> type[Widget]:
    """textual-image widget class rendering images in ``mode`` (AUTO: the detected one;
    TEXT: textual-image's unicode approximation). Sixel and kitty images are picksel's
    subclasses that keep a half-cell picture behind dialogs (:mod:`.pixel_images`)."""
    import textual_image.widget as _tiw

    sixel, kitty = _tiw.SixelImage, _tiw.TGPImage
    try:  # textual-image internals it builds on; if they moved, pictures just vanish behind
        from picksel.tui.widgets import pixel_images

        sixel, kitty = pixel_images.SixelImage, pixel_images.TGPImage
    except (ImportError, AttributeError, TypeError):  # pragma: no cover
        pass
    return {
        GraphicsMode.SIXEL: sixel,
        GraphicsMode.KITTY: kitty,
        GraphicsMode.HALFCELL: _tiw.HalfcellImage,
        GraphicsMode.TEXT: _tiw.UnicodeImage,
    }[resolve(mode)]


def cell_pixel_size() -> tuple[int, int]:
    """(width, height) in pixels of one terminal cell as textual-image measured it
    (a 10×20 guess when the terminal did not say)."""
    try:
        from textual_image._terminal import get_cell_size

        size = get_cell_size()
        w, h = int(size.width), int(size.height)
        if w > 0 and h > 0:
            return w, h
    except Exception:  # pragma: no cover - private API moved; fall back to a guess
        pass
    return 10, 20


PROBING_MODES = frozenset({GraphicsMode.AUTO, GraphicsMode.SIXEL, GraphicsMode.KITTY})


def prepare_terminal(mode: GraphicsMode | str) -> bool:
    """Call before ``App.run()``. Auto/sixel/kitty probe the terminal now (the answer
    and the cell size are needed); a forced half-cell or text mode skips the probe by
    seeding textual-image's cached result with "no sixel, no kitty" and the ioctl cell
    size. Returns True when the terminal was probed."""
    mode = GraphicsMode.parse(mode)
    if mode not in PROBING_MODES:
        _seed_no_graphics()
    import textual_image.renderable  # noqa: F401  (probes unless seeded above)
    import textual_image.widget  # noqa: F401  (caches the cell size, same reason)

    return mode in PROBING_MODES


def _seed_no_graphics() -> None:
    """Pre-fill textual-image's probe cache (private API: if it moved, the import
    simply probes as before)."""
    try:
        from textual_image import _terminal as term

        probe = term.probe_terminal
        if hasattr(probe, "_result"):
            return
        width = height = 0
        try:
            rows, cols, px_w, px_h = term.get_tiocgwinsz()
            width, height = int(px_w / cols), int(px_h / rows)
        except Exception:  # noqa: BLE001 - not a tty or no pixel size: use the default
            pass
        if width <= 0 or height <= 0:
            width, height = 10, 20
        caps = term.TerminalCapabilities(term.CellSize(width, height), sixel=False, tgp=False)
        probe._result = caps  # type: ignore[attr-defined]
    except (ImportError, AttributeError, TypeError):  # pragma: no cover - API changed
        pass


def draws_word(mode: GraphicsMode) -> str:
    """How the header and the messages name what a pane draws with."""
    return "braille" if mode is GraphicsMode.TEXT else mode.label


def unreported(mode: GraphicsMode | str) -> bool:
    """A forced pixel protocol the terminal did not say it speaks (tmux passes neither by
    default): the map and the previews may stay blank in it."""
    mode = GraphicsMode.parse(mode)
    return mode in (GraphicsMode.SIXEL, GraphicsMode.KITTY) and detected_mode() is not mode


def describe(mode: GraphicsMode | str, map_draws: GraphicsMode, *, in_tmux: bool) -> tuple[str, bool]:
    """The message after ``g``: what the chosen mode does in this terminal, and whether it
    is a warning (a forced protocol the terminal did not report)."""
    mode = GraphicsMode.parse(mode)
    found = detected_mode()
    reported = {GraphicsMode.SIXEL: "sixel", GraphicsMode.KITTY: "kitty graphics"}.get(
        found, "no pixel graphics"
    )
    if unreported(mode):
        where = " (tmux passes none by default)" if in_tmux else ""
        return (
            f"Graphics {mode.label}: this terminal did not report it{where}; "
            "map and previews may stay blank (g: next mode)",
            True,
        )
    images = resolve(mode).label  # previews: textual-image's text mode is blocks, not braille
    if mode is GraphicsMode.AUTO:
        return (f"Graphics auto: terminal reports {reported}; map draws {draws_word(map_draws)}, "
                f"previews {images}", False)
    return f"Graphics {mode.label}: map draws {draws_word(map_draws)}, previews {images}", False
