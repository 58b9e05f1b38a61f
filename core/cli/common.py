"""What every command shares: the one-line error parser, number parsing, progress bars,
opening an album and its state, finding an image by path."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NoReturn

from picksel.errors import IndexMissing, PickselError, ProgressFn, UsageError

PROG = "picksel"

AlbumCmd = Callable[[str, str, str], argparse.ArgumentParser]
"""``album_cmd(name, help, description)``: a sub-parser with ALBUM and --state-dir."""


class Parser(argparse.ArgumentParser):
    """argparse prints usage plus the error; we promise one clear line instead."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see `{self.prog} --help`)")


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


def err(message: str) -> None:
    prefix = "" if message.startswith(PROG) else f"{PROG}: "
    print(f"{prefix}{message}", file=sys.stderr)


@contextlib.contextmanager
def progress_bar(description: str) -> Iterator[ProgressFn]:
    """A rich progress bar on a terminal; silence when stderr is piped."""
    if not sys.stderr.isatty():
        yield lambda done, total, message="": None
        return
    from rich.console import Console
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
            bar.update(task, completed=done, total=total or None, message=message)

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
        print(f"picksel: {album} has no index yet; indexing it first", file=sys.stderr)
        with progress_bar("Indexing") as progress:
            index, report = build_index(album, state_dir=state_dir, progress=progress)
        for line in report.messages:
            print(f"picksel: {line}", file=sys.stderr)
        return index


def load_index_or_none(album: Path, state_dir: Path | None):
    from picksel.index import load_index

    try:
        return load_index(album, state_dir)
    except IndexMissing:
        return None


def rel_path(album: Path, given: str, known: set[str]) -> str:
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


def require_selection(state, album: Path):
    if state.selection is None:
        raise PickselError(f"no selection yet: run `picksel select {album}` first")
    return state.selection
