"""What every command shares: the one-line error parser, number parsing, progress bars,
opening an album and its state, finding an image by path, and the two ways out:
``say``/``err`` for text (names made harmless with ``picksel.textsafe.printable``) and
``emit_json`` for JSON (built whole, then written as UTF-8 in one go)."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn, TextIO

from picksel.errors import IndexMissing, PickselError, ProgressFn, UsageError
from picksel.textsafe import json_text, printable

PROG = "picksel"

AlbumCmd = Callable[[str, str, str], argparse.ArgumentParser]
"""``album_cmd(name, help, description)``: a sub-parser with ALBUM and --state-dir."""


class Parser(argparse.ArgumentParser):
    """argparse prints usage plus the error; we promise one clear line instead.

    ``intermixed = True`` lets PATHs follow a flag (``exclude ALBUM --remove PATH``):
    plain argparse stops filling a ``nargs="*"`` positional at the first option.
    """

    intermixed = False
    _mixing = False

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see `{self.prog} --help`)")

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        if not self.intermixed or self._mixing:
            return super().parse_known_args(args, namespace)
        self._mixing = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._mixing = False


def positive_int(name: str, lo: int, hi: int | None = None) -> Callable[[str], int]:
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


def graphics_arg(sp: argparse.ArgumentParser) -> None:
    sp.add_argument(
        "--graphics",
        choices=("auto", "sixel", "kitty", "halfcell", "text"),
        default="auto",
        help="how images and the map are drawn (default: what the terminal supports)",
    )


def say(text: object = "", *, file: TextIO | None = None) -> None:
    """Print one line for a person: control characters and undecodable bytes in names
    become visible escapes, and a stream that cannot encode a letter gets ``\\uNNNN``."""
    stream = file if file is not None else sys.stdout
    line = printable(text) + "\n"
    try:
        stream.write(line)  # encodes the whole line first: nothing half-written on failure
    except UnicodeEncodeError:
        enc = getattr(stream, "encoding", None) or "ascii"
        stream.write(line.encode(enc, "backslashreplace").decode(enc))


def err(message: object) -> None:
    message = str(message)
    prefix = "" if message.startswith(PROG) else f"{PROG}: "
    say(f"{prefix}{message}", file=sys.stderr)


def emit_json(payload: Any) -> None:
    """Write ``payload`` as JSON to stdout: built completely before the first byte is
    written (a failure leaves no half document), always UTF-8 whatever the locale, and a
    name byte that is not UTF-8 appears as ``\\udcNN`` (see ``picksel.textsafe``)."""
    data = (json_text(payload) + "\n").encode("utf-8")
    sys.stdout.flush()
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is None:  # a text-only stream (tests): the text is pure UTF-8-safe
        sys.stdout.write(data.decode("utf-8"))
    else:
        buffer.write(data)
        buffer.flush()


@contextlib.contextmanager
def progress_bar(description: str) -> Iterator[ProgressFn]:
    """A rich progress bar on a terminal; silence when stderr is piped."""
    if not sys.stderr.isatty():
        yield lambda done, total, message="": None
        return
    from rich.console import Console
    from rich.markup import escape as escape_markup
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[message]}"),
        TimeElapsedColumn(),
        transient=True,
        console=Console(stderr=True),
    ) as bar:
        task = bar.add_task(description, total=None, message="")

        def update(done: int, total: int, message: str = "") -> None:
            # The message may name a file: no raw controls, and not rich markup either.
            safe = escape_markup(printable(message))
            bar.update(task, completed=done, total=total or None, message=safe)

        yield update


def album_dir(path: Path) -> Path:
    if not path.exists():
        raise PickselError(f"album folder not found: {path}")
    if not path.is_dir():
        raise PickselError(f"not a folder: {path}")
    return path


def open_state(args: argparse.Namespace):
    """(album, state dir, state) for an album command, read without the lock (a snapshot:
    writers re-read under it); a repaired or moved-aside state.json is reported once."""
    from picksel.album import state_dir
    from picksel.statelock import open_repaired

    album = album_dir(args.album)
    sdir = state_dir(album, args.state_dir)
    return album, sdir, open_repaired(sdir, warn=err)


def editing(sdir: Path, action: str | None):
    """``with editing(sdir, "exclude") as state:`` the locked read-modify-write of
    state.json every command that changes it goes through (see picksel.statelock)."""
    from picksel.statelock import edit_state

    return edit_state(sdir, action=action, warn=err)


def load_or_build_index(album: Path, state_dir: Path | None):
    from picksel.index import build_index, load_index

    try:
        return load_index(album, state_dir)
    except IndexMissing:
        err(f"{album} has no index yet; indexing it first")
        with progress_bar("Indexing") as progress:
            index, report = build_index(album, state_dir=state_dir, progress=progress)
        for line in report.messages:
            err(line)
        return index


def load_index_or_none(album: Path, state_dir: Path | None):
    from picksel.index import load_index

    try:
        return load_index(album, state_dir)
    except IndexMissing:
        return None


def rel_path(album: Path, given: str, known: set[str]) -> str | None:
    """The album-relative name of ``given`` (album-relative, or any path to a file inside
    the album), or None when it names no indexed image."""
    if given in known:
        return given
    candidate = Path(given)
    if candidate.exists():
        try:
            rel = candidate.resolve().relative_to(album.resolve()).as_posix()
        except ValueError:
            return None
        if rel in known:
            return rel
    return None


def rel_paths(album: Path, given: list[str], known: set[str]) -> list[str]:
    """Every PATH as an album-relative name; one that names no indexed image is a bad
    argument (exit 2), reported on one line before anything changes."""
    rels = [rel_path(album, p, known) for p in given]
    bad = [p for p, rel in zip(given, rels, strict=True) if rel is None]
    if bad:
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise UsageError(f"not an indexed image of this album: {bad[0]}{more}")
    return [rel for rel in rels if rel is not None]


def require_selection(state, album: Path):
    if state.selection is None:
        raise PickselError(f"no selection yet: run `picksel select {album}` first")
    return state.selection
