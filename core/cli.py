"""The ``picksel`` command line: the TUI launcher and the headless curator.

Every sub-command is a thin layer over the engine modules, so a script gets the same
results as the TUI. User errors end with one line on stderr and exit code 2 (bad
arguments) or 1 (failures); only bugs produce a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

from picksel.errors import Cancelled, IndexMissing, PickselError, ProgressFn, UsageError

PROG = "picksel"

DESCRIPTION = """\
Pick a diverse (FPS) or representative (K-Means) subset of an image album.

Open the curator on an album:          picksel ALBUM
Try it on a built-in demo album:       picksel demo
Headless, for scripts:
  picksel index ALBUM                  build/update the embedding index
  picksel select ALBUM --count 150     run the Monte Carlo selection, save it
  picksel exclude ALBUM PATH...        keep images out of selections and exports
  picksel export ALBUM DEST            copy the selection (+ captions) to DEST
  picksel inventory ALBUM FILE         write the tab-separated inventory
  picksel favorites ALBUM [--set]      print (or replace) the favorites
"""

EPILOG = """\
Everything picksel writes about an album lives in ALBUM/.picksel/ (or --state-dir):
the index, the 2-D map, exclusions, pins, favorites and the last selection.
The album itself is never modified. Exit codes: 0 ok, 1 failure, 2 bad arguments.
Run `picksel COMMAND --help` for the options of one command.
"""

COMMANDS = ("demo", "index", "select", "export", "inventory", "exclude", "pin", "favorites", "tui")


class _Parser(argparse.ArgumentParser):
    """argparse prints usage plus the error; we promise one clear line instead."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see `{self.prog} --help`)")


def _positive_int(name: str, lo: int, hi: int | None = None):
    def parse(text: str) -> int:
        try:
            value = int(text, 10)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{name} must be a whole number, not {text!r}"
            ) from None
        if value < lo or (hi is not None and value > hi):
            rng = f"{lo} to {hi}" if hi is not None else f"at least {lo}"
            raise argparse.ArgumentTypeError(f"{name} must be {rng}, not {value}")
        return value

    parse.__name__ = name
    return parse


def build_parser() -> argparse.ArgumentParser:
    fmt = argparse.RawDescriptionHelpFormatter
    p = _Parser(prog=PROG, description=DESCRIPTION, epilog=EPILOG, formatter_class=fmt)
    from picksel import __version__

    p.add_argument("--version", action="version", version=f"picksel {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def album_cmd(name: str, help_: str, description: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_, description=description, formatter_class=fmt)
        sp.add_argument("album", metavar="ALBUM", type=Path, help="the album folder")
        sp.add_argument(
            "--state-dir",
            type=Path,
            metavar="DIR",
            help="keep picksel's files in DIR instead of ALBUM/.picksel (read-only albums)",
        )
        return sp

    sp = sub.add_parser(
        "tui",
        help="open the curator TUI (same as `picksel ALBUM`)",
        description="Open the curator on ALBUM (indexing it first if needed).",
        formatter_class=fmt,
    )
    sp.add_argument("album", metavar="ALBUM", type=Path, nargs="?", default=Path("."))
    sp.add_argument("--state-dir", type=Path, metavar="DIR")
    _graphics_arg(sp)

    sp = sub.add_parser(
        "demo",
        help="build a demo album from images shipped with scikit-learn/scikit-image and open it",
        description=(
            "Write a demo album (1,797 handwritten digits in one folder per digit with .txt\n"
            "captions, sample photos, and a few garbage images to clean out), index it and\n"
            "open the curator on it. Building again into the same folder reuses it."
        ),
        formatter_class=fmt,
    )
    sp.add_argument("dir", metavar="DIR", type=Path, nargs="?", default=Path("demo-album"))
    sp.add_argument("--build-only", action="store_true", help="build and index, do not open the TUI")
    _graphics_arg(sp)

    sp = album_cmd(
        "index",
        "build or update the album's embedding index",
        "Scan ALBUM and encode new or changed images; unchanged files are not decoded again.\n"
        "An existing PhotoMapAI index (photomap_index/embeddings.npz) is used when found.",
    )
    sp.add_argument(
        "--encoder",
        default="builtin",
        metavar="SPEC",
        help="builtin (default, no model weights) or clip[:MODEL/PRETRAINED] "
        "(needs `pip install 'picksel[clip]'` and locally cached weights)",
    )
    sp.add_argument("--full", action="store_true", help="re-encode every image")
    sp.add_argument(
        "--from-photomap",
        type=Path,
        metavar="DIR",
        help="use this PhotoMapAI photomap_index folder (or its embeddings.npz)",
    )
    sp.add_argument(
        "--map", action="store_true", help="also compute the 2-D UMAP map now (else the TUI does it)"
    )

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
    sp.add_argument("--count", type=_positive_int("count", 1), default=None, metavar="N",
                    help="how many images to select (default: last used, else 20)")
    sp.add_argument("--iterations", type=_positive_int("iterations", 1, 100), default=None, metavar="K",
                    help="Monte Carlo runs, 1-100 (default: last used, else 20)")
    sp.add_argument("--seed", type=_positive_int("seed", 0), default=None, metavar="S",
                    help="make the run reproducible (the seed used is always reported)")
    sp.add_argument("--exclude-threshold", type=_positive_int("exclude threshold", 1, 100), default=None,
                    metavar="T", help="afterwards, exclude every analysed image with frequency >= T%%")
    sp.add_argument("--json", action="store_true", help="print the result as JSON")

    sp = album_cmd("export", "copy the last selection (minus exclusions) to DEST",
                   "Copy the selected images and their caption sidecars (.txt .caption .json)\n"
                   "into DEST. Nothing is ever overwritten: name collisions get new names\n"
                   "(parentdir_name.ext), identical files already in DEST are skipped.")
    sp.add_argument("dest", metavar="DEST", type=Path)
    sp.add_argument("--json", action="store_true", help="print the report as JSON")

    sp = album_cmd("inventory", "write the inventory of included and excluded images",
                   "Columns: Filename Subfolder Count Frequency(%%) Index Status.\n"
                   "Included images first (consensus order), then excluded ones.")
    sp.add_argument("file", metavar="FILE", type=Path)
    sp.add_argument("--csv", action="store_true", help="comma-separated instead of tab-separated")
    sp.add_argument("--force", action="store_true", help="overwrite FILE if it exists")

    sp = album_cmd("exclude", "exclude images from selections and exports",
                   "PATHs are relative to the album (or any path to a file inside it).")
    sp.add_argument("paths", metavar="PATH", nargs="*", type=str)
    grp = sp.add_mutually_exclusive_group()
    grp.add_argument("--clear", action="store_true", help="remove every exclusion")
    grp.add_argument("--remove", action="store_true", help="include PATHs again")
    grp.add_argument("--threshold", type=_positive_int("threshold", 1, 100), metavar="T",
                     help="exclude every image of the last selection with frequency >= T%%")
    grp.add_argument("--list", action="store_true", help="print the excluded paths")

    sp = album_cmd("pin", "pin images: FPS starts from them and always keeps them", "")
    sp.add_argument("paths", metavar="PATH", nargs="*", type=str)
    grp = sp.add_mutually_exclusive_group()
    grp.add_argument("--clear", action="store_true", help="remove every pin")
    grp.add_argument("--remove", action="store_true", help="unpin PATHs")
    grp.add_argument("--list", action="store_true", help="print the pinned paths")

    sp = album_cmd("favorites", "print the favorites (or --set them to the selection)", "")
    sp.add_argument("--set", action="store_true",
                    help="replace the favorites with the last selection (minus exclusions)")
    sp.add_argument("--json", action="store_true")
    return p


def _graphics_arg(sp: argparse.ArgumentParser) -> None:
    sp.add_argument(
        "--graphics",
        choices=("auto", "sixel", "kitty", "halfcell", "text"),
        default="auto",
        help="how images and the map are drawn (default: what the terminal supports)",
    )


# --------------------------------------------------------------------------- helpers


def _err(message: str) -> None:
    prefix = "" if message.startswith(PROG) else f"{PROG}: "
    print(f"{prefix}{message}", file=sys.stderr)


@contextlib.contextmanager
def _progress(description: str) -> Iterator[ProgressFn]:
    """A rich progress bar on a terminal; silence when stderr is piped."""
    if not sys.stderr.isatty():
        yield lambda done, total, message="": None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[message]}"),
        TimeElapsedColumn(),
        transient=True,
        console=_stderr_console(),
    ) as bar:
        task = bar.add_task(description, total=None, message="")

        def update(done: int, total: int, message: str = "") -> None:
            bar.update(task, completed=done, total=total or None, message=message)

        yield update


def _stderr_console():
    from rich.console import Console

    return Console(stderr=True)


def _album(path: Path) -> Path:
    if not path.exists():
        raise PickselError(f"album folder not found: {path}")
    if not path.is_dir():
        raise PickselError(f"not a folder: {path}")
    return path


def _open_state(args: argparse.Namespace):
    """(album, state dir, state) for an album command; a moved-aside corrupt state.json is reported."""
    from picksel.album import state_dir
    from picksel.state import load_state

    album = _album(args.album)
    sdir = state_dir(album, args.state_dir)
    state, warning = load_state(sdir)
    if warning:
        _err(warning)
    return album, sdir, state


def _load_or_build_index(album: Path, state_dir: Path | None):
    from picksel.index import build_index, load_index

    try:
        return load_index(album, state_dir)
    except IndexMissing:
        print(f"picksel: {album} has no index yet; indexing it first", file=sys.stderr)
        with _progress("Indexing") as progress:
            index, report = build_index(album, state_dir=state_dir, progress=progress)
        for line in report.messages:
            print(f"picksel: {line}", file=sys.stderr)
        return index


def _rel_path(album: Path, given: str, known: set[str]) -> str:
    """Accept album-relative paths and any path to a file inside the album."""
    if given in known:
        return given
    candidate = Path(given)
    if candidate.exists():
        try:
            rel = candidate.resolve().relative_to(album.resolve()).as_posix()
        except ValueError:
            raise PickselError(f"not inside the album: {given}") from None
        if rel in known:
            return rel
    raise PickselError(f"not an indexed image of this album: {given}")


# --------------------------------------------------------------------------- commands


def cmd_tui(args: argparse.Namespace) -> int:
    album = _album(args.album)
    from picksel.tui.app import run_app

    return run_app(album, state_dir=getattr(args, "state_dir", None), graphics=args.graphics)


def cmd_demo(args: argparse.Namespace) -> int:
    from picksel.demo import build_demo_album
    from picksel.index import build_index

    with _progress("Building demo album") as progress:
        demo = build_demo_album(args.dir, progress=progress)
    print(
        f"demo album in {demo.dest}: {demo.digits} digits, {demo.photos} photos, "
        f"{demo.garbage} garbage images, {demo.captions} captions"
    )
    start = time.perf_counter()
    with _progress("Indexing") as progress:
        index, report = build_index(args.dir, progress=progress)
    print(
        f"indexed {len(index)} images with {index.encoder} in {time.perf_counter() - start:.1f} s "
        f"({report.added} new, {report.updated} changed, {report.removed} removed)"
    )
    if args.build_only:
        return 0
    from picksel.tui.app import run_app

    return run_app(args.dir, graphics=args.graphics)


def cmd_index(args: argparse.Namespace) -> int:
    from picksel.index import build_index

    album = _album(args.album)
    start = time.perf_counter()
    with _progress("Indexing") as progress:
        index, report = build_index(
            album,
            encoder=args.encoder,
            full=args.full,
            state_dir=args.state_dir,
            from_photomap=args.from_photomap,
            progress=progress,
        )
    elapsed = time.perf_counter() - start
    for line in report.messages:
        print(line, file=sys.stderr)
    print(
        f"{len(index)} images indexed with {index.encoder} in {elapsed:.1f} s: "
        f"{report.added} new, {report.updated} changed, {report.removed} removed, "
        f"{report.unchanged} unchanged"
        + (f"; {len(report.failures)} could not be read" if report.failures else "")
    )
    if args.map:
        from picksel.album import state_dir
        from picksel.mapping import ensure_map

        with _progress("UMAP map") as progress:
            data = ensure_map(index, state_dir(album, args.state_dir), progress=progress)
        print(f"2-D map ready ({data.kind})")
    return 0


def cmd_select(args: argparse.Namespace) -> int:
    import numpy as np

    from picksel.select import run_selection
    from picksel.state import SavedSelection, exclude_at_or_above, save_state

    album, sdir, state = _open_state(args)
    index = _load_or_build_index(album, args.state_dir)
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

    with _progress(f"Selecting ({method})") as progress:
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
    state.selection = SavedSelection.from_result(result, index.paths, index.fingerprint())
    settings.method, settings.count, settings.iterations = method, count, iterations
    settings.seed = args.seed
    newly = 0
    if args.exclude_threshold is not None:
        settings.threshold = args.exclude_threshold
        newly = exclude_at_or_above(state, args.exclude_threshold)
    save_state(sdir, state)

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
        json.dump(payload, sys.stdout, ensure_ascii=False, indent=1)
        sys.stdout.write("\n")
        return 0
    tier_counts = {t: sum(1 for s in selected if s["tier"] == t) for t in ("core", "stable", "variable")}
    width = max((len(s["path"]) for s in selected), default=4)
    for s in selected:
        print(f"{s['path']:<{width}}  {s['votes']:>3}/{iterations}  {s['frequency']:5.1f}%  {s['tier']}")
    print(
        f"{len(selected)} of {count} selected by {method} over {iterations} iterations "
        f"(seed {result.seed}): {tier_counts['core']} core, {tier_counts['stable']} stable, "
        f"{tier_counts['variable']} variable; {int(excluded.sum())} excluded",
        file=sys.stderr,
    )
    if args.exclude_threshold is not None:
        print(
            f"excluded {newly} new image(s) with frequency >= {args.exclude_threshold}% "
            f"({len(state.excluded)} excluded in all)",
            file=sys.stderr,
        )
    return 0


def _require_selection(state, album: Path):
    if state.selection is None:
        raise PickselError(f"no selection yet: run `picksel select {album}` first")
    return state.selection


def cmd_export(args: argparse.Namespace) -> int:
    from picksel.export import export_images
    from picksel.state import included_paths, save_state

    album, sdir, state = _open_state(args)
    _require_selection(state, album)
    rels = included_paths(state)
    with _progress("Exporting") as progress:
        report = export_images(album, rels, args.dest, progress=progress)
    state.export_path = str(Path(args.dest).resolve())
    save_state(sdir, state)
    if args.json:
        json.dump(
            {
                "dest": str(report.dest),
                "copied": len(report.copied),
                "sidecars": len(report.sidecars),
                "files": [{"path": rel, "name": name} for rel, name in report.copied + report.sidecars],
                "already_there": [str(p) for p in report.identical_skipped],
                "skipped": [[str(p), r] for p, r in report.skipped],
                "errors": [[str(p), r] for p, r in report.errors],
            },
            sys.stdout,
            ensure_ascii=False,
            indent=1,
        )
        sys.stdout.write("\n")
    else:
        for path, reason in report.skipped:
            print(f"picksel: skipped {path}: {reason}", file=sys.stderr)
        for path, reason in report.errors:
            print(f"picksel: cannot export {path}: {reason}", file=sys.stderr)
        print(report.summary())
    return 1 if report.errors else 0


def cmd_inventory(args: argparse.Namespace) -> int:
    from picksel.inventory import inventory_rows, write_inventory

    album, _, state = _open_state(args)
    selection = _require_selection(state, album)
    index = _load_index_or_none(album, args.state_dir)
    paths = index.paths if index is not None else list(selection.votes)
    rows = inventory_rows(paths, selection, state.excluded)
    n = write_inventory(args.file, rows, csv=args.csv, overwrite=args.force)
    included = sum(1 for r in rows if r.status == "Included")
    print(f"inventory written to {args.file}: {included} included, {n - included} excluded")
    return 0


def _load_index_or_none(album: Path, state_dir: Path | None):
    from picksel.index import load_index

    try:
        return load_index(album, state_dir)
    except IndexMissing:
        return None


def _toggle_paths(args: argparse.Namespace, attr: str, verb: str) -> int:
    from picksel.state import save_state, set_excluded, set_pinned

    album, sdir, state = _open_state(args)
    current: set[str] = getattr(state, attr)
    if args.list:
        for rel in sorted(current):
            print(rel)
        return 0
    if args.clear:
        n = len(current)
        current.clear()
        save_state(sdir, state)
        print(f"cleared {n} {verb}")
        return 0
    if getattr(args, "threshold", None) is not None:
        from picksel.state import exclude_at_or_above

        _require_selection(state, album)
        n = exclude_at_or_above(state, args.threshold)
        save_state(sdir, state)
        print(f"excluded {n} new image(s) at or above {args.threshold}% ({len(state.excluded)} in all)")
        return 0
    if not args.paths:
        raise UsageError(f"picksel {args.command}: give PATHs, or --clear / --list")
    index = _load_or_build_index(album, args.state_dir)
    known = set(index.paths)
    rels = [_rel_path(album, p, known) for p in args.paths]
    mark = set_pinned if attr == "pins" else set_excluded
    changed = mark(state, rels, not args.remove)
    save_state(sdir, state)
    action = "removed" if args.remove else "added"
    print(f"{action} {changed} {verb} ({len(current)} in all)")
    return 0


def cmd_exclude(args: argparse.Namespace) -> int:
    return _toggle_paths(args, "excluded", "exclusion(s)")


def cmd_pin(args: argparse.Namespace) -> int:
    args.threshold = None
    return _toggle_paths(args, "pins", "pin(s)")


def cmd_favorites(args: argparse.Namespace) -> int:
    from picksel.state import save_state, set_favorites

    album, sdir, state = _open_state(args)
    if args.set:
        _require_selection(state, album)
        n = set_favorites(state)
        save_state(sdir, state)
        print(f"favorites replaced with the selection: {n} images", file=sys.stderr)
    if args.json:
        json.dump(state.favorites, sys.stdout, ensure_ascii=False, indent=1)
        sys.stdout.write("\n")
    else:
        for rel in state.favorites:
            print(rel)
    return 0


HANDLERS = {
    "tui": cmd_tui,
    "demo": cmd_demo,
    "index": cmd_index,
    "select": cmd_select,
    "export": cmd_export,
    "inventory": cmd_inventory,
    "exclude": cmd_exclude,
    "pin": cmd_pin,
    "favorites": cmd_favorites,
}


def run(argv: list[str]) -> int:
    """Parse ``argv`` and run one command; returns the process exit code."""
    # `picksel ALBUM` (and bare `picksel`) opens the TUI: route it to the `tui` command.
    if not argv or (argv[0] not in COMMANDS and not argv[0].startswith("-")):
        argv = ["tui", *argv]
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 0
        return HANDLERS[args.command](args)
    except UsageError as exc:
        _err(str(exc))
        return 2
    except Cancelled:
        _err("cancelled; nothing half-written was left behind")
        return 1
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    except BrokenPipeError:
        # `picksel select ... | head`: the reader left; that is not an error worth a message.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except PickselError as exc:
        _err(str(exc))
        return 1
    except OSError as exc:
        # Disk full, permission denied, … on our own files: one clear line, not a traceback.
        name = f" {exc.filename}" if exc.filename else ""
        _err(f"{exc.strerror or exc}{':' if name else ''}{name}")
        return 1
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run(sys.argv[1:]))

