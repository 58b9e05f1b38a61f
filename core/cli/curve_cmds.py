"""``curve``: how many images? The covering radius of one FPS run for k = 1..K and its knee."""

from __future__ import annotations

import argparse
import sys

from picksel.cli.common import (
    AlbumCmd,
    emit_json,
    load_or_build_index,
    open_state,
    positive_int,
    progress_bar,
    say,
)
from picksel.curve import DEFAULT_MAX, CoverCurve
from picksel.errors import PickselError

TABLE_ROWS = 24
"""Rows of the printed table: k on a roughly logarithmic scale, knee and count included."""


def add_parsers(sub: argparse._SubParsersAction, album_cmd: AlbumCmd) -> None:
    sp = album_cmd(
        "curve",
        "how many images? the covering radius for 1..K images and a suggested count",
        "Run FPS once to K images and print, for every k, the covering radius: the\n"
        "largest distance (1 - cosine similarity) from any image of the album to the\n"
        "nearest of the first k picks. The suggested count is the knee of that curve,\n"
        "where more images stop covering the album much better. Exclusions and pins\n"
        "apply as in `select`. The curve is cached in .picksel/curve.npz until the index,\n"
        "the exclusions or the pins change.",
    )
    sp.add_argument("--max", type=positive_int("max", 2), default=DEFAULT_MAX, metavar="K",
                    help=f"largest k (default {DEFAULT_MAX:,}; capped by the images available)")
    sp.add_argument("--json", action="store_true",
                    help='print {"k": [...], "radius": [...], "knee": N, "count": current}')
    sp.set_defaults(handler=cmd_curve)


def table_ks(curve: CoverCurve, marks: tuple[int, ...]) -> list[int]:
    """About TABLE_ROWS values of k, denser where the curve changes fast (small k)."""
    import numpy as np

    top = int(curve.k[-1])
    ks = np.unique(np.geomspace(1, top, TABLE_ROWS).round().astype(int))
    extra = [m for m in marks if 1 <= m <= top]
    return sorted({int(k) for k in ks} | set(extra))


def cmd_curve(args: argparse.Namespace) -> int:
    import numpy as np

    from picksel.curve import ensure_curve

    album, sdir, state = open_state(args)
    index = load_or_build_index(album, args.state_dir)
    if len(index) == 0:
        raise PickselError(f"{album} has no images that could be indexed; nothing to measure")
    rows = index.row_of()
    excluded = np.zeros(len(index), dtype=bool)
    for rel in state.excluded:
        if rel in rows:
            excluded[rows[rel]] = True
    pinned = np.array(sorted(rows[p] for p in state.pins if p in rows), dtype=np.int64)
    with progress_bar("Covering radius") as progress:
        curve = ensure_curve(
            sdir, index.fingerprint(), index.embeddings, args.max,
            excluded=excluded, pinned=pinned, progress=progress,
        )
    knee = curve.knee
    count = int(state.settings.count)
    if args.json:
        emit_json({
            "k": [int(k) for k in curve.k],
            "radius": [round(float(r), 6) for r in curve.radius],
            "knee": knee,
            "count": count,
        })
        return 0
    say("     k  radius")
    radius = dict(zip(curve.k.tolist(), curve.radius.tolist(), strict=True))
    for k in table_ks(curve, (knee, count)):
        note = "  <- knee (suggested)" if k == knee else ""
        note += "  <- current count" if k == count else ""
        say(f"{k:>6}  {radius[k]:.4f}{note}")
    say(f"suggested count: {knee}")
    if count > int(curve.k[-1]):
        say(f"(current count {count:,} is beyond K = {int(curve.k[-1]):,})", file=sys.stderr)
    return 0
