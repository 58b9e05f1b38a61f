"""The optional CLIP encoder, with randomly initialised weights (nothing is downloaded).

Run with ``make test-clip`` (installs the ``clip`` extra); skipped without open_clip.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.clip
open_clip = pytest.importorskip("open_clip")
torch = pytest.importorskip("torch")

from picksel.encoders import encode_paths, get_encoder  # noqa: E402
from picksel.encoders.clip import load_clip  # noqa: E402
from picksel.errors import PickselError  # noqa: E402
from picksel.index import build_index, load_index  # noqa: E402

MODEL = "ViT-B-32"


@pytest.fixture(scope="module")
def random_clip():
    torch.manual_seed(0)
    return load_clip(MODEL, None)


def test_random_clip_encodes_unit_rows(random_clip, demo_images):
    assert random_clip.id == f"clip:{MODEL}/random" and random_clip.dim == 512
    imgs = list(demo_images.values())[:3]
    out = random_clip.encode_images(imgs)
    assert out.dtype == np.float32 and out.shape == (3, 512)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(out, random_clip.encode_images(imgs), atol=1e-5)
    assert random_clip.encode_images([]).shape == (0, 512)


def test_generic_decode_path(random_clip, small_album: Path):
    files = [small_album / "digits" / "00.png", small_album / "digits" / "broken.jpg"]
    res = encode_paths(random_clip, files)
    assert res[0][0] is not None and res[0][0].shape == (512,)
    assert res[1][0] is None and res[1][1]


def test_missing_weights_is_a_clear_error(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    with pytest.raises(PickselError, match="never downloads"):
        get_encoder(f"clip:{MODEL}/laion2b_s34b_b79k")
    with pytest.raises(PickselError, match="unknown CLIP model"):
        get_encoder("clip:NoSuchModel/x")


def test_weights_file_and_build_index(random_clip, tmp_path: Path, small_album: Path, demo_images):
    weights = tmp_path / "w.pt"
    torch.save(random_clip._model.state_dict(), weights)
    enc = get_encoder(f"clip:{MODEL}/{weights}")
    assert enc.id == f"clip:{MODEL}/{weights}" and enc.dim == 512
    imgs = list(demo_images.values())[:2]
    np.testing.assert_allclose(enc.encode_images(imgs), random_clip.encode_images(imgs), atol=1e-4)
    idx, rep = build_index(small_album, encoder=f"clip:{MODEL}/{weights}")
    assert idx.encoder == enc.id and idx.embeddings.shape[1] == 512
    assert rep.failures and rep.failures[0][0] == "digits/broken.jpg"
    assert load_index(small_album).encoder == enc.id
