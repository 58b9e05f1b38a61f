"""Commands that mark images: ``exclude`` and ``pin``."""

from __future__ import annotations

import argparse

from picksel.cli.common import (
    AlbumCmd,
    load_or_build_index,
    open_state,
    positive_int,
    rel_paths,
    require_selection,
    say,
)
from picksel.errors import UsageError


def add_parsers(sub: argparse._SubParsersAction, album_cmd: AlbumCmd) -> None:
    sp = album_cmd("exclude", "exclude images from selections and exports",
                   "PATHs are relative to the album (or any path to a file inside it).")
    sp.add_argument("paths", metavar="PATH", nargs="*", type=str)
    sp.intermixed = True  # type: ignore[attr-defined]
    grp = sp.add_mutually_exclusive_group()
    grp.add_argument("--clear", action="store_true", help="remove every exclusion")
    grp.add_argument("--remove", action="store_true", help="include PATHs again")
    grp.add_argument("--threshold", type=positive_int("threshold", 1, 100), metavar="T",
                     help="exclude every image of the last selection with frequency >= T%%")
    grp.add_argument("--list", action="store_true", help="print the excluded paths")

    sp.set_defaults(handler=cmd_exclude)

    sp = album_cmd("pin", "pin images: FPS starts from them and always keeps them", "")
    sp.add_argument("paths", metavar="PATH", nargs="*", type=str)
    sp.intermixed = True  # type: ignore[attr-defined]
    grp = sp.add_mutually_exclusive_group()
    grp.add_argument("--clear", action="store_true", help="remove every pin")
    grp.add_argument("--remove", action="store_true", help="unpin PATHs")
    grp.add_argument("--list", action="store_true", help="print the pinned paths")
    sp.set_defaults(handler=cmd_pin)


def _toggle_paths(args: argparse.Namespace, attr: str, verb: str) -> int:
    from picksel.state import save_state, set_excluded, set_pinned

    album, sdir, state = open_state(args)
    current: set[str] = getattr(state, attr)
    if args.list:
        for rel in sorted(current):
            say(rel)
        return 0
    if args.clear:
        n = len(current)
        current.clear()
        save_state(sdir, state)
        say(f"cleared {n} {verb}")
        return 0
    if getattr(args, "threshold", None) is not None:
        from picksel.state import exclude_at_or_above

        require_selection(state, album)
        n = exclude_at_or_above(state, args.threshold)
        save_state(sdir, state)
        say(f"excluded {n} new image(s) at or above {args.threshold}% ({len(state.excluded)} in all)")
        return 0
    if not args.paths:
        raise UsageError(f"picksel {args.command}: give PATHs, or --clear / --list")
    index = load_or_build_index(album, args.state_dir)
    known = set(index.paths) | (current if args.remove else set())  # a stale one can go
    rels = rel_paths(album, args.paths, known)
    mark = set_pinned if attr == "pins" else set_excluded
    changed = mark(state, rels, not args.remove)
    save_state(sdir, state)
    action = "removed" if args.remove else "added"
    say(f"{action} {changed} {verb} ({len(current)} in all)")
    return 0


def cmd_exclude(args: argparse.Namespace) -> int:
    return _toggle_paths(args, "excluded", "exclusion(s)")


def cmd_pin(args: argparse.Namespace) -> int:
    args.threshold = None
    return _toggle_paths(args, "pins", "pin(s)")
