"""Read arrays out of an ``.npz`` fast, checked, and without pickles.

``np.load(npz)[key]`` streams an uncompressed member through ``zipfile`` in 256 KB
chunks: for a 100,000 × 768 float32 matrix (300 MB) that is most of the load time.
``np.savez`` stores members uncompressed, so the member's bytes sit contiguously in the
file: we find them from the zip headers and read them straight into the array.

The file may be hostile or damaged, so nothing it claims is trusted before it is checked:
a ``.npy`` header's shape must account for exactly the member's bytes, and the member must
fit in the file, before anything is allocated (a header claiming 10^10 rows is refused,
not attempted); every member's zip CRC is verified (zlib.crc32 runs at GB/s, a small
price next to the read, and a flipped byte in the vectors is caught); object arrays are
refused, so nothing is ever unpickled. Errors are ``NpzError`` with one readable line —
never numpy's own text, which suggests ``pickle.load()``.

Members named in ``later`` (the 3 GB of vectors of a 1,000,000-image index) are not read:
their header is checked (shape, dtype, size) and a :class:`Deferred` keeps the file open
to read them when asked, with the same checks. It reads the file that was opened even if
the path is replaced meanwhile (picksel saves by rename), so the member always belongs
with the arrays read now. Memory-mapping was measured and refused: a file rewritten in
place under a map (``cp`` over it) kills the process with SIGBUS; a read only fails its
CRC check.
"""

from __future__ import annotations

import math
import os
import struct
import threading
import zipfile
import zlib
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import IO

import numpy as np

MAX_INFLATE = 1024
"""A compressed member may claim at most this many bytes per stored byte (a zip bomb
claims far more); ``np.savez_compressed`` output of real indexes stays well below."""
MAX_HEADER = 10_000
"""Largest ``.npy`` header accepted (numpy's own default limit)."""
_CHUNK = 1 << 24
_ZIP_ERRORS = (
    zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, NotImplementedError, struct.error,
)  # what zipfile raises on a damaged directory (UnicodeDecodeError is a ValueError)


class NpzError(ValueError):
    """The file is not a usable npz: one line saying why."""


class Deferred:
    """One member of an open npz, checked but not read yet: ``shape`` and ``dtype`` are
    known; ``read()`` reads it once (thread-safe) and closes the file."""

    def __init__(self, fh: IO[bytes], info: zipfile.ZipInfo, key: str, shape: tuple[int, ...], dtype: np.dtype):
        self.shape, self.dtype, self.key = shape, dtype, key
        self._fh: IO[bytes] | None = fh
        self._info = info
        self._lock = threading.Lock()
        self._value: np.ndarray | None = None
        self._error: NpzError | None = None

    def read(self) -> np.ndarray:
        """The array (NpzError when the member is damaged: every call says so)."""
        with self._lock:
            if self._value is None and self._error is None:
                self._load()
            if self._error is not None:
                raise self._error
            assert self._value is not None
            return self._value

    def _load(self) -> None:
        fh, self._fh = self._fh, None
        if fh is None:
            self._error = NpzError(f"{self.key}: the file was closed before the member was read")
            return
        with fh:
            try:
                size = os.fstat(fh.fileno()).st_size
                with zipfile.ZipFile(fh) as zf:
                    arr = _read_member(zf, fh, self._info, size, self.key)
                if arr.shape != self.shape or arr.dtype != self.dtype:
                    raise NpzError(f"{self.key}: the member changed since its header was read")
                self._value = arr
            except NpzError as exc:
                self._error = exc
            except (*_ZIP_ERRORS, OverflowError, zlib.error, OSError) as exc:
                self._error = NpzError(f"{self.key}: {_plain(exc)}")

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None


def read_npz(
    path: Path,
    keys: Iterable[str],
    *,
    later: Collection[str] = (),
    deferred: dict[str, Deferred] | None = None,
) -> dict[str, np.ndarray]:
    """The named arrays of ``path`` (keys the file does not hold are left out). Keys in
    ``later`` go into ``deferred`` instead, as :class:`Deferred` (header checked, data
    not read).

    Raises NpzError (damaged, hostile or pickled content) and OSError."""
    if later and deferred is None:
        raise ValueError("members read later need a dict to go in")
    path = Path(path)
    out: dict[str, np.ndarray] = {}
    try:
        _read_into(path, keys, later, out, deferred)
    except BaseException:
        for value in (deferred or {}).values():
            value.close()
        raise
    return out


def _read_into(
    path: Path, keys: Iterable[str], later: Collection[str], out: dict, deferred: dict | None
) -> None:
    with open(path, "rb") as fh:
        file_size = os.fstat(fh.fileno()).st_size
        try:
            zf = zipfile.ZipFile(fh)
        except _ZIP_ERRORS as exc:
            raise NpzError(f"not an npz (zip) file: {exc}") from None
        with zf:
            names = set(zf.namelist())
            for key in keys:
                if key + ".npy" not in names:
                    continue
                info = zf.getinfo(key + ".npy")
                try:
                    if key in later and deferred is not None:
                        deferred[key] = _defer(zf, fh, info, file_size, key)
                    else:
                        out[key] = _read_member(zf, fh, info, file_size, key)
                except NpzError:
                    raise
                except (
                    zipfile.BadZipFile, ValueError, EOFError, struct.error, OverflowError,
                    NotImplementedError, zlib.error, UnicodeDecodeError,
                ) as exc:
                    raise NpzError(f"{key}: {_plain(exc)}") from None


def _defer(zf: zipfile.ZipFile, fh: IO[bytes], info: zipfile.ZipInfo, file_size: int, key: str) -> Deferred:
    """Check a member's header now (what ``_read_member`` checks before reading)."""
    _check_member(info, file_size, key)
    if info.compress_type == zipfile.ZIP_STORED:
        start = _stored_start(fh, info, key)
        fh.seek(start)
        shape, _fortran, dtype, end = _read_header(fh, key)
        header_len = end - start
    else:
        if info.file_size > MAX_INFLATE * info.compress_size + 4096:
            raise NpzError(
                f"{key}: claims {info.file_size} bytes from {info.compress_size} compressed (a zip bomb?)"
            )
        with zf.open(info) as stream:
            shape, _fortran, dtype, header_len = _read_header(stream, key)
    _check_size(shape, dtype, header_len, info.file_size, key)
    # The same open file (the same inode, whatever happens to the path); it shares the
    # position with ``fh``, which read_npz closes before anyone reads the member.
    return Deferred(os.fdopen(os.dup(fh.fileno()), "rb"), info, key, shape, dtype)


def npz_keys(path: Path) -> list[str]:
    """The array names in an npz (from its zip directory; nothing is read)."""
    try:
        with zipfile.ZipFile(path) as zf:
            return [n[:-4] for n in zf.namelist() if n.endswith(".npy")]
    except _ZIP_ERRORS as exc:
        raise NpzError(f"not an npz (zip) file: {exc}") from None


def read_npz_array(path: Path, key: str) -> np.ndarray:
    """One array; KeyError when the file does not hold it."""
    arrays = read_npz(path, [key])
    if key not in arrays:
        raise KeyError(key)
    return arrays[key]


def _plain(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if "pickle" in text or "allow_pickle" in text:
        return "holds pickled objects, which picksel never loads"
    return text


def _read_header(stream: IO[bytes], key: str) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """(shape, fortran order, dtype, header length) of a ``.npy`` stream, validated."""
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream, max_header_size=MAX_HEADER)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream, max_header_size=MAX_HEADER)
        else:
            raise NpzError(f"{key}: unknown .npy format version {version}")
    except NpzError:
        raise
    except Exception as exc:  # noqa: BLE001 - numpy parses the header text with tokenize/ast:
        # hostile text raises TokenError, SyntaxError, MemoryError (deep nesting)...
        raise NpzError(f"{key}: bad .npy header ({_plain(exc)})") from None
    if dtype.hasobject:
        raise NpzError(f"{key}: holds pickled objects, which picksel never loads")
    if any(not isinstance(d, int) or d < 0 for d in shape):
        raise NpzError(f"{key}: bad shape {shape}")
    return shape, bool(fortran), dtype, stream.tell()


def _check_member(info: zipfile.ZipInfo, file_size: int, key: str) -> None:
    """What must hold of a member before any of it is read: not encrypted, inside the
    file, and a stored member's two sizes equal."""
    if info.flag_bits & 0x1:
        raise NpzError(f"{key}: encrypted")
    if info.compress_size > file_size or info.header_offset + info.compress_size > file_size:
        raise NpzError(f"{key}: member runs past the end of the file (truncated?)")
    if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
        raise NpzError(f"{key}: stored member sizes disagree")


def _read_member(
    zf: zipfile.ZipFile, fh: IO[bytes], info: zipfile.ZipInfo, file_size: int, key: str
) -> np.ndarray:
    _check_member(info, file_size, key)
    if info.compress_type == zipfile.ZIP_STORED:
        return _read_stored(fh, info, key)
    if info.file_size > MAX_INFLATE * info.compress_size + 4096:
        raise NpzError(
            f"{key}: claims {info.file_size} bytes from {info.compress_size} compressed (a zip bomb?)"
        )
    with zf.open(info) as stream:  # zipfile checks this member's CRC as it reaches the end
        shape, fortran, dtype, header_len = _read_header(stream, key)
        nbytes = _check_size(shape, dtype, header_len, info.file_size, key)
        data = stream.read(nbytes)
        if len(data) != nbytes or stream.read(1):
            raise NpzError(f"{key}: member size does not match its header")
    return np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C")


def _check_size(shape: tuple[int, ...], dtype: np.dtype, header_len: int, member: int, key: str) -> int:
    nbytes = math.prod(shape) * dtype.itemsize
    if header_len + nbytes != member:
        dims = "×".join(str(d) for d in shape) or "scalar"
        raise NpzError(
            f"{key}: header claims {dims} {dtype} values but the member holds {member - header_len} bytes"
        )
    return nbytes


def _stored_start(fh: IO[bytes], info: zipfile.ZipInfo, key: str) -> int:
    """Offset of a stored member's first byte (its .npy header), from its local header."""
    fh.seek(info.header_offset)
    local = fh.read(zipfile.sizeFileHeader)
    if len(local) != zipfile.sizeFileHeader:
        raise NpzError(f"{key}: truncated zip header")
    fields = struct.unpack(zipfile.structFileHeader, local)
    if fields[zipfile._FH_SIGNATURE] != zipfile.stringFileHeader:
        raise NpzError(f"{key}: bad zip header")
    return (
        info.header_offset
        + zipfile.sizeFileHeader
        + fields[zipfile._FH_FILENAME_LENGTH]
        + fields[zipfile._FH_EXTRA_FIELD_LENGTH]
    )


def _read_stored(fh: IO[bytes], info: zipfile.ZipInfo, key: str) -> np.ndarray:
    """Read a stored member straight into its array, checking its CRC on the way."""
    start = _stored_start(fh, info, key)
    fh.seek(start)
    shape, fortran, dtype, end = _read_header(fh, key)
    header_len = end - start
    nbytes = _check_size(shape, dtype, header_len, info.file_size, key)
    fh.seek(start)
    crc = zlib.crc32(fh.read(header_len))
    # np.empty, not bytearray: no pass zeroing 300 MB that the read overwrites anyway.
    arr = np.empty(math.prod(shape), dtype=dtype)
    view = memoryview(arr.view(np.uint8)) if nbytes else memoryview(b"")
    done = 0
    while done < nbytes:
        got = fh.readinto(view[done : done + _CHUNK * 16])
        if not got:
            raise NpzError(f"{key}: truncated data")
        done += got
    crc = zlib.crc32(view, crc)
    if crc != info.CRC:
        raise NpzError(f"{key}: checksum mismatch (the file is damaged)")
    return arr.reshape(shape, order="F" if fortran else "C")
