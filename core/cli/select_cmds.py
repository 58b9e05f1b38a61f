"""``select``: the Monte Carlo selection, saved so that export, inventory and the TUI act on it."""

from __future__ import annotations

import argparse
import sys

from picksel.cli.common import (
    AlbumCmd,
    editing,
    emit_json,
    load_or_build_index,
    open_state,
    positive_int,
    progress_bar,
    say,
)
from picksel.errors import PickselError
from picksel.textsafe import printable


def add_parsers(sub: argparse._SubParsersAction, album_cmd: AlbumCmd) -> None:
    sp = album_cmd(
        "select",
        "run the Monte Carlo selection and save it",
        "Run FPS (diversity: outliers and rare concepts) or K-Means (blocks: keeps the\n"
        "album's proportions) ITERATIONS times from different random starts, and keep the\n"
        "COUNT images picked most often (the consensus). The result is saved so that\n"
        "`export`, `inventory` and the TUI act on it. Images with frequency >= 90% are\n"
        "core, >= 70% stable, below that variable.",
    )
    sp.add_argument("--method", choices=("fps", "kmeans"), default=None, help="default: last used, else fps")
    sp.add_argument("--count", type=positive_int("count", 1), default=None, metavar="N",
                    help="how many images to select (default: last used, else 20)")
    sp.add_argument("--iterations", type=positive_int("iterations", 1, 100), default=None, metavar="K",
                    help="Monte Carlo runs, 1-100 (default: last used, else 20)")
    sp.add_argument("--seed", type=positive_int("seed", 0), default=None, metavar="S",
                    help="make the run reproducible (the seed used is always reported)")
    sp.add_argument("--exclude-threshold", type=positive_int("exclude threshold", 1, 100), default=None,
                    metavar="T", help="afterwards, exclude every analysed image with frequency >= T%%")
    sp.add_argument("--json", action="store_true", help="print the result as JSON")
    sp.set_defaults(handler=cmd_select)


def cmd_select(args: argparse.Namespace) -> int:
    import numpy as np

    from picksel.select import run_selection
    from picksel.state import SavedSelection, exclude_at_or_above

    album, sdir, state = open_state(args)
    index = load_or_build_index(album, args.state_dir)
    if len(index) == 0:
        raise PickselError(f"{album} has no images that could be indexed; nothing to select from")
    settings = state.settings
    method = args.method or settings.method
    count = args.count if args.count is not None else settings.count
    iterations = args.iterations if args.iterations is not None else settings.iterations

    rows = index.row_of()
    excluded = np.zeros(len(index), dtype=bool)
    for rel in state.excluded:
        if rel in rows:
            excluded[rows[rel]] = True
    pinned = np.array(sorted(rows[p] for p in state.pins if p in rows), dtype=np.int64)
    available = len(index) - int(excluded.sum())
    if 0 < available < count:
        # asking for more than there is selects everything; say so, and remember the
        # number that really applies, not one that will never be reachable
        print(f"only {available:,} images available (asked for {count:,}): selecting all of them",
              file=sys.stderr)
        count = available

    with progress_bar(f"Selecting ({method})") as progress:
        result = run_selection(
            index.embeddings,
            method=method,
            count=count,
            iterations=iterations,
            seed=args.seed,
            excluded=excluded,
            pinned=pinned if len(pinned) else None,
            progress=progress,
        )
    saved = SavedSelection.from_result(result, index.paths, index.fingerprint())
    # Only now lock and re-read: exclusions, pins and favorites made elsewhere during the
    # run are kept (the run itself used the exclusions of its start).
    newly = 0
    with editing(sdir, "select") as state:
        state.selection = saved
        settings = state.settings
        settings.method, settings.count, settings.iterations = method, count, iterations
        settings.seed = args.seed
        if args.exclude_threshold is not None:
            settings.threshold = args.exclude_threshold
            newly = exclude_at_or_above(state, args.exclude_threshold)

    freq = result.frequency
    tiers = result.tiers
    selected = [
        {
            "path": index.paths[r],
            "index": int(r),
            "votes": int(result.votes[r]),
            "frequency": round(float(freq[r]), 1),
            "tier": str(tiers[r]),
        }
        for r in result.consensus
    ]
    if args.json:
        from picksel.cli.check_cmds import quality_lookup

        quality = quality_lookup(album, sdir, state, index)
        for s in selected:
            s.update(quality.json_fields(s["path"]))
        payload = {
            "method": result.method,
            "count": result.count,
            "iterations": result.iterations,
            "seed": result.seed,
            "selected": selected,
            "excluded": sorted(state.excluded),
        }
        if args.exclude_threshold is not None:
            payload["newly_excluded"] = newly
        emit_json(payload)
        return 0
    tier_counts = {t: sum(1 for s in selected if s["tier"] == t) for t in ("core", "stable", "variable")}
    shown = [printable(s["path"]) for s in selected]
    width = max(map(len, shown), default=4)
    for name, s in zip(shown, selected, strict=True):
        say(f"{name:<{width}}  {s['votes']:>3}/{iterations}  {s['frequency']:5.1f}%  {s['tier']}")
    say(
        f"{len(selected)} of {count} selected by {method} over {iterations} iterations "
        f"(seed {result.seed}): {tier_counts['core']} core, {tier_counts['stable']} stable, "
        f"{tier_counts['variable']} variable; {int(excluded.sum())} excluded",
        file=sys.stderr,
    )
    if args.exclude_threshold is not None:
        say(
            f"excluded {newly} new image(s) with frequency >= {args.exclude_threshold}% "
            f"({len(state.excluded)} excluded in all)",
            file=sys.stderr,
        )
    return 0
