"""Read one big array out of an ``.npz`` fast and without pickles.

``np.load(npz)[key]`` streams an uncompressed member through ``zipfile`` in 256 KB
chunks and checks its CRC in Python-visible steps: for a 100,000 × 768 float32 matrix
(300 MB) that is most of the load time. ``np.savez`` stores members uncompressed, so the
member's bytes sit contiguously in the file: we find them from the zip headers and read
them straight into the array (one copy, no CRC pass). Anything unusual (compressed,
encrypted, a newer .npy header) falls back to ``np.load``. Object arrays are refused
either way — nothing is ever unpickled.
"""

from __future__ import annotations

import math
import struct
import zipfile
from pathlib import Path

import numpy as np


def read_npz_array(path: Path, key: str) -> np.ndarray:
    """``np.load(path, allow_pickle=False)[key]``, fast for stored members.
    Raises KeyError (no such key), ValueError (object array, bad sizes), OSError,
    zipfile.BadZipFile."""
    path = Path(path)
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(key + ".npy")
    if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
        with np.load(path, allow_pickle=False) as npz:
            return npz[key]
    with open(path, "rb") as fh:
        fh.seek(info.header_offset)
        header = fh.read(zipfile.sizeFileHeader)
        if len(header) != zipfile.sizeFileHeader:
            raise ValueError(f"{key}: truncated zip header")
        fields = struct.unpack(zipfile.structFileHeader, header)
        if fields[zipfile._FH_SIGNATURE] != zipfile.stringFileHeader:
            raise ValueError(f"{key}: bad zip header")
        start = (
            info.header_offset
            + zipfile.sizeFileHeader
            + fields[zipfile._FH_FILENAME_LENGTH]
            + fields[zipfile._FH_EXTRA_FIELD_LENGTH]
        )
        fh.seek(start)
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
        else:  # pragma: no cover - future header versions: let numpy handle them
            with np.load(path, allow_pickle=False) as npz:
                return npz[key]
        if dtype.hasobject:
            raise ValueError("Object arrays cannot be loaded when allow_pickle=False")
        count = math.prod(shape)
        header_len = fh.tell() - start
        if header_len + count * dtype.itemsize != info.file_size:
            raise ValueError(f"{key}: member size does not match its header")
        arr = np.fromfile(fh, dtype=dtype, count=count)
        if arr.size != count:
            raise ValueError(f"{key}: truncated data")
    return arr.reshape(shape, order="F" if fortran else "C")
