"""Unit tests of the screens' and sidebar's pure parts (no running app needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from picksel.errors import UsageError
from picksel.export import ExportItem
from picksel.tui.app import PickselApp
from picksel.tui.controller import parse_int
from picksel.tui.screens.export import plan_summary
from picksel.tui.screens.help import GROUPS
from picksel.tui.widgets.sidebar import TIER_STYLES, chart_title, tallest_bar, vote_chart


def test_parse_int_accepts_and_refuses_with_reasons() -> None:
    assert parse_int(" 1,500 ", "Count", 1) == 1500
    with pytest.raises(UsageError, match="not a whole number"):
        parse_int("2.5", "Count", 1)
    with pytest.raises(UsageError, match="at most 100"):
        parse_int("101", "Iterations", 1, 100)
    with pytest.raises(UsageError, match="enter a number"):
        parse_int("", "Count", 1)


def test_vote_chart_puts_bars_in_their_tier_band() -> None:
    freqs = np.array([5.0, 5.0, 95.0, 100.0, 75.0])
    chart = vote_chart(freqs, height=2)
    lines = chart.plain.splitlines()
    # every line is exactly the chart's width, so a narrow sidebar never wraps it
    assert len(lines) == 3 and {len(line) for line in lines} == {20}
    bars = lines[1]
    assert bars[0:2] == "██" and bars[18:20] == "██" and bars[14:16].strip()
    assert bars[4:14].strip() == ""
    assert lines[2] == "0%        50%   100%"  # the axis says what its numbers are
    assert tallest_bar(freqs) == 2  # the scale, shown in the chart's title
    title = chart_title(5, 20, tallest_bar(freqs)).plain
    assert "max 2" in title and max(len(line) for line in title.splitlines()) <= 23
    assert all(not line.strip() for line in vote_chart(np.zeros(0)).plain.splitlines()[:3])


def test_legend_uses_the_map_colours_and_core_is_not_red() -> None:
    from rich.style import Style

    from picksel.tui.viewstate import STATE_CORE, STATE_EXCLUDED, STATE_STABLE, STATE_VARIABLE
    from picksel.tui.widgets.scatter import _COLOR_STYLES

    for tier, state in (("core", STATE_CORE), ("stable", STATE_STABLE),
                        ("variable", STATE_VARIABLE), ("excluded", STATE_EXCLUDED)):
        legend = Style.parse(TIER_STYLES[tier]).color
        assert legend.is_system_defined is False  # truecolour, not the theme's ANSI slot
        assert legend == _COLOR_STYLES[state].color, tier
    r, g, b = Style.parse(TIER_STYLES["core"]).color.get_truecolor()
    assert b > 200 and r > 200 and g < 120  # magenta: red and blue, little green
    r, g, b = Style.parse(TIER_STYLES["excluded"]).color.get_truecolor()
    assert r > 200 and b < 100  # red: no blue
    chart = vote_chart(np.array([95.0, 75.0, 5.0]))
    colours = {str(span.style) for span in chart.spans}
    assert "#ff5fff" in colours and "magenta" not in colours


def test_plan_summary_counts_images_captions_and_refusals(tmp_path: Path) -> None:
    items = [
        ExportItem("a/01.png", tmp_path / "a/01.png", "01.png", [(tmp_path / "a/01.txt", "01.txt")]),
        ExportItem("b/01.png", tmp_path / "b/01.png", "b_01.png", []),
        ExportItem("c.png", tmp_path / "c.png", "c.png", [], None, True),
        ExportItem("link.png", tmp_path / "link.png", "", [], "symlink refused"),
    ]
    text, n = plan_summary(items, tmp_path / "new")
    assert n == 2
    plain = text.plain
    assert f"2 images, 1 captions → {tmp_path / 'new'}" in plain
    assert "1 renamed" in plain and "1 already there" in plain
    assert "link.png: symlink refused" in plain and "will be created" in plain


def test_help_lists_every_app_binding() -> None:
    documented = " ".join(key for _group, keys in GROUPS for key, _what in keys)
    for binding in PickselApp.BINDINGS:
        key = binding.key_display or binding.key
        key = {"question_mark": "?", "shift+tab": "shift+tab"}.get(key, key)
        assert key.split(",")[0] in documented, binding
