"""Commands that mark images: ``exclude`` and ``pin``, and ``undo`` to take a mark back."""

from __future__ import annotations

import argparse

from picksel.cli.common import (
    AlbumCmd,
    editing,
    err,
    load_or_build_index,
    open_state,
    positive_int,
    rel_paths,
    require_selection,
    say,
)
from picksel.errors import PickselError, UsageError
from picksel.quality import DEFECT_FLAGS, FLAGS


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
    grp.add_argument("--flagged", nargs="*", choices=FLAGS, metavar="FLAG",
                     help="exclude every image `picksel check` flags with FLAG (default: "
                          f"{' '.join(DEFECT_FLAGS)}); pinned images are left alone")
    grp.add_argument("--duplicates", action="store_true",
                     help="exclude every duplicate `picksel check` finds except each group's keeper")
    sp.set_defaults(handler=cmd_exclude)

    sp = album_cmd("pin", "pin images: FPS starts from them and always keeps them", "")
    sp.add_argument("paths", metavar="PATH", nargs="*", type=str)
    sp.intermixed = True  # type: ignore[attr-defined]
    grp = sp.add_mutually_exclusive_group()
    grp.add_argument("--clear", action="store_true", help="remove every pin")
    grp.add_argument("--remove", action="store_true", help="unpin PATHs")
    grp.add_argument("--list", action="store_true", help="print the pinned paths")
    sp.set_defaults(handler=cmd_pin)

    sp = album_cmd("undo", "undo the last change of exclusions, pins, favorites or selection",
                   "Takes back the newest change made by exclude, pin, favorites --set or\n"
                   "select here, or by the curator (x X C c p f, a run). Repeat to go\n"
                   "further back (up to 20 changes are kept). `picksel redo` makes again\n"
                   "what undo took back, until a new change is made.")
    sp.set_defaults(handler=cmd_undo)

    sp = album_cmd("redo", "make again the change the last undo took back",
                   "Walks forward through what `picksel undo` (or the curator's u) took back.\n"
                   "Any new change of exclusions, pins, favorites or selection ends the list.")
    sp.set_defaults(handler=cmd_redo)


def _toggle_paths(args: argparse.Namespace, attr: str, verb: str) -> int:
    from picksel.state import exclude_at_or_above, set_excluded, set_pinned

    album, sdir, state = open_state(args)
    if args.list:
        for rel in sorted(getattr(state, attr)):
            say(rel)
        return 0
    action = f"{args.command} --clear"
    if args.clear:
        with editing(sdir, action) as state:
            marks: set[str] = getattr(state, attr)
            n = len(marks)
            marks.clear()
        say(f"cleared {n} {verb}")
        return 0
    if getattr(args, "threshold", None) is not None:
        require_selection(state, album)
        with editing(sdir, f"exclude --threshold {args.threshold}") as state:
            require_selection(state, album)
            n = exclude_at_or_above(state, args.threshold)
        say(f"excluded {n} new image(s) at or above {args.threshold}% ({len(state.excluded)} in all)")
        return 0
    if not args.paths:
        raise UsageError(f"picksel {args.command}: give PATHs, or --clear / --list")
    index = load_or_build_index(album, args.state_dir)
    stale_ok = set(getattr(state, attr)) if args.remove else set()  # a stale one can go
    known = set(index.paths) | stale_ok
    rels = rel_paths(album, args.paths, known)
    mark = set_pinned if attr == "pins" else set_excluded
    with editing(sdir, f"{args.command}{' --remove' if args.remove else ''}") as state:
        changed = mark(state, rels, not args.remove)
    action = "removed" if args.remove else "added"
    say(f"{action} {changed} {verb} ({len(getattr(state, attr))} in all)")
    return 0


def cmd_exclude(args: argparse.Namespace) -> int:
    if args.flagged is not None or args.duplicates:
        return _exclude_found(args)
    return _toggle_paths(args, "excluded", "exclusion(s)")


def _exclude_found(args: argparse.Namespace) -> int:
    """``--flagged [FLAG...]`` / ``--duplicates``: check the album, then exclude what it
    found in one journaled step (``picksel undo`` takes it back)."""
    from picksel.cli.check_cmds import run_check, thresholds_for
    from picksel.state import exclude_unpinned

    if args.paths:
        raise UsageError("picksel exclude: give PATHs or --flagged/--duplicates, not both")
    album, sdir, state = open_state(args)
    t = thresholds_for(args, sdir, state)
    result = run_check(album, args.state_dir, sdir, t, set(state.pins))
    if args.duplicates:
        found, what, action = result.copies(), "duplicate copies", "exclude --duplicates"
    else:
        wanted = list(args.flagged) or list(DEFECT_FLAGS)
        found = result.flagged(set(wanted))
        what = f"images flagged {'/'.join(wanted)}"
        action = f"exclude --flagged {' '.join(wanted)}"
    with editing(sdir, action) as state:
        changed, pinned = exclude_unpinned(state, found)
    kept = f"; {len(pinned)} pinned left alone" if pinned else ""
    say(f"excluded {changed} new image(s) of {len(found)} {what} ({len(state.excluded)} in all){kept}")
    return 0


def cmd_pin(args: argparse.Namespace) -> int:
    args.threshold = None
    return _toggle_paths(args, "pins", "pin(s)")


def cmd_undo(args: argparse.Namespace) -> int:
    from picksel.undo import undo_last

    return _journal_step(args, undo_last, "nothing to undo")


def cmd_redo(args: argparse.Namespace) -> int:
    from picksel.undo import redo_last

    return _journal_step(args, redo_last, "nothing to redo")


def _journal_step(args: argparse.Namespace, step, nothing: str) -> int:
    from picksel.state import load_state, save_state
    from picksel.statelock import state_lock

    _album, sdir, _state = open_state(args)
    with state_lock(sdir, warn=err):
        state, warning = load_state(sdir)
        if warning:
            err(warning)
        done = step(sdir, state, lambda: save_state(sdir, state))
    if done is None:
        raise PickselError(nothing)
    say(done.message())
    return 0
