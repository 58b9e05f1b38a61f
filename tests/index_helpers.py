"""Builders for index tests: bad image files and PhotoMapAI index layouts."""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def save_jpeg(img: Image.Image, path: Path, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.convert("RGB").save(path, "JPEG", quality=90, **kw)
    return path


def truncated_copy(src: Path, dest: Path, keep: float = 0.5) -> Path:
    data = src.read_bytes()
    dest.write_bytes(data[: int(len(data) * keep)])
    return dest


def truncated_png(img: Image.Image, dest: Path) -> Path:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    data = buf.getvalue()
    dest.write_bytes(data[: len(data) // 2])
    return dest


def bomb_png(dest: Path, width: int = 100_000, height: int = 100_000) -> Path:
    """A ~70-byte PNG whose header claims width×height pixels (valid CRC), the classic
    decompression bomb shape: cheap to store, ruinous to decode."""
    buf = io.BytesIO()
    Image.new("L", (8, 8)).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    # IHDR data starts at byte 16 (8 signature + 4 length + 4 type).
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    dest.write_bytes(bytes(data))
    return dest


def exif_rotated_jpeg(img: Image.Image, dest: Path, orientation: int = 6) -> Path:
    """Store ``img`` rotated so that applying EXIF orientation 6 (rotate 90° CW on display)
    restores ``img``."""
    stored = img.transpose(Image.Transpose.ROTATE_90)  # CCW; orientation 6 undoes it
    exif = Image.Exif()
    exif[0x0112] = orientation
    return save_jpeg(stored, dest, exif=exif.tobytes())


def bump_mtime(path: Path, seconds: float = 10.0) -> None:
    st = path.stat()
    os.utime(path, (st.st_atime, st.st_mtime + seconds))


class Boom:
    """Unpickling this raises: proof that a loader never unpickles ``metadata``."""

    def __reduce__(self):  # noqa: ANN204
        return (_explode, ("metadata was unpickled",))


def _explode(msg: str) -> None:
    raise AssertionError(msg)


def write_photomap(
    folder: Path,
    files: list[Path],
    embeddings: np.ndarray,
    *,
    model_id: str | None = "open-clip:ViT-L-14/dfn2b_s39b",
    with_dim: bool = True,
    umap: np.ndarray | None = None,
    umap_stale: bool = False,
    metadata: object = None,
    mtimes: np.ndarray | None = None,
) -> Path:
    """Write ``folder/photomap_index/{embeddings,umap}.npz`` in PhotoMapAI's layout,
    including the pickled ``metadata`` object array it always has."""
    pm = folder / "photomap_index"
    pm.mkdir(parents=True, exist_ok=True)
    names = np.array([str(p) for p in files]) if files else np.array([], dtype=np.float64)
    meta = np.empty(len(files), dtype=object)
    for i in range(len(files)):
        meta[i] = metadata if metadata is not None else {"i": i, "caption": f"image {i}"}
    arrays = {
        "embeddings": np.asarray(embeddings, dtype=np.float32),
        "filenames": names,
        "modification_times": (
            mtimes if mtimes is not None else np.array([p.stat().st_mtime for p in files], dtype=np.float64)
        ),
        "metadata": meta,
    }
    if model_id is not None:
        arrays["model_id"] = np.array(model_id)
    if with_dim:
        arrays["embedding_dim"] = np.array(embeddings.shape[1] if embeddings.ndim == 2 else 0)
    np.savez(pm / "embeddings.npz", **arrays)
    if umap is not None:
        np.savez(pm / "umap.npz", umap=np.asarray(umap, dtype=np.float32))
        emb_mtime = (pm / "embeddings.npz").stat().st_mtime
        t = emb_mtime - 100 if umap_stale else emb_mtime + 1
        os.utime(pm / "umap.npz", (t, t))
    return pm


def unit_rows(n: int, d: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)
