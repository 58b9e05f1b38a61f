"""The ``picksel`` command line: the TUI launcher and the headless curator.

Every sub-command is a thin layer over the engine modules, so a script gets the same
results as the TUI. User errors end with one line on stderr and exit code 2 (bad
arguments) or 1 (failures); only bugs produce a traceback. One module per command
family (``album_cmds``, ``select_cmds``, ``mark_cmds``, ``output_cmds``); each adds its
sub-parsers and names its handler with ``set_defaults(handler=...)``.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import os
import sys
from pathlib import Path

from picksel.cli import album_cmds, check_cmds, curve_cmds, mark_cmds, output_cmds, select_cmds
from picksel.cli.common import PROG, Parser, err
from picksel.errors import Cancelled, PickselError, Terminated, UsageError

DESCRIPTION = """\
Pick a diverse (FPS) or representative (K-Means) subset of an image album.

Open the curator on an album:          picksel ALBUM   (in an album folder: picksel)
Try it on a built-in demo album:       picksel demo
Headless, for scripts:
  picksel index ALBUM                  build/update the embedding index
  picksel select ALBUM --count 150     run the Monte Carlo selection, save it
  picksel curve ALBUM                  how many images? coverage for 1..K and a suggested count
  picksel exclude ALBUM PATH...        keep images out of selections and exports
  picksel check ALBUM                  flag dark/blurry/noisy/small... images, find duplicates
  picksel exclude ALBUM --flagged      exclude flagged images (--duplicates: the copies)
  picksel undo ALBUM                   take back the last exclude/pin/favorites/select
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

FAMILIES = (album_cmds, select_cmds, curve_cmds, mark_cmds, check_cmds, output_cmds)


def build_parser() -> argparse.ArgumentParser:
    fmt = argparse.RawDescriptionHelpFormatter
    p = Parser(prog=PROG, description=DESCRIPTION, epilog=EPILOG, formatter_class=fmt)
    from picksel import __version__

    p.add_argument("--version", action="version", version=f"picksel {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

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

    for family in FAMILIES:
        family.add_parsers(sub, album_cmd)
    return p


def commands(parser: argparse.ArgumentParser) -> list[str]:
    """The sub-command names, from the parser itself so a new command is never missed."""
    for action in parser._subparsers._group_actions if parser._subparsers else ():
        if isinstance(action, argparse._SubParsersAction):
            return list(action.choices)
    return []


def route(argv: list[str], names: list[str]) -> list[str]:
    """``picksel [ALBUM] [--graphics M]`` means ``picksel tui ...``; a word that is neither
    a command nor a folder is a mistyped command, not a missing album."""
    if not argv:
        return ["tui"]
    first = argv[0]
    if first in names:
        return argv
    if first.startswith("-"):
        tui_option = first.split("=", 1)[0] in ("--graphics", "--state-dir")
        return ["tui", *argv] if tui_option else argv
    if os.path.lexists(first) or "/" in first or first.startswith((".", "~")):
        return ["tui", *argv]
    near = difflib.get_close_matches(first, names, n=1, cutoff=0.6)
    hint = f"; did you mean `{PROG} {near[0]}`?" if near else ""
    raise UsageError(
        f"unknown command {first!r} (and no folder of that name); "
        f"commands: {', '.join(n for n in names if n != 'tui')}{hint}"
    )


def run(argv: list[str]) -> int:
    """Parse ``argv`` and run one command; returns the process exit code."""
    parser = build_parser()
    try:
        argv = route(argv, commands(parser))
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 0
        return args.handler(args)
    except UsageError as exc:
        err(str(exc))
        return 2
    except Cancelled:
        err("cancelled; nothing half-written was left behind")
        return 1
    except Terminated:
        err("terminated")
        return 143
    except KeyboardInterrupt:
        err("interrupted")
        return 130
    except BrokenPipeError:
        # `picksel select ... | head`: the reader left; that is not an error worth a message.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except PickselError as exc:
        err(str(exc))
        return 1
    except OSError as exc:
        # Disk full, permission denied, … on our own files: one clear line, not a traceback.
        name = f" {exc.filename}" if exc.filename else ""
        err(f"{exc.strerror or exc}{':' if name else ''}{name}")
        return 1
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run(sys.argv[1:]))
