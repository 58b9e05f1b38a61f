"""Image encoders: turn images into L2-normalised float32 vectors.

An encoder spec is a short string the user types (``builtin``, ``clip``,
``clip:ViT-B-32/laion2b_s34b_b79k``); the encoder's ``id`` is the canonical form stored in
the index, so a changed spec means every image is re-encoded (vectors from different
encoders are not comparable).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
from PIL import Image

from picksel.errors import CancelFn, Cancelled, PickselError
from picksel.imageio import UnreadableImage, open_image
from picksel.quality import ImageMeasures


@runtime_checkable
class Encoder(Protocol):
    id: str
    dim: int

    def encode_images(self, images: list[Image.Image]) -> np.ndarray:
        """float32 (n, dim), L2-normalised rows."""
        ...


BUILTIN_SPECS = ("builtin", "builtin:v1")


def canonical_spec(spec: str) -> str:
    """The id ``get_encoder(spec)`` would produce, without loading anything (used to decide
    whether an index must be re-encoded before paying for a model load)."""
    spec = (spec or "builtin").strip()
    if spec in BUILTIN_SPECS:
        from picksel.encoders.builtin import ID

        return ID
    if spec == "clip" or spec.startswith("clip:"):
        from picksel.encoders.clip import parse_spec

        model, pretrained = parse_spec(spec)
        return f"clip:{model}/{pretrained}"
    raise PickselError(
        f"unknown encoder {spec!r}: use 'builtin' or 'clip' (optionally 'clip:MODEL/PRETRAINED')"
    )


def get_encoder(spec: str = "builtin") -> Encoder:
    """The encoder for ``spec``. PickselError for an unknown spec, a missing optional extra
    or weights that are not on this machine (picksel never downloads weights)."""
    spec = (spec or "builtin").strip()
    if spec in BUILTIN_SPECS:
        from picksel.encoders.builtin import BuiltinEncoder

        return BuiltinEncoder()
    if spec == "clip" or spec.startswith("clip:"):
        from picksel.encoders.clip import load_clip, parse_spec

        model, pretrained = parse_spec(spec)
        return load_clip(model, pretrained)
    canonical_spec(spec)  # raises the unknown-spec error
    raise AssertionError("unreachable")  # pragma: no cover


def encode_paths(
    encoder: Encoder, paths: Sequence[Path], cancel: CancelFn | None = None,
    measures: dict[str, ImageMeasures] | None = None,
) -> list[tuple[np.ndarray | None, str]]:
    """Decode and encode files: (vector, "") or (None, reason) per path, in order; with
    ``measures``, each decoded file's quality measures go there (by ``str(path)``).

    Encoders with their own ``encode_paths(paths, cancel, measures)`` (the builtin one,
    which decodes in worker processes) use it; others get files decoded here at their
    ``input_size``. ``cancel`` is checked while working and raises ``Cancelled``."""
    own = getattr(encoder, "encode_paths", None)
    if own is not None:
        if measures is None:
            return own(paths, cancel=cancel)
        return own(paths, cancel=cancel, measures=measures)
    side = int(getattr(encoder, "input_size", 256))
    # Quality measures share the decode. A JPEG is drafted to the model's input size
    # here, not to ``measuring.DRAFT_SIDE``: measured at the same 256-px working scale,
    # from a slightly finer DCT scale than ``picksel check`` would use.
    inspect = None
    if measures is not None:
        from picksel.measuring import measure_loaded

        inspect = measure_loaded
    out: list[tuple[np.ndarray | None, str]] = [(None, "")] * len(paths)
    images: list[Image.Image] = []
    slots: list[int] = []
    for i, p in enumerate(paths):
        if cancel is not None and cancel():
            raise Cancelled()
        try:
            images.append(open_image(Path(p), max_side=side, inspect=inspect))
            slots.append(i)
            if measures is not None:
                measures[str(p)] = images[-1].info["inspected"]
        except UnreadableImage as exc:
            out[i] = (None, str(exc))
    if images:
        vecs = np.asarray(encoder.encode_images(images), dtype=np.float32)
        for row, i in enumerate(slots):
            out[i] = (vecs[row], "")
    return out


def close_encoder(encoder: Encoder) -> None:
    """Release worker pools / models held by an encoder (optional ``close()``)."""
    close = getattr(encoder, "close", None)
    if close is not None:
        close()
