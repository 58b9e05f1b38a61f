"""``clip``: OpenCLIP image embeddings (optional extra ``picksel[clip]``).

picksel never downloads anything at run time: users run it on NAS boxes and air-gapped
GPU servers, and a silent multi-hundred-megabyte download in the middle of indexing is a
surprise nobody wants. So weights come only from a file the user names or from the local
caches OpenCLIP and Hugging Face already filled; otherwise a PickselError says what to do.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from picksel.errors import PickselError

DEFAULT_MODEL = "ViT-B-32"
DEFAULT_PRETRAINED = "laion2b_s34b_b79k"
RANDOM = "random"
"""Pretrained tag of the randomly initialised model used by tests (never by users)."""

_EXTRA_MSG = "the clip encoder needs the optional extra: pip install 'picksel[clip]'"
_HF_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")


def parse_spec(spec: str) -> tuple[str, str]:
    """``clip`` / ``clip:MODEL`` / ``clip:MODEL/PRETRAINED`` → (model, pretrained).
    PRETRAINED may be a path to a weights file (it may contain '/')."""
    rest = spec.strip()[len("clip"):]
    if not rest:
        return DEFAULT_MODEL, DEFAULT_PRETRAINED
    if not rest.startswith(":") or len(rest) == 1:
        raise PickselError(f"bad encoder spec {spec!r}: use clip:MODEL/PRETRAINED")
    model, _, pretrained = rest[1:].partition("/")
    if not model:
        raise PickselError(f"bad encoder spec {spec!r}: use clip:MODEL/PRETRAINED")
    return model, pretrained or DEFAULT_PRETRAINED


def _import_open_clip():  # noqa: ANN202 - optional dependency
    # Set before huggingface_hub is imported anywhere: a cache miss must fail, not fetch.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import open_clip  # type: ignore[import-not-found]
        import torch  # type: ignore[import-not-found]
    except ImportError as exc:
        raise PickselError(_EXTRA_MSG) from exc
    return open_clip, torch


def _cached_weights(open_clip, model: str, tag: str) -> str | None:  # noqa: ANN001
    """Path of already-downloaded weights for (model, tag), or None. Looks where OpenCLIP
    itself would download to, without ever letting it download."""
    try:
        cfg = open_clip.get_pretrained_cfg(model, tag) or {}
    except Exception:  # noqa: BLE001 - unknown model/tag: reported by the caller
        cfg = {}
    if not cfg:
        return None
    url = cfg.get("url") or ""
    if url:
        candidate = Path("~/.cache/clip").expanduser() / os.path.basename(url)
        if candidate.is_file():
            return str(candidate)
    hub = (cfg.get("hf_hub") or "").strip("/")
    if hub:
        try:
            from huggingface_hub import try_to_load_from_cache  # type: ignore[import-not-found]
        except ImportError:
            return None
        parts = hub.split("/")
        repo_id, prefix = "/".join(parts[:2]), "/".join(parts[2:])
        for name in _HF_FILES:
            filename = f"{prefix}/{name}" if prefix else name
            found = try_to_load_from_cache(repo_id, filename)
            if isinstance(found, str) and os.path.isfile(found):
                return found
    return None


class ClipEncoder:
    """OpenCLIP image tower; rows L2-normalised like PhotoMapAI's embeddings."""

    def __init__(self, model, preprocess, torch, encoder_id: str, dim: int, image_size: int) -> None:  # noqa: ANN001
        self._model = model
        self._preprocess = preprocess
        self._torch = torch
        self.id = encoder_id
        self.dim = dim
        # Decode large enough that the shorter side still covers the model's crop.
        self.input_size = 2 * image_size
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self._model.to(self.device)
        self.batch_size = 32

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        torch = self._torch
        if not images:
            return np.zeros((0, self.dim), np.float32)
        out = []
        for start in range(0, len(images), self.batch_size):
            batch = torch.stack(
                [self._preprocess(im.convert("RGB")) for im in images[start : start + self.batch_size]]
            ).to(self.device)
            with torch.no_grad():
                feats = self._model.encode_image(batch).float()
            feats = feats / feats.norm(dim=-1, keepdim=True).clamp_min(1e-12)
            out.append(feats.cpu().numpy())
        return np.concatenate(out).astype(np.float32, copy=False)

    def close(self) -> None:
        """Nothing to release eagerly; the model goes with the object."""


def load_clip(model: str = DEFAULT_MODEL, pretrained: str | None = DEFAULT_PRETRAINED) -> ClipEncoder:
    """Build the encoder. ``pretrained`` is an OpenCLIP tag, a weights file, or None
    (random weights: the test hook, never reachable from a user spec)."""
    open_clip, torch = _import_open_clip()
    if model not in open_clip.list_models():
        raise PickselError(
            f"unknown CLIP model {model!r}; known models include "
            + ", ".join(sorted(open_clip.list_models())[:8])
            + ", …"
        )
    if pretrained is None:
        weights, encoder_id = None, f"clip:{model}/{RANDOM}"
    elif os.path.isfile(os.path.expanduser(pretrained)):
        weights = os.path.expanduser(pretrained)
        encoder_id = f"clip:{model}/{pretrained}"
    else:
        weights = _cached_weights(open_clip, model, pretrained)
        encoder_id = f"clip:{model}/{pretrained}"
        if weights is None:
            raise PickselError(
                f"weights for clip:{model}/{pretrained} are not on this machine and picksel "
                "never downloads; fetch them once with open_clip (or Hugging Face) so they "
                "are in the local cache, or pass a file: --encoder clip:MODEL/PATH"
            )
    try:
        net, _, preprocess = open_clip.create_model_and_transforms(model, pretrained=weights)
    except Exception as exc:  # noqa: BLE001 - bad weights file, wrong architecture
        raise PickselError(f"cannot load clip:{model}/{pretrained}: {exc}") from exc
    net.eval()
    visual = net.visual
    size = getattr(visual, "image_size", 224)
    size = int(size[0] if isinstance(size, tuple | list) else size)
    dim = int(getattr(visual, "output_dim", 0) or 0)
    if not dim:
        with torch.no_grad():
            dim = int(net.encode_image(torch.zeros(1, 3, size, size)).shape[-1])
    return ClipEncoder(net, preprocess, torch, encoder_id, dim, size)
