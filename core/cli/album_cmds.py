"""Commands that open or build albums: ``tui`` (``picksel ALBUM``), ``demo``, ``index``."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from picksel.cli.common import PROG, AlbumCmd, album_dir, err, graphics_arg, progress_bar, say
from picksel.errors import UsageError


def add_parsers(sub: argparse._SubParsersAction, album_cmd: AlbumCmd) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    sp = sub.add_parser(
        "tui",
        help="open the curator TUI (same as `picksel ALBUM`)",
        description="Open the curator on ALBUM (indexing it first if needed).",
        formatter_class=fmt,
    )
    sp.add_argument("album", metavar="ALBUM", type=Path, nargs="?", default=None,
                    help="the album folder (default: the current folder, if it is an album)")
    sp.add_argument("--state-dir", type=Path, metavar="DIR",
                    help="keep picksel's files in DIR instead of ALBUM/.picksel")
    graphics_arg(sp)
    sp.set_defaults(handler=cmd_tui)

    sp = sub.add_parser(
        "demo",
        help="build a demo album from images shipped with scikit-learn/scikit-image and open it",
        description=(
            "Write a demo album (1,797 handwritten digits in one folder per digit with .txt\n"
            "captions, sample photos, and a few garbage images to clean out), index it and\n"
            "open the curator on it. Building again into the same folder only adds the files\n"
            "that are missing: existing files (an edited caption, say) are left as they are."
        ),
        formatter_class=fmt,
    )
    sp.add_argument("dir", metavar="DIR", type=Path, nargs="?", default=Path("demo-album"))
    sp.add_argument("--build-only", action="store_true", help="build and index, do not open the TUI")
    graphics_arg(sp)
    sp.set_defaults(handler=cmd_demo)

    sp = album_cmd(
        "index",
        "build or update the album's embedding index",
        "Scan ALBUM and encode new or changed images; unchanged files are not decoded again.\n"
        "An existing PhotoMapAI index (photomap_index/embeddings.npz) is used when found.",
    )
    sp.add_argument(
        "--encoder",
        default=None,
        metavar="SPEC",
        help="builtin (no model weights) or clip[:MODEL/PRETRAINED] (needs `pip install "
        "'picksel[clip]'` and locally cached weights); default: the album's current encoder, "
        "builtin for a new album. Switching keeps the old vectors, so switching back is instant",
    )
    sp.add_argument("--full", action="store_true", help="re-encode every image")
    sp.add_argument(
        "--from-photomap",
        type=Path,
        metavar="PATH",
        help="import this PhotoMapAI index: an embeddings file (that file is read, whatever "
        "its name), a photomap_index folder or the folder holding one",
    )
    sp.add_argument(
        "--map", action="store_true", help="also compute the 2-D UMAP map now (else the TUI does it)"
    )
    sp.set_defaults(handler=cmd_index)


def cmd_tui(args: argparse.Namespace) -> int:
    album = album_dir(args.album if args.album is not None else _album_here())
    from picksel.tui.app import run_app

    return run_app(album, state_dir=getattr(args, "state_dir", None), graphics=args.graphics)


def _album_here() -> Path:
    """The current folder when it is an album (has .picksel); a bare ``picksel`` anywhere
    else must not start indexing, say, a whole home folder."""
    if os.path.isdir(".picksel"):
        return Path.cwd()  # not ".": the title shows the album's name
    from picksel.cli import DESCRIPTION

    sys.stderr.write(f"usage: {PROG} [ALBUM] | {PROG} COMMAND ...\n\n{DESCRIPTION}\n")
    raise UsageError(
        f"no album here ({os.getcwd()} has no .picksel folder): give the ALBUM "
        "folder, e.g. `picksel ~/photos/album`, or see `picksel --help`"
    )


def cmd_demo(args: argparse.Namespace) -> int:
    from picksel.demo import build_demo_album
    from picksel.index import build_index

    with progress_bar("Building demo album") as progress:
        demo = build_demo_album(args.dir, progress=progress)
    say(
        f"demo album in {demo.dest}: {demo.digits} digits, {demo.photos} photos, "
        f"{demo.garbage} garbage images, {demo.captions} captions"
        + (f"; kept {demo.kept} existing files as they are" if demo.kept else "")
    )
    if demo.refused:
        err(f"not written: {len(demo.refused)} file(s) under a symlinked folder, "
            f"e.g. {demo.refused[0]}")
    start = time.perf_counter()
    with progress_bar("Indexing") as progress:
        index, report = build_index(args.dir, progress=progress)
    say(
        f"indexed {len(index)} images with {index.encoder} in {time.perf_counter() - start:.1f} s "
        f"({report.added} new, {report.updated} changed, {report.removed} removed)"
    )
    if args.build_only:
        return 0
    from picksel.tui.app import run_app

    return run_app(args.dir, graphics=args.graphics)


def cmd_index(args: argparse.Namespace) -> int:
    from picksel.index import build_index

    album = album_dir(args.album)
    start = time.perf_counter()
    with progress_bar("Indexing") as progress:
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
        say(line, file=sys.stderr)
    say(
        f"{len(index)} images indexed with {index.encoder} in {elapsed:.1f} s: "
        f"{report.added} new, {report.updated} changed, {report.removed} removed, "
        f"{report.unchanged} unchanged"
        + (f"; {len(report.failures)} could not be read" if report.failures else "")
    )
    if args.map:
        from picksel.album import state_dir
        from picksel.mapping import ensure_map

        with progress_bar("UMAP map") as progress:
            data = ensure_map(index, state_dir(album, args.state_dir), progress=progress)
        say(f"2-D map ready ({data.kind})")
    return 0
