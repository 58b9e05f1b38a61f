"""``picksel check``: quality flags and duplicate groups, as a table or one JSON object;
and the shared step ``exclude --flagged`` / ``--duplicates`` use to find their images."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from picksel.cli.common import (
    AlbumCmd,
    editing,
    emit_json,
    err,
    load_or_build_index,
    open_state,
    positive_int,
    progress_bar,
    say,
)
from picksel.errors import UsageError
from picksel.quality import FLAGS, Thresholds

if TYPE_CHECKING:
    from picksel.qualitylookup import QualityLookup

CHECK_HELP = """\
Measures every indexed image once (cached in .picksel/quality.npz by size and mtime)
and prints the images flagged dark, bright, blank, blurry, noisy, small, grayscale or
odd-aspect, then the groups of exact and near duplicates (re-encoded, resized,
mirrored, brightened, slightly cropped), each naming the image to keep: a pinned one,
else the most pixels, else the sharpest, else the first path. When the index holds CLIP
vectors (index --encoder clip:..., or a PhotoMapAI index), images whose vectors reach
cosine near_cosine (0.95) are near duplicates too; builtin vectors are never compared.

Thresholds given here (--min-side, --set NAME=VALUE) are kept in the album's state for
the next check; --reset-thresholds goes back to the defaults. See `--list-thresholds`.
"""


def add_parsers(sub: argparse._SubParsersAction, album_cmd: AlbumCmd) -> None:
    sp = album_cmd("check", "flag low-quality images and find duplicates", CHECK_HELP)
    sp.add_argument("--json", action="store_true", help="print one JSON object")
    sp.add_argument("--min-side", type=positive_int("min-side", 1, 100_000), metavar="N",
                    help="flag images whose shorter side is under N pixels (default 256)")
    sp.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="override a threshold (repeatable; kept in the state)")
    sp.add_argument("--reset-thresholds", action="store_true",
                    help="forget every threshold override")
    sp.add_argument("--list-thresholds", action="store_true",
                    help="print the thresholds in force and exit")
    sp.set_defaults(handler=cmd_check)


def _parse_set(items: list[str], t: Thresholds) -> None:
    names = t.to_dict()
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or name not in names:
            raise UsageError(
                f"picksel check: --set wants NAME=VALUE with NAME one of {', '.join(names)}; got {item!r}"
            )
        problems: list[str] = []
        try:
            number = float(value)
        except ValueError:
            number = float("nan")
        fixed = Thresholds.from_dict({name: int(number) if name == "min_side" and number.is_integer()
                                      else number}, problems)
        if problems:
            raise UsageError(f"picksel check: {name} must be a number ≥ 0"
                             f"{' (whole)' if name == 'min_side' else ''}, not {value!r}")
        setattr(t, name, getattr(fixed, name))


def thresholds_for(args: argparse.Namespace, sdir: Path, state) -> Thresholds:
    """The thresholds in force: state's overrides, then this command's; a change is saved
    to state (not journaled: thresholds are settings, not marks)."""
    from picksel.state import quality_overrides

    t = Thresholds() if getattr(args, "reset_thresholds", False) else Thresholds.from_dict(state.quality)
    _parse_set(getattr(args, "set", []) or [], t)
    if getattr(args, "min_side", None) is not None:
        t.min_side = args.min_side
    wanted = quality_overrides(t)
    if wanted != state.quality:
        with editing(sdir, None) as fresh:
            fresh.quality = wanted
    return t


def run_check(album: Path, state_dir: Path | None, sdir: Path, thresholds: Thresholds, pins: set[str]):
    from picksel.check import check_album
    from picksel.embeddingdups import semantic_vectors

    index = load_or_build_index(album, state_dir)
    with progress_bar("Checking") as progress:
        result = check_album(album, index.paths, sdir, thresholds, pins, progress=progress,
                             vectors=semantic_vectors(index))
    for rel, reason in result.unreadable[:5]:
        err(f"could not measure {rel} ({reason})")
    if result.cache_problem:  # the result is right: a warning, exit 0
        err(f"warning: {result.cache_problem}")
    return result


def cmd_check(args: argparse.Namespace) -> int:
    album, sdir, state = open_state(args)
    t = thresholds_for(args, sdir, state)
    if args.list_thresholds:
        for name, value in t.to_dict().items():
            say(f"{name} = {value}")
        return 0
    result = run_check(album, args.state_dir, sdir, t, set(state.pins))
    if args.json:
        emit_json({
            "images": len(result.paths),
            "flags": {p: result.flags[p] for p in sorted(result.flags)},
            "duplicates": [
                {"keep": result.paths[g.keep], "copies": [result.paths[i] for i in g.copies],
                 "kind": g.kind}
                for g in result.groups
            ],
            "thresholds": t.to_dict(),
        })
        return 0
    counts = result.counts()
    say(f"{len(result.paths)} images checked ({result.measured} measured now, "
        f"{len(result.paths) - result.measured} from the cache)")
    for flag in FLAGS:
        say(f"  {flag:<11}{counts[flag]:>7}")
    n_copies = sum(len(g.copies) for g in result.groups)
    say(f"  {'duplicates':<11}{len(result.groups):>7} group(s), {n_copies} copies")
    if result.flags:
        say("")
        say("flagged:")
        for rel in sorted(result.flags):
            say(f"  {', '.join(result.flags[rel]):<28} {rel}")
    if result.groups:
        say("")
        say("duplicate groups (keep ← copies):")
        for g in result.groups:
            copies = ", ".join(result.paths[i] for i in g.copies)
            say(f"  [{g.kind}] {result.paths[g.keep]} ← {copies}")
    return 0


def quality_lookup(album: Path, sdir: Path, state, index, *, warn: bool = True) -> QualityLookup:
    """Flags and duplicate groups for the outputs that list images (inventory, JSON),
    from the cached measures only; says once on stderr how many images have none yet
    (``warn=False``: the caller says it with ``unchecked_line`` once its output is made)."""
    from picksel.embeddingdups import semantic_vectors
    from picksel.qualitylookup import cached_quality, unchecked_line

    paths = list(index.paths) if index is not None else []
    lookup = cached_quality(album, paths, sdir, Thresholds.from_dict(state.quality),
                            set(state.pins), semantic_vectors(index))
    if warn and lookup.unchecked:
        err(unchecked_line(len(lookup.unchecked), album))
    return lookup
