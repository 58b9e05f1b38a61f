"""Commands that hand the selection on: ``export`` (files), ``inventory`` (a table),
``favorites`` (kept in state)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from picksel.cli.check_cmds import quality_lookup
from picksel.cli.common import (
    AlbumCmd,
    editing,
    emit_json,
    err,
    load_index_or_none,
    open_state,
    progress_bar,
    require_selection,
    say,
)
from picksel.errors import PickselError


def add_parsers(sub: argparse._SubParsersAction, album_cmd: AlbumCmd) -> None:
    sp = album_cmd("export", "copy the last selection (minus exclusions) to DEST",
                   "Copy the selected images and their caption sidecars (.txt .caption .json)\n"
                   "into DEST. Nothing is ever overwritten: name collisions get new names\n"
                   "(parentdir_name.ext), identical files already in DEST are skipped.\n"
                   "When DEST holds images that are not in this selection (an earlier export,\n"
                   "other files), export refuses unless told to --merge with them or to\n"
                   "--replace them (they are moved into DEST/.picksel-replaced-TIME/, never\n"
                   "deleted). What was exported is recorded in DEST/.picksel-export.json.")
    sp.add_argument("dest", metavar="DEST", type=Path)
    sp.add_argument("--json", action="store_true", help="print the report as JSON")
    others = sp.add_mutually_exclusive_group()
    others.add_argument("--merge", action="store_const", const="merge", dest="others",
                        help="add to the images already in DEST that are not in this selection")
    others.add_argument("--replace", action="store_const", const="replace", dest="others",
                        help="move those images (and their captions) into DEST/.picksel-replaced-TIME/ first")
    sp.set_defaults(handler=cmd_export)

    sp = album_cmd("inventory", "write the inventory of included and excluded images",
                   "Columns: Filename Subfolder Count Frequency(%) Index Status Flags DupGroup\n"
                   "DupRole. Included images first (consensus order), then excluded ones.\n"
                   "Flags and the duplicate group come from the measures `picksel check` keeps\n"
                   "(never computed here): an image without them says 'unchecked'.\n"
                   "Cells starting with = + - @ (or tab, CR) get a leading ' so a spreadsheet\n"
                   "shows them as text instead of running them as formulas; --raw writes\n"
                   "them as they are (for scripts).")
    sp.add_argument("file", metavar="FILE", type=Path)
    sp.add_argument("--csv", action="store_true", help="comma-separated instead of tab-separated")
    sp.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    sp.add_argument("--raw", action="store_true",
                    help="write cells as they are, without the ' that keeps spreadsheets from running formulas")
    sp.set_defaults(handler=cmd_inventory)

    sp = album_cmd("favorites", "print the favorites (or --set them to the selection)", "")
    sp.add_argument("--set", action="store_true",
                    help="replace the favorites with the last selection (minus exclusions)")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(handler=cmd_favorites)


def _index(album: Path, state_dir: Path | None):
    """The album index: export and inventory accept only its paths."""
    index = load_index_or_none(album, state_dir)
    if index is None:
        raise PickselError(f"{album} has no index: run `picksel index {album}` first")
    return index


def cmd_export(args: argparse.Namespace) -> int:
    from picksel.export import export_images
    from picksel.indexed import left_out_line
    from picksel.state import included_paths

    album, sdir, state = open_state(args)
    require_selection(state, album)
    rels = included_paths(state)
    index = _index(album, args.state_dir)
    with progress_bar("Exporting") as progress:
        report = export_images(album, rels, args.dest, progress=progress, indexed=index.paths,
                               others=args.others)
    if report.left_out:
        err(left_out_line(report.left_out))
    try:
        with editing(sdir, None) as fresh:  # lock and re-read: keep what others did meanwhile
            fresh.export_path = str(Path(args.dest).resolve())
    except PickselError as e:  # the copies are made; only remembering DEST failed
        err(f"exported, but could not remember the folder: {e}")
    if args.json:
        quality = quality_lookup(album, sdir, state, index)
        emit_json(
            {
                "dest": str(report.dest),
                "copied": len(report.copied),
                "sidecars": len(report.sidecars),
                # images carry their flags and duplicate group (sidecars are not images)
                "files": [{"path": rel, "name": name, **quality.json_fields(rel)}
                          for rel, name in report.copied]
                + [{"path": rel, "name": name} for rel, name in report.sidecars],
                "already_there": [str(p) for p in report.identical_skipped],
                "left_out": report.left_out,
                "merged_with": report.merged_with,
                "replaced": report.replaced,
                "replaced_to": str(report.replaced_to) if report.replaced_to else None,
                "skipped": [[str(p), r] for p, r in report.skipped],
                "errors": [[str(p), r] for p, r in report.errors],
            }
        )
    else:
        for path, reason in report.skipped:
            err(f"skipped {path}: {reason}")
        for path, reason in report.errors:
            err(f"cannot export {path}: {reason}")
        say(report.summary())
    return 1 if report.errors else 0


def cmd_inventory(args: argparse.Namespace) -> int:
    from picksel.indexed import left_out_line
    from picksel.inventory import inventory_rows, left_out_of_inventory, write_inventory
    from picksel.qualitylookup import unchecked_line

    album, sdir, state = open_state(args)
    index = _index(album, args.state_dir) if state.selection is not None else None
    paths = index.paths if index is not None else []
    quality = quality_lookup(album, sdir, state, index, warn=False) if index is not None else None
    rows = inventory_rows(paths, state.selection, state.excluded, quality)
    left_out = left_out_of_inventory(paths, state.selection, state.excluded)
    if left_out:
        err(left_out_line(left_out))
    n = write_inventory(args.file, rows, csv=args.csv, overwrite=args.force, raw=args.raw)
    if quality is not None and quality.unchecked:  # only once there is a file to say it of
        err(unchecked_line(len(quality.unchecked), album))
    included = sum(1 for r in rows if r.status == "Included")
    say(f"inventory written to {args.file}: {included} included, {n - included} excluded")
    return 0


def cmd_favorites(args: argparse.Namespace) -> int:
    from picksel.state import set_favorites

    album, sdir, state = open_state(args)
    if args.set:
        require_selection(state, album)
        with editing(sdir, "favorites --set") as state:
            require_selection(state, album)
            n = set_favorites(state)
        say(f"favorites replaced with the selection: {n} images", file=sys.stderr)
    if args.json:
        emit_json(state.favorites)
    else:
        for rel in state.favorites:
            say(rel)
    return 0
