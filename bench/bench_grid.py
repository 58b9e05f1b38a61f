"""Thumbnail grid benchmark (headless, inside ``App.run_test``): page scroll at 100,000 images.

Measured as wall time and as the UI thread's own CPU time (``time.thread_time``, which
other processes on a busy machine do not inflate), next to the list's page scroll in the
same run. A page scroll is ``pagedown`` plus everything the compositor asks the pane for
(``render_lines`` over the whole widget: cells, borders, and in sixel mode the pictures
put into the lines), with the on-disk thumbnail cache warm. Making the drawn
thumbnails (half-cell segments or sixel data) runs in a thread worker and is reported
separately, as the time until every visible cell has its picture. tracemalloc's traced
memory across 50 further page scrolls (after the drawn-thumbnail LRU is full) shows
memory stays flat. Both half-cell and sixel (forced; the headless terminal reports no
graphics, so textual-image's 10×20-pixel cell guess sizes the pictures) are measured.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from bench.bench_tui import _make_album, _ms, _verdict, memory_over_scrolls  # noqa: E402

PAGE_TARGET_MS = 50.0
MEMORY_TARGET_KIB = 1024.0


async def _grid_bench(n: int, album: Path, state_dir: Path, size: tuple[int, int], mode: str,
                      pages: int, view: str = "grid") -> dict:
    from textual.app import App, ComposeResult
    from textual.geometry import Region
    from tui_helpers import fake_view_model

    from picksel.thumbs import load_thumbnail
    from picksel.tui.widgets.thumbgrid import HALFCELL_SOURCE
    from picksel.tui.widgets.thumblist import ThumbList

    files = sorted(p.relative_to(album).as_posix() for p in album.rglob("*.jpg"))
    for rel in files:  # warm the on-disk cache
        for side in (HALFCELL_SOURCE, 256):
            load_thumbnail(album, rel, state_dir, side)
    vm = fake_view_model(n, root=album)
    vm.paths = [files[i % len(files)] for i in range(n)]
    vm.state_dir = state_dir

    class GridApp(App):
        def compose(self) -> ComposeResult:
            yield ThumbList(graphics=mode)

    app = GridApp()
    result: dict = {}
    async with app.run_test(size=size) as pilot:
        t = app.query_one(ThumbList)
        t.set_model(vm)
        t.view = view
        t.focus()
        await pilot.pause(0.3)
        whole = Region(0, 0, t.outer_size.width, t.outer_size.height)

        cpu: list[float] = []

        def scroll_and_render() -> float:
            start, start_cpu = time.perf_counter(), time.thread_time()
            t.action_page(1)
            t.render_lines(whole)
            cpu.append(time.thread_time() - start_cpu)
            return time.perf_counter() - start

        def missing() -> bool:
            if view == "list":
                return bool(t._pending)
            return any(t.grid._get(r) is None for r in t.grid.visible_rows())

        async def settle(limit: float = 10.0) -> float:
            start = time.perf_counter()
            while missing() and time.perf_counter() - start < limit:
                await asyncio.sleep(0.002)
            await pilot.pause()
            return time.perf_counter() - start

        samples, latency = [], []
        for _ in range(pages):
            samples.append(scroll_and_render())
            latency.append(await settle())
        result["scroll"] = _ms(samples)
        result["cpu"] = _ms(cpu)
        result["thumbs ready"] = _ms(latency)
        result["cells"] = len(t.grid.visible_rows())
        result["sixel lines"] = sum(
            1 for strip in t.render_lines(whole) if any(s.text.startswith("\x1bP") for s in strip)
        )

        # fill the drawn-thumbnail LRU, then 50 more pages
        result["memory"] = await memory_over_scrolls(scroll_and_render, settle, fill=pages)
        result["position"] = t.cursor
    return result


def main(quick: bool = False) -> None:
    n = 10_000 if quick else 100_000
    size = (60, 50)  # as the list bench: 3 columns of cells
    pages = 10 if quick else 20
    with tempfile.TemporaryDirectory() as tmp:
        album = _make_album(Path(tmp) / "album")
        ref = asyncio.run(_grid_bench(n, album, Path(tmp) / "state", size, "halfcell", pages, "list"))
        list_med = ref["scroll"][0]
        print(f"list page scroll, same run, same measure (reference): {list_med:.2f} ms "
              f"(worst {ref['scroll'][1]:.2f}), UI-thread CPU {ref['cpu'][0]:.2f} ms")
        for mode in ("halfcell", "sixel"):
            res = asyncio.run(_grid_bench(n, album, Path(tmp) / "state", size, mode, pages))
            med, worst = res["scroll"]
            print(
                f"grid ({mode}) page scroll N={n:,} {size[0]}x{size[1]}, {res['cells']} cells: "
                f"{med:.2f} ms (worst {worst:.2f}), UI-thread CPU {res['cpu'][0]:.2f} ms "
                f"(worst {res['cpu'][1]:.2f}), {med / list_med:.2f}x the list  "
                f"(target <= {PAGE_TARGET_MS:.0f} ms) {_verdict(worst <= PAGE_TARGET_MS)}"
            )
            med, worst = res["thumbs ready"]
            print(f"grid ({mode}) visible thumbnails ready after a page scroll (worker thread, disk "
                  f"cache warm): {med:.0f} ms (worst {worst:.0f})"
                  + (f"; {res['sixel lines']} lines carry sixel pictures" if mode == "sixel" else ""))
            before, after = res["memory"]
            growth = after - before
            print(
                f"grid ({mode}) memory over 50 page scrolls (tracemalloc, LRU full): {before:.0f} KiB -> "
                f"{after:.0f} KiB ({growth:+.0f} KiB)  (target growth <= {MEMORY_TARGET_KIB:.0f} KiB) "
                f"{_verdict(growth <= MEMORY_TARGET_KIB)}"
            )


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
