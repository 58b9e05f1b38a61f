"""The curator sidebar: method, count, iterations, run, progress, legend and actions.

It holds no album logic. Field edits are validated here as they are typed (a bad value
shows a message under the field, and every label says what would happen now), but a value
is only announced with :class:`CuratorSidebar.SettingChanged`, and so saved, when it is
committed: enter, leaving the field, or running the action that uses it. Typing ``5``,
backspace, ``q`` therefore never saves a threshold of 5 %. Buttons run the app's actions,
so a button, its key and its command-palette entry always do the same thing.
"""

from __future__ import annotations

import contextlib

import numpy as np
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import Button, Input, Label, ProgressBar, RadioButton, RadioSet, Static

from picksel.errors import UsageError
from picksel.tui.controller import MAX_ITERATIONS, Counts, parse_int
from picksel.tui.viewstate import (
    STATE_COLORS,
    STATE_CORE,
    STATE_EXCLUDED,
    STATE_STABLE,
    STATE_VARIABLE,
)

# The map's colours for the same states (named ANSI magenta and red look alike).
TIER_STYLES = {
    "core": f"bold {STATE_COLORS[STATE_CORE]}",
    "stable": f"bold {STATE_COLORS[STATE_STABLE]}",
    "variable": f"bold {STATE_COLORS[STATE_VARIABLE]}",
    "excluded": f"bold {STATE_COLORS[STATE_EXCLUDED]}",
}
_BLOCKS = " ▁▂▃▄▅▆▇█"


def vote_chart(freqs: np.ndarray, *, bins: int = 10, height: int = 3, bar: int = 2) -> Text:
    """A small histogram of vote frequencies (0–100 %) drawn with eighth blocks:
    ``height`` lines of bars and an axis line, each exactly ``bins × bar`` cells wide, so
    it never wraps in a sidebar of that width (the scale is in :func:`chart_title`).

    Bars are coloured by the tier their band falls in (green < 70 ≤ cyan < 90 ≤ magenta),
    so the chart doubles as a picture of how stable the selection is.
    """
    edges = np.linspace(0.0, 100.0, bins + 1)
    counts = _bin_counts(freqs, bins)
    top = int(counts.max())
    text = Text()
    levels = (counts * height * 8 / top).round().astype(int) if top else np.zeros(bins, int)
    for line in range(height - 1, -1, -1):
        for b in range(bins):
            fill = int(np.clip(levels[b] - line * 8, 0, 8))
            lo = edges[b]
            tier = STATE_CORE if lo >= 90 else STATE_STABLE if lo >= 70 else STATE_VARIABLE
            style = STATE_COLORS[tier]
            text.append(_BLOCKS[fill] * bar, style=style)
        text.append("\n")
    width = bins * bar
    half = width // 2
    axis = "0%".ljust(half) + "50%".ljust(width - half - 4) + "100%"
    text.append(axis[:width], style="dim")
    return text


def chart_title(voted: int, iterations: int, tallest: int) -> Text:
    """What the chart shows and its scale, in lines short enough for a narrow sidebar."""
    return Text(
        f"{voted:,} voted in {iterations} runs\nbars: images, max {tallest:,}\n",
        style="dim",
    )


def _bin_counts(freqs: np.ndarray, bins: int) -> np.ndarray:
    """Images per band of ``100 / bins`` % (100 % goes in the last band)."""
    if not len(freqs):
        return np.zeros(bins, dtype=np.int64)
    edges = np.linspace(0.0, 100.0, bins + 1)
    idx = np.clip(np.searchsorted(edges, np.asarray(freqs), side="right") - 1, 0, bins - 1)
    return np.bincount(idx, minlength=bins)


def tallest_bar(freqs: np.ndarray, bins: int = 10) -> int:
    return int(_bin_counts(freqs, bins).max())


class MethodSet(RadioSet, inherit_bindings=False):
    """FPS / K-Means choice. Left/right switch; up/down leave it (they move between the
    sidebar's controls), so keyboard users never get trapped in the radio set."""

    BINDINGS = [
        Binding("right,l", "next_button", "Next option", show=False),
        Binding("left,h", "previous_button", "Previous option", show=False),
        Binding("enter,space", "toggle_button", "Choose", show=False),
    ]


class MethodButton(RadioButton):
    """A radio button whose dot is hollow when off.

    Textual draws the same dot for on and off and tells them apart by colour only, which
    is lost under NO_COLOR and on monochrome terminals: the chosen method must be
    readable from the glyph alone.
    """

    @property
    def BUTTON_INNER(self) -> str:  # noqa: N802 - overrides Textual's class constant
        return "●" if self.value else "○"


class FieldInput(Input):
    """A number field of the sidebar. An Input swallows the letter keys, so without its
    own shown bindings the footer would go blank inside it: it says what enter and
    escape do here."""

    BINDINGS = [
        Binding("enter", "submit", "run", show=True),
        Binding("escape", "back", "back", show=True),
    ]

    async def action_back(self) -> None:
        await self.app.run_action("cancel")  # cancels a run, else back to the list


class ThresholdInput(FieldInput):
    """The threshold field: enter runs the bulk exclusion, not a selection."""

    BINDINGS = [Binding("enter", "submit", "exclude ≥ T", show=True)]


class CuratorSidebar(VerticalScroll, can_focus=False):
    """Right-hand pane of the main screen."""

    BINDINGS = [
        Binding("down", "focus_step(1)", "Next control", show=False),
        Binding("up", "focus_step(-1)", "Previous control", show=False),
    ]

    class SettingChanged(Message):
        """A curator setting was committed (enter, focus left the field) with a valid value."""

        def __init__(self, key: str, value: object) -> None:
            super().__init__()
            self.key = key
            self.value = value

    BUTTON_ACTIONS = {
        "run": "select",
        "exclude-threshold": "exclude_threshold",
        "clear-exclusions": "clear_exclusions",
        "clear-selection": "clear_selection",
        "favorites": "favorites",
        "export": "export",
        "inventory": "inventory",
    }

    def compose(self) -> ComposeResult:
        with MethodSet(id="method", compact=True):
            yield MethodButton("Diversity (FPS)", id="method-fps", value=True)
            yield MethodButton("Blocks (K-Means)", id="method-kmeans")
        with Horizontal(classes="field"):
            yield Label("Count", classes="field-label")
            yield FieldInput("20", id="count", compact=True)
        yield Static("", id="count-error", classes="field-error")
        with Horizontal(classes="field"):
            yield Label("Iterations", classes="field-label")
            yield FieldInput("20", id="iterations", compact=True)
        yield Static("", id="iterations-error", classes="field-error")
        yield Button("Select  s", id="run", compact=True, variant="primary")
        yield ProgressBar(id="progress", total=None, show_eta=False, show_percentage=False)
        yield Static("", id="progress-label")
        yield Static("", id="status")
        yield Static("", id="legend")
        yield Static("", id="quality")  # under the legend: a short terminal keeps the legend
        yield Static("", id="chart")
        with Horizontal(classes="field"):
            yield Label("Exclude ≥", classes="field-label")
            yield ThresholdInput("90", id="threshold", compact=True)
            yield Label("%", classes="field-unit")
        yield Static("", id="threshold-error", classes="field-error")
        yield Button("Exclude ≥ 90%  X", id="exclude-threshold", compact=True)
        yield Button("Clear exclusions  C", id="clear-exclusions", compact=True)
        yield Button("Clear selection  c", id="clear-selection", compact=True)
        yield Button("Set favorites  f", id="favorites", compact=True)
        yield Button("Export…  e", id="export", compact=True)
        yield Button("Inventory…  i", id="inventory", compact=True)

    def on_mount(self) -> None:
        self.border_title = "Curator"
        self.query_one("#progress", ProgressBar).display = False
        self.show_note("")
        for name in ("count", "iterations", "threshold"):
            self._error(name, "")

    # ------------------------------------------------------------------ values

    available: int | None = None
    """Images a run can pick from (album minus exclusions); None before an album opens."""

    def set_settings(self, method: str, count: int, iterations: int, threshold: int) -> None:
        """Fill the fields from saved settings without announcing them as edits."""
        with self.prevent(Input.Changed, RadioSet.Changed):
            self.query_one("#count", Input).value = str(count)
            self.query_one("#iterations", Input).value = str(iterations)
            self.query_one("#threshold", Input).value = str(threshold)
            self.set_method(method)
        self._threshold_label(threshold)
        for name in ("count", "iterations", "threshold"):
            self._error(name, "")
        self._count_note()

    def set_available(self, available: int) -> None:
        """How many images a run can use now; the note under Count follows it."""
        if available != self.available:
            self.available = available
            self._count_note()

    def set_method(self, method: str) -> None:
        with self.prevent(RadioSet.Changed):
            self.query_one(f"#method-{method}", RadioButton).value = True

    def _error(self, name: str, text: str) -> None:
        """Show (or hide) the message under a field."""
        error = self.query_one(f"#{name}-error", Static)
        error.update(text)
        error.display = bool(text)

    def _threshold_label(self, threshold: int | None) -> None:
        """The button says what X does now: with an invalid field, nothing yet."""
        shown = f"{threshold}%" if threshold is not None else "?"
        self.query_one("#exclude-threshold", Button).label = f"Exclude ≥ {shown}  X"

    def _count_note(self) -> None:
        """Under Count: the error, or what a count above the album will really pick."""
        with contextlib.suppress(UsageError):
            self._checked("count", self.query_one("#count", Input).value)

    def validated(self, name: str) -> int:
        """The field's value, or UsageError (also shown under the field)."""
        return self._checked(name, self.query_one(f"#{name}", Input).value)

    def commit(self, name: str) -> int:
        """The field's value as it will be used and saved: a count above the images
        available becomes that number (the field shows it, the note says why)."""
        value = self.validated(name)
        if name == "count" and self.available is not None and 0 < self.available < value:
            value = self.available
            with self.prevent(Input.Changed):
                self.query_one("#count", Input).value = str(value)
        return value

    def _checked(self, name: str, text: str) -> int:
        """Parse ``text`` for field ``name``; the message under the field follows the outcome."""
        try:
            value = _parse(name, text)
        except UsageError as e:
            self._error(name, str(e))
            if name == "threshold":
                self._threshold_label(None)
            raise
        note = ""
        if name == "count" and self.available is not None and value > self.available:
            note = f"only {self.available:,} images available"
        elif name == "threshold":
            self._threshold_label(value)
        self._error(name, note)
        return value

    @on(Input.Changed)
    def _field_changed(self, event: Input.Changed) -> None:
        """Typing only checks: the message and the labels follow, nothing is saved."""
        name = event.input.id or ""
        if name not in FIELDS:
            return
        event.stop()
        # the field as it is now: a late Changed (the initial value, posted while the
        # screen started) must not put an old number back on the labels
        with contextlib.suppress(UsageError):
            self._checked(name, event.input.value)

    @on(Input.Blurred)
    def _field_left(self, event: Input.Blurred) -> None:
        """Leaving a field commits a valid value; an invalid one stays unsaved (and shown)."""
        name = event.input.id or ""
        if name not in FIELDS:
            return
        event.stop()
        try:
            value = self.commit(name)
        except UsageError:
            return
        self.post_message(self.SettingChanged(name, value))

    @on(Input.Submitted)
    async def _field_submitted(self, event: Input.Submitted) -> None:
        """Enter in a field runs what the field is for."""
        event.stop()
        if event.input.id == "threshold":
            await self.app.run_action("exclude_threshold")
        else:
            await self.app.run_action("select")

    @on(RadioSet.Changed, "#method")
    def _method_changed(self, event: RadioSet.Changed) -> None:
        event.stop()
        method = "kmeans" if event.pressed.id == "method-kmeans" else "fps"
        self.post_message(self.SettingChanged("method", method))

    @on(Button.Pressed)
    async def _button(self, event: Button.Pressed) -> None:
        action = self.BUTTON_ACTIONS.get(event.button.id or "")
        if action:
            event.stop()
            await self.app.run_action(action)

    # ------------------------------------------------------------------ display

    def show_counts(self, counts: Counts, freqs: np.ndarray, iterations: int) -> None:
        self.query_one("#status", Static).update(counts.status())
        legend = Text()
        mono = self.app.no_color  # greyed-out magenta/red would be unreadable: use weight
        mono_styles = {"core": "bold underline", "stable": "bold", "variable": "", "excluded": "bold reverse"}
        for i, (tier, value) in enumerate(
            (
                ("core", counts.core),
                ("stable", counts.stable),
                ("variable", counts.variable),
                ("excluded", counts.excluded),
            )
        ):
            if i:
                legend.append("\n")
            style = mono_styles[tier] if mono else TIER_STYLES[tier]
            legend.append("● ", style=style)
            legend.append(f"{tier:<9}", style=style)
            limits = {"core": "≥90%", "stable": "≥70%", "variable": "<70%", "excluded": ""}[tier]
            legend.append(f"{value:>6,} {limits}")
        self.query_one("#legend", Static).update(legend)
        chart = self.query_one("#chart", Static)
        if len(freqs):
            title = chart_title(len(freqs), iterations, tallest_bar(freqs))
            chart.update(title + vote_chart(freqs))
            chart.display = True
        else:
            chart.display = False

    def show_quality(self, text: str) -> None:
        """The quality check's line: "23 flagged · 9 duplicate groups" or its progress."""
        line = self.query_one("#quality", Static)
        width = self.scrollable_content_region.width
        if width and len(text) > width:
            text = text.replace(" · ", "\n")  # one fact a line, never a word cut off
        line.update(Text(text))
        line.display = bool(text)

    def set_running(self, running: bool) -> None:
        bar = self.query_one("#progress", ProgressBar)
        button = self.query_one("#run", Button)
        if running:
            bar.update(total=None, progress=0)
            bar.display = True
            button.label = "Cancel  esc"
            button.variant = "warning"
            self.show_note("Starting…")
        else:
            bar.display = False
            button.label = "Select  s"
            button.variant = "primary"

    def show_progress(self, done: int, total: int, text: str = "") -> None:
        self.query_one("#progress", ProgressBar).update(total=max(total, 1), progress=done)
        text = text or f"Iteration {done}/{total}"
        label = self.query_one("#progress-label", Static)
        if label.display and "\n" not in text and len(text) <= label.size.width:
            # Same one line: redraw the label without laying out the screen again, which
            # cost ~20 ms of the UI thread per report, time the selection worker waited.
            label.update(text, layout=False)
        else:
            self.show_note(text)

    def show_note(self, text: str) -> None:
        """One line under the progress bar (last run's outcome); none takes no row, which
        an 80×24 sidebar needs for the legend."""
        label = self.query_one("#progress-label", Static)
        label.update(text)
        label.display = bool(text)

    # ------------------------------------------------------------------ keyboard

    def _controls(self) -> list:
        return [w for w in self.query("Input, Button, RadioSet") if w.focusable]

    def action_focus_step(self, step: int) -> None:
        controls = self._controls()
        if not controls:
            return
        focused = self.screen.focused
        try:
            i = controls.index(focused)
        except ValueError:
            i = -1 if step > 0 else 0
        target = controls[(i + step) % len(controls)]
        target.focus()
        self.scroll_to_widget(target)

    def focus_first(self) -> None:
        last = getattr(self, "_last_focused", None)
        controls = self._controls()
        (last if last in controls else controls[0]).focus()

    def on_descendant_focus(self, event) -> None:
        self._last_focused = event.widget


FIELDS = ("count", "iterations", "threshold")


def _parse(name: str, text: str) -> int:
    if name == "count":
        return parse_int(text, "Count", 1)
    if name == "iterations":
        return parse_int(text, "Iterations", 1, MAX_ITERATIONS)
    return parse_int(text, "Threshold", 1, 100)
