"""Map pane: the numpy rasteriser, the direction search and the MapView widget."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from textual.app import App, ComposeResult

from picksel.tui import braille
from picksel.tui.braille import View
from picksel.tui.viewstate import (
    STATE_CORE,
    STATE_EXCLUDED,
    STATE_NONE,
    STATE_STABLE,
    STATE_VARIABLE,
    row_states,
)
from picksel.tui.widgets.graphics import GraphicsMode, map_mode
from picksel.tui.widgets.scatter import MapView

# ---- rasteriser ---------------------------------------------------------------------


def test_known_points_light_exactly_the_expected_dots() -> None:
    # A 2×1 cell grid is 4×4 dots. Dot (x, y) -> cell x // 2, bit for (row y, column x % 2).
    screen = np.array([[0, 0], [1, 3], [2, 1], [3, 2], [3, 2]], dtype=np.float64)
    states = np.zeros(5, np.uint8)
    r = braille.rasterise(screen, states, 2, 1)
    assert r.bits.tolist() == [[0x01 | 0x80, 0x02 | 0x20]]
    runs = braille.row_runs(r.bits[0], r.winner[0])
    assert runs == [(chr(0x2881) + chr(0x2822), 0)]


def test_all_eight_dots_of_a_cell_make_the_full_braille_block() -> None:
    screen = np.array([[x, y] for x in range(2) for y in range(4)], dtype=np.float64)
    r = braille.rasterise(screen, np.zeros(8, np.uint8), 1, 1)
    assert braille.CHARS[r.bits[0, 0]] == "⣿"


def test_points_off_the_grid_and_nan_rows_are_ignored() -> None:
    screen = np.array([[-1, 0], [0, -1], [4, 0], [0, 4], [np.nan, 1], [1, 1]], dtype=np.float64)
    r = braille.rasterise(screen, np.full(6, STATE_EXCLUDED, np.uint8), 2, 1)
    assert r.bits.tolist() == [[0x10, 0]]
    assert r.winner.tolist() == [[STATE_EXCLUDED, 0]]


@pytest.mark.parametrize(
    ("states", "winner"),
    [
        ([STATE_NONE, STATE_VARIABLE, STATE_EXCLUDED], STATE_EXCLUDED),
        ([STATE_STABLE, STATE_VARIABLE, STATE_NONE], STATE_STABLE),
        ([STATE_CORE, STATE_STABLE], STATE_CORE),
        ([STATE_EXCLUDED, STATE_CORE], STATE_EXCLUDED),
        ([STATE_NONE, STATE_NONE], STATE_NONE),
    ],
)
def test_cell_colour_follows_state_priority(states: list[int], winner: int) -> None:
    screen = np.array([[i % 2, i // 2] for i in range(len(states))], dtype=np.float64)
    r = braille.rasterise(screen, np.array(states, np.uint8), 2, 1)
    assert r.winner[0, 0] == winner
    assert r.winner[0, 1] == 0 and r.bits[0, 1] == 0


def test_row_runs_split_on_state_and_empty_cells() -> None:
    bits = np.array([1, 1, 0, 2, 2, 2], np.uint8)
    winner = np.array([1, 1, 0, 1, 4, 4], np.uint8)
    runs = braille.row_runs(bits, winner)
    assert [(len(t), k) for t, k in runs] == [(2, 1), (1, -1), (1, 1), (2, 4)]
    assert runs[1][0] == " "


def test_normalise_flips_y_and_handles_degenerate_axes() -> None:
    norm = braille.normalise(np.array([[0, 0], [10, 0], [5, 0]], np.float32))
    assert norm[:, 0].tolist() == [0.0, 1.0, 0.5]
    assert norm[:, 1].tolist() == [0.5, 0.5, 0.5]
    norm = braille.normalise(np.array([[0, 0], [1, 2], [np.inf, 1]]))
    assert norm[0, 1] == 1.0 and norm[1, 1] == 0.0  # higher data y is higher on screen
    assert np.isnan(norm[2]).all()


def test_zoom_maps_the_cursor_to_the_centre() -> None:
    norm = np.array([[0.3, 0.7], [0.0, 0.0], [1.0, 1.0]])
    view = View().zoomed(4.0, (0.3, 0.7))
    screen = braille.project(norm, view, 40, 10)
    assert screen[0] == pytest.approx([(80 - 1) / 2, (40 - 1) / 2])
    assert view.zoom == 4.0
    assert View(0.2, 0.2, 2.0).zoomed(0.5, (0.9, 0.9)) == View()  # back to the whole map
    full = braille.project(norm, View(), 40, 10)
    assert full[1].tolist() == [0.0, 0.0] and full[2].tolist() == [79.0, 39.0]


def test_unproject_inverts_project() -> None:
    view = View(0.4, 0.6, 8.0)
    sx, sy = braille.project(np.array([[0.41, 0.58]]), view, 30, 12)[0]
    assert braille.unproject(sx, sy, view, 30, 12) == pytest.approx((0.41, 0.58))


# ---- direction search ---------------------------------------------------------------

LAYOUT = np.array(
    [
        [0, 0],  # 0 origin
        [10, 0],  # 1 straight right, farther
        [5, 4],  # 2 right-ish, closer but off-axis
        [3, 5],  # 3 below-right: outside the "right" cone, inside "down"
        [-8, -1],  # 4 left; for "up" only the half-plane fallback reaches it
    ],
    dtype=np.float64,
)


@pytest.mark.parametrize(
    ("direction", "expected"),
    [("right", 1), ("down", 3), ("left", 4), ("up", 4)],
)
def test_nearest_in_direction_on_a_known_layout(direction: str, expected: int) -> None:
    assert braille.nearest_in_direction(LAYOUT, 0, direction) == expected


def test_nearest_in_direction_prefers_closer_when_equally_on_axis() -> None:
    pts = np.array([[0, 0], [4, 1], [9, 1], [2, 2]], np.float64)
    assert braille.nearest_in_direction(pts, 0, "right") == 3  # on the 45° edge, nearest
    assert braille.nearest_in_direction(pts, 0, "right", off_axis_weight=5.0) == 1


def test_nearest_in_direction_none_at_the_edge_and_ignores_duplicates_and_nan() -> None:
    pts = np.array([[0, 0], [0, 0], [-3, 0], [np.nan, np.nan]], np.float64)
    assert braille.nearest_in_direction(pts, 0, "right") is None
    assert braille.nearest_in_direction(pts, 0, "left") == 2


def test_nearest_point() -> None:
    assert braille.nearest_point(LAYOUT, 9, 1) == 1
    assert braille.nearest_point(np.zeros((0, 2)), 0, 0) is None


# ---- pixel rendering ----------------------------------------------------------------


def _pixels_of(img: np.ndarray, colour: np.ndarray) -> int:
    return int(np.all(img == colour, axis=-1).sum())


@pytest.mark.parametrize("point_size", [1, 2, 3])
def test_render_rgb_selected_marks_are_larger_and_in_their_tier_colour(point_size: int) -> None:
    norm = np.array([[0.2, 0.5], [0.5, 0.5], [0.8, 0.5]])
    for state in (STATE_VARIABLE, STATE_STABLE, STATE_CORE):
        states = np.array([STATE_NONE, state, STATE_NONE], np.uint8)
        img = braille.render_rgb(norm, states, View(), 120, 60, point_size=point_size)
        grey = _pixels_of(img, braille.PALETTE[STATE_NONE])
        tier = _pixels_of(img, braille.PALETTE[state])
        assert grey == 2 * point_size**2  # two quiet dots of point_size x point_size
        assert tier >= 4 * point_size**2 and tier >= 5  # one mark much larger than a dot
        assert img[30, 60].tolist() == braille.PALETTE[state].tolist()  # centred on the point


def test_render_rgb_excluded_is_a_red_cross_drawn_over_everything() -> None:
    norm = np.array([[0.5, 0.5], [0.5, 0.5], [0.2, 0.2]])
    states = np.array([STATE_CORE, STATE_EXCLUDED, STATE_NONE], np.uint8)
    img = braille.render_rgb(norm, states, View(), 100, 50, point_size=2)
    red = np.all(img == braille.PALETTE[STATE_EXCLUDED], axis=-1)
    ys, xs = np.nonzero(red)
    cy, cx = int(np.median(ys)), int(np.median(xs))
    assert red[cy, cx] and red[cy - 2, cx - 2] and red[cy + 2, cx + 2] and red[cy - 2, cx + 2]
    assert not red[cy - 2, cx] and not red[cy, cx + 2]  # a cross, not a disc
    magenta = np.all(img == braille.PALETTE[STATE_CORE], axis=-1)
    assert magenta[cy - 2, cx] and not magenta[cy, cx]  # the core disc shows around the cross
    assert img[0, 0].tolist() == braille.BACKGROUND.tolist()


def test_render_rgb_cursor_is_a_ring_and_crosshair_in_yellow() -> None:
    norm = np.array([[0.5, 0.5], [0.1, 0.1]])
    states = np.array([STATE_NONE, STATE_NONE], np.uint8)
    plain = braille.render_rgb(norm, states, View(), 200, 100, point_size=2)
    img = braille.render_rgb(norm, states, View(), 200, 100, point_size=2, cursor=0)
    yellow = np.all(img == braille.CURSOR_RGB, axis=-1)
    assert _pixels_of(plain, braille.CURSOR_RGB) == 0
    assert yellow.sum() >= 40
    ys, xs = np.nonzero(yellow)
    assert abs(int(np.median(ys)) - 50) <= 2 and abs(int(np.median(xs)) - 100) <= 2


def test_row_runs_selected_cells_are_full_blocks_and_excluded_ones_crosses() -> None:
    bits = np.array([0x01, 0x01, 0x02, 0x04, 0], np.uint8)
    winner = np.array([STATE_NONE, STATE_VARIABLE, STATE_CORE, STATE_EXCLUDED, 0], np.uint8)
    text = "".join(t for t, _k in braille.row_runs(bits, winner))
    assert text == braille.CHARS[0x01] + "⣿⣿×" + " "


# ---- row states ---------------------------------------------------------------------


def test_row_states_tiers_and_exclusion_override() -> None:
    votes = np.array([0, 1, 14, 18, 20, 20], np.int32)
    excluded = np.array([0, 0, 0, 0, 0, 1], bool)
    states = row_states(6, votes, 20, excluded)
    assert states.tolist() == [0, 1, 2, 3, 3, 4]
    assert row_states(3, None, 0, np.array([0, 1, 0], bool)).tolist() == [0, 4, 0]


# ---- the widget ---------------------------------------------------------------------

GRID = np.array([[x, y] for y in range(5) for x in range(5)], np.float32)  # 25 points


class MapApp(App):
    def __init__(
        self, coords: np.ndarray, states: np.ndarray | None = None, graphics: str = "auto"
    ) -> None:
        super().__init__()
        self.coords = coords
        self.states = states
        self.graphics = graphics
        self.moves: list[int] = []

    def compose(self) -> ComposeResult:
        yield MapView(graphics=self.graphics)

    def on_mount(self) -> None:
        m = self.query_one(MapView)
        m.set_coords(self.coords, "map: UMAP")
        if self.states is not None:
            m.set_states(self.states)
        m.focus()

    def on_map_view_cursor_moved(self, event: MapView.CursorMoved) -> None:
        self.moves.append(event.row)


def _row(x: int, y: int) -> int:
    return y * 5 + x  # data y grows upwards, so screen "up" is data +y


async def test_keys_move_cursor_to_neighbour_and_post_messages() -> None:
    app = MapApp(GRID)
    async with app.run_test(size=(40, 12)) as pilot:
        m = app.query_one(MapView)
        assert m.cursor_row == _row(2, 2)  # starts at the point nearest the middle
        await pilot.press("right", "l", "up", "k", "k", "h")
        assert app.moves == [_row(3, 2), _row(4, 2), _row(4, 3), _row(4, 4), _row(3, 4)]
        assert m.cursor_row == _row(3, 4)
        m.move_cursor_to(_row(0, 0))
        await pilot.pause()
        assert m.cursor_row == _row(0, 0) and app.moves[-1] == _row(3, 4)  # no message


async def test_cursor_move_rebuilds_only_the_affected_rows() -> None:
    coords = np.random.default_rng(3).normal(size=(3000, 2)).astype(np.float32)
    app = MapApp(coords)
    async with app.run_test(size=(60, 20)) as pilot:
        m = app.query_one(MapView)
        await pilot.pause()
        built = m.rows_built
        assert built == 18  # one strip per plot row (20 lines: label, 18 plot rows, legend)
        for key in ("right", "down", "left", "up"):
            await pilot.press(key)
            await pilot.pause()
        assert 0 < m.rows_built - built <= 8
        before = m.rows_built
        m.set_states(np.full(3000, STATE_VARIABLE, np.uint8))
        await pilot.pause()
        assert m.rows_built - before == 18


async def test_cursor_cell_is_drawn_and_label_line_shown() -> None:
    states = np.zeros(25, np.uint8)
    states[_row(0, 0)] = STATE_EXCLUDED
    app = MapApp(GRID, states)
    async with app.run_test(size=(40, 12)) as pilot:
        await pilot.pause()
        m = app.query_one(MapView)
        lines = [m.render_line(y).text for y in range(12)]
        assert lines[0].startswith(" map: UMAP") and "braille" in lines[0]
        assert sum(line.count("+") for line in lines[1:-1]) == 1  # the last line is the legend
        styles = [seg.style for y in range(1, 12) for seg in m.render_line(y) if seg.text.strip()]
        assert any(s is not None and s.color is not None and s.color.name == "#ff4040" for s in styles)


async def test_no_color_keeps_states_and_cursor_distinguishable(monkeypatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    states = np.zeros(25, np.uint8)
    states[_row(0, 0)] = STATE_EXCLUDED
    states[_row(4, 4)] = STATE_CORE
    app = MapApp(GRID, states)
    async with app.run_test(size=(40, 12)) as pilot:
        await pilot.pause()
        assert app.no_color
        m = app.query_one(MapView)
        segs = [seg for y in range(1, 11) for seg in m.render_line(y) if seg.text.strip()]
        cursor = [s for s in segs if s.text == "+"]
        assert len(cursor) == 1 and cursor[0].style.reverse
        reversed_points = [s for s in segs if s.text != "+" and s.style and s.style.reverse]
        assert len(reversed_points) == 1  # the excluded one
        assert any(s.style and s.style.underline for s in segs)  # core


def _style_at(strip, col: int, filters) -> object:
    """Style of the cell at ``col`` after the app's line filters (NO_COLOR's among them)."""
    from textual.color import Color

    segments = list(strip)
    for f in filters:
        segments = f.apply(segments, Color(0, 0, 0))
    pos = 0
    for seg in segments:
        if pos <= col < pos + seg.cell_length:
            return seg.style
        pos += seg.cell_length
    raise AssertionError(f"column {col} beyond the strip")


@pytest.mark.parametrize("mode", ["text", "halfcell"])
async def test_no_color_excluded_cell_differs_from_unselected(monkeypatch, mode: str) -> None:
    # Half-cell pixels would be greyed by the NO_COLOR filter (red and grey come out
    # alike), so the map falls back to braille cells with attributes.
    monkeypatch.setenv("NO_COLOR", "1")
    states = np.zeros(25, np.uint8)
    states[_row(0, 0)] = STATE_EXCLUDED
    app = MapApp(GRID, states)
    async with app.run_test(size=(40, 12)) as pilot:
        m = app.query_one(MapView)
        m.set_graphics(mode)
        m.move_cursor_to(_row(4, 4))
        await pilot.pause()
        assert m.effective_graphics is GraphicsMode.TEXT
        assert not m.query(".map-image")
        m._ensure_raster()
        (er, ec), (nr, nc) = m._cell_of(_row(0, 0)), m._cell_of(_row(2, 2))
        excluded = _style_at(m.render_line(er + 1), ec, app._filters)
        unselected = _style_at(m.render_line(nr + 1), nc, app._filters)
        assert excluded != unselected
        assert excluded.reverse and not unselected.reverse


async def test_zoom_keys_centre_on_cursor_and_reset() -> None:
    app = MapApp(GRID)
    async with app.run_test(size=(40, 12)) as pilot:
        m = app.query_one(MapView)
        await pilot.press("right")
        await pilot.press("plus")
        assert m.view.zoom == 2.0
        cx, cy = braille.normalise(GRID)[m.cursor_row]
        assert (m.view.cx, m.view.cy) == pytest.approx((cx, cy))
        await pilot.press("plus", "minus")
        assert m.view.zoom == 2.0
        await pilot.press("0")
        assert m.view == View()


async def test_cursor_moving_off_screen_pans_the_view() -> None:
    app = MapApp(GRID)
    async with app.run_test(size=(40, 12)) as pilot:
        m = app.query_one(MapView)
        for _ in range(3):
            await pilot.press("plus")
        for _ in range(2):
            await pilot.press("right")
        await pilot.pause()
        assert m.cursor_row == _row(4, 2)
        lines = [m.render_line(y).text for y in range(1, 11)]  # plot rows (11 is the legend)
        assert sum(line.count("+") for line in lines) == 1


async def test_click_picks_the_nearest_point() -> None:
    app = MapApp(GRID)
    async with app.run_test(size=(40, 12)) as pilot:
        m = app.query_one(MapView)
        await pilot.click(MapView, offset=(0, 11))  # bottom-left corner of the plot
        assert m.cursor_row == _row(0, 0) and app.moves == [_row(0, 0)]


async def test_g_cycles_graphics_modes_and_mounts_an_image_for_pixel_modes() -> None:
    app = MapApp(GRID)
    async with app.run_test(size=(40, 12)) as pilot:
        m = app.query_one(MapView)
        assert map_mode(GraphicsMode.AUTO) is GraphicsMode.TEXT  # tests run without a tty
        seen = []
        for _ in range(5):
            await pilot.press("g")
            await pilot.pause()
            seen.append((m.graphics, len(m.children)))
        assert seen == [
            (GraphicsMode.SIXEL, 1),
            (GraphicsMode.KITTY, 1),
            (GraphicsMode.HALFCELL, 1),
            (GraphicsMode.TEXT, 0),
            (GraphicsMode.AUTO, 0),
        ]


@pytest.mark.parametrize(("mode", "children"), [("halfcell", 1), ("sixel", 1), ("text", 0)])
async def test_a_mode_given_at_start_is_drawn_from_the_first_frame(mode: str, children: int) -> None:
    """`picksel ALBUM --graphics halfcell` once drew braille: the image child was only
    mounted when the mode changed later, never for the mode the map started with."""
    app = MapApp(GRID, graphics=mode)
    async with app.run_test(size=(40, 12)) as pilot:
        await pilot.pause()
        m = app.query_one(MapView)
        assert m.graphics is GraphicsMode.parse(mode)
        assert len(m.children) == children


def test_graphics_mode_parse_accepts_cli_spellings() -> None:
    assert GraphicsMode.parse("half-cell") is GraphicsMode.HALFCELL
    assert GraphicsMode.parse("tgp") is GraphicsMode.KITTY
    assert GraphicsMode.parse(None) is GraphicsMode.AUTO
    with pytest.raises(ValueError):
        GraphicsMode.parse("ascii-art")


def test_importing_the_app_does_not_probe_the_terminal() -> None:
    import subprocess
    import sys

    code = "import sys, picksel.tui.app; print('textual_image.renderable' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_forced_text_modes_skip_the_probe_and_auto_probes(monkeypatch) -> None:
    import io
    import sys

    import textual_image.widget  # noqa: F401  (imported here, with the real stdout)
    from textual_image import _terminal as term

    from picksel.tui.widgets import graphics

    def no_query(*_a, **_k):
        raise AssertionError("the terminal was queried")

    # setattr first so that monkeypatch undoes whatever the test seeds.
    monkeypatch.setattr(term.probe_terminal, "_result", None, raising=False)
    monkeypatch.delattr(term.probe_terminal, "_result")
    monkeypatch.setattr(term, "capture_until_primary_da", no_query)
    monkeypatch.setattr(term, "get_tiocgwinsz", lambda: (40, 120, 1200, 800))

    class FakeTTY(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "__stdout__", FakeTTY())  # so that a real probe would query
    assert graphics.prepare_terminal("halfcell") is False
    caps = term.probe_terminal()  # cached: never queries
    assert (caps.sixel, caps.tgp, tuple(caps.cell_size)) == (False, False, (10, 20))
    assert graphics.cell_pixel_size() == (10, 20)
    monkeypatch.delattr(term.probe_terminal, "_result")
    assert graphics.prepare_terminal("text") is False
    for mode in ("auto", "sixel", "kitty"):
        assert graphics.prepare_terminal(mode) is True


async def test_selected_cell_is_a_coloured_block_and_a_legend_line_explains_the_marks() -> None:
    from picksel.tui.viewstate import STATE_COLORS

    states = np.zeros(25, np.uint8)
    states[_row(1, 1)] = STATE_CORE
    states[_row(3, 3)] = STATE_EXCLUDED
    app = MapApp(GRID, states)
    async with app.run_test(size=(80, 12)) as pilot:
        await pilot.pause()
        m = app.query_one(MapView)
        segs = [seg for y in range(1, 11) for seg in m.render_line(y) if seg.text.strip()]
        blocks = [s for s in segs if "⣿" in s.text]
        assert len(blocks) == 1 and blocks[0].style.color.name == STATE_COLORS[STATE_CORE]
        crosses = [s for s in segs if "×" in s.text]
        assert len(crosses) == 1 and crosses[0].style.color.name == STATE_COLORS[STATE_EXCLUDED]
        quiet = [s for s in segs if s.text not in ("⣿", "×", "+")]
        assert quiet and all(s.style.color.name != STATE_COLORS[STATE_NONE] for s in quiet)
        legend = m.render_line(11).text
        for word in ("⣿ core", "⣿ stable", "⣿ variable", "× excluded", "not selected", "+ cursor"):
            assert word in legend


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 400),
    seed=st.integers(0, 2**31),
    grid=st.sampled_from([4.0, 30.0, 300.0]),
    weight=st.sampled_from([0.0, 1.0, 5.0]),
)
def test_direction_finder_agrees_with_the_plain_search(n: int, seed: int, grid: float, weight: float) -> None:
    """Same row as the pass over every point, on clumps, exact duplicates (ties), integer
    positions (points on the cone's edge) and NaN rows, for every origin and direction."""
    rng = np.random.default_rng(seed)
    pts = np.floor(rng.uniform(0, grid, (n, 2))) if seed % 2 else rng.normal(grid / 2, grid / 8, (n, 2))
    pts[rng.random(n) < 0.1] = pts[0]
    pts[rng.random(n) < 0.05] = np.nan
    finder = braille.DirectionFinder(pts)
    for origin in rng.choice(n, min(n, 25), replace=False):
        for direction in ("left", "right", "up", "down"):
            expected = braille.nearest_in_direction(pts, int(origin), direction, off_axis_weight=weight)
            assert finder.nearest_in_direction(int(origin), direction, off_axis_weight=weight) == expected
