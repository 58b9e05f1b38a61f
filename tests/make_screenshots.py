"""Regenerate the README screenshots: screenshots/{main,grid-halfcell,exclusion,curve,export,
flagged,duplicates}.svg and .png (grid-sixel.png is taken in a real xterm with ``term-shot``,
see the README).

Run as a script (``python tests/make_screenshots.py``, what ``make screenshots`` does).
Graphics are "text" (braille map, half-cell thumbnails), what tmux over SSH shows.
It builds the demo album in a temporary folder named ``demo-album``, indexes it, computes
the UMAP map once, then drives the app headless at 120×40 with a fixed seed:
main screen after a run, the thumbnail grid (t), after excluding the core outliers, the
how-many curve, the export dialog, the list filtered to the images the quality check
flags, and the duplicates review.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import tempfile
from pathlib import Path

# The screenshots show a truecolor terminal whatever runs this script: with TERM=xterm and
# no COLORTERM, Textual would dither every picture to 16 colours (as it should on such a
# terminal, but not what the README means to show).
os.environ["COLORTERM"] = "truecolor"

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "screenshots"
SIZE = (120, 40)


async def _shoot(album: Path, dest: Path) -> list[Path]:
    from textual.widgets import Input

    from picksel.tui.app import PickselApp

    app = PickselApp(album, graphics="text", seed=11, compute_umap=False)
    shots: list[Path] = []

    async def settle(pilot) -> None:
        for worker in [w for w in app.workers if w.group in ("open", "select", "export", "quality")]:
            await worker.wait()
        await pilot.pause(0.8)
        app.clear_notifications()
        await pilot.pause()

    def save(name: str) -> None:
        path = OUT / f"{name}.svg"
        app.save_screenshot(filename=path.name, path=str(OUT))
        shots.append(path)

    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.query_one("#count", Input).value = "20"
        app.query_one("#iterations", Input).value = "20"
        await pilot.pause()
        await pilot.press("s")
        await settle(pilot)
        app.thumbs.focus()
        save("main")
        await pilot.press("t")  # the thumbnail grid, half-cell pictures
        grid = app.thumbs.grid
        for _ in range(200):
            if all(grid._get(r) is not None for r in grid.visible_rows()):
                break
            await pilot.pause(0.05)
        await pilot.pause(0.3)
        save("grid-halfcell")
        await pilot.press("t")
        await pilot.press("X")  # exclude the core outliers (the demo's garbage)
        await pilot.press("s")
        await settle(pilot)
        save("exclusion")
        await pilot.press("n")  # how many images? the covering-radius curve
        for worker in [w for w in app.workers if w.group == "curve"]:
            await worker.wait()
        await pilot.pause(0.5)
        save("curve")
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("e")
        await pilot.pause()
        app.screen.query_one("#dest", Input).value = str(dest)
        await pilot.press("enter")
        await pilot.pause(0.5)
        save("export")
        await pilot.press("escape")
        await settle(pilot)
        app.thumbs.focus()
        while app.thumbs.filter != "flagged":
            await pilot.press("v")
        await settle(pilot)
        save("flagged")
        # the duplicates review opens on the current image's group: the largest one
        q = app.curator.quality
        keep, _copies = max(q.groups, key=lambda g: len(g[1]))
        app.current_row = keep
        await pilot.pause()
        await pilot.press("d")
        await pilot.pause(1.0)
        save("duplicates")
    return shots


def _for_cairo(svg: str) -> str:
    """The SVG as cairo can draw it: cairo picks one font per text run with no glyph
    fallback and cannot load Fira Code from the web, so runs are set in the installed
    DejaVu Sans Mono (monospaced, has the radio and block glyphs) and braille runs of the
    map in DejaVu Sans (which has braille); each run keeps its textLength, so cell
    positions do not move. The committed .svg files are left as Textual wrote them."""
    svg = svg.replace("font-family: Fira Code, monospace", "font-family: DejaVu Sans Mono, monospace")
    return re.sub(
        r"<text ([^>]*)>([^<]*[\u2800-\u28ff][^<]*)</text>",
        lambda m: f'<text style="font-family: DejaVu Sans" {m.group(1)}>{m.group(2)}</text>',
        svg,
    )


def main() -> int:
    import cairosvg

    from picksel.demo import build_demo_album
    from picksel.index import build_index
    from picksel.mapping import ensure_map

    OUT.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        album = Path(tmp) / "demo-album"
        build_demo_album(album)
        index, _ = build_index(album)
        ensure_map(index, album / ".picksel")
        # A small export tree of its own, so the folder browser shows the same thing on
        # every machine; its temporary prefix is shown as /data in the pictures.
        lora = Path(tmp) / "lora"
        for name in ("portraits-v1", "set0"):
            (lora / name).mkdir(parents=True)
        shots = asyncio.run(_shoot(album, lora / "set1"))
        prefix = str(Path(tmp).resolve())
    for svg in shots:
        text = svg.read_text(encoding="utf-8").replace(prefix + "/lora", "/data/lora")
        text = text.replace(str(Path(tempfile.gettempdir())), "/tmp")
        svg.write_text(text, encoding="utf-8")
        png = svg.with_suffix(".png")
        cairosvg.svg2png(bytestring=_for_cairo(text).encode("utf-8"), write_to=str(png), output_width=1600)
        print(f"wrote {svg.relative_to(ROOT)} and {png.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "tests"))
    sys.exit(main())
