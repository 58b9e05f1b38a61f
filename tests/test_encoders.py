from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageFilter

from picksel.encoders import Encoder, canonical_spec, encode_paths, get_encoder
from picksel.encoders.builtin import DIM, ID, BuiltinEncoder, describe
from picksel.encoders.clip import parse_spec
from picksel.errors import PickselError

HAS_OPEN_CLIP = importlib.util.find_spec("open_clip") is not None


def _digits(n: int) -> list[Image.Image]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return [
        Image.fromarray((d.images[i] / 16 * 255).astype(np.uint8)).resize((64, 64), Image.NEAREST).convert("RGB")
        for i in range(n)
    ]


def test_builtin_contract(demo_images):
    enc = get_encoder("builtin")
    assert isinstance(enc, Encoder)
    assert enc.id == ID == "builtin:v1" and enc.dim == DIM
    assert 300 <= DIM <= 600
    imgs = list(demo_images.values())[:4]
    out = enc.encode_images(imgs)
    assert out.dtype == np.float32 and out.shape == (4, DIM)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(out, enc.encode_images(imgs))  # deterministic
    assert enc.encode_images([]).shape == (0, DIM)
    assert get_encoder("builtin:v1").id == ID


def test_builtin_sees_colour_layout_and_texture(demo_images):
    photo = demo_images["china"]
    base = describe(photo)
    similar = describe(ImageEnhance.Brightness(photo.resize((320, 213))).enhance(1.05))
    recoloured = describe(Image.merge("RGB", photo.split()[::-1]))  # swap R and B
    flipped = describe(photo.transpose(Image.Transpose.FLIP_TOP_BOTTOM))
    other = describe(demo_images["flower"])
    d = lambda a, b: 1.0 - float(a @ b)  # noqa: E731
    assert d(base, similar) < d(base, recoloured)
    assert d(base, similar) < d(base, flipped)
    assert d(base, similar) < d(base, other)


def test_garbage_lands_far_from_photos_and_digits(demo_images):
    """The FPS outlier workflow relies on this: black frames, noise and heavy blur must be
    farther from every normal image than normal images are from their nearest neighbour."""
    photos = list(demo_images.values())
    normal = photos + _digits(10)
    emb = np.stack([describe(im) for im in normal])
    sims = emb @ emb.T
    np.fill_diagonal(sims, -1)
    nn = 1.0 - sims.max(axis=1)
    typical = float(np.median(nn))
    rng = np.random.default_rng(0)
    garbage = {
        "black": Image.new("RGB", (300, 200)),
        "white": Image.new("RGB", (300, 200), (255, 255, 255)),
        "noise": Image.fromarray(rng.integers(0, 256, (200, 300, 3), dtype=np.uint8)),
        "blur": demo_images["coffee"].filter(ImageFilter.GaussianBlur(25)),
        "tiny": demo_images["coffee"].resize((12, 8), Image.Resampling.BOX),
    }
    for name, im in garbage.items():
        dist = 1.0 - emb @ describe(im)
        assert dist.min() > typical, (name, dist.min(), typical)
    digit_nn_max = float(nn[len(photos):].max())
    for name in ("black", "white", "noise", "tiny"):
        dist = 1.0 - emb[len(photos):] @ describe(garbage[name])
        assert dist.min() > 1.5 * digit_nn_max, name


def test_encode_paths_serial_and_pool_agree_and_report_failures(tmp_path: Path, demo_images):
    paths = []
    for i, im in enumerate(list(demo_images.values()) * 5):
        p = tmp_path / f"{i:03d}.jpg"
        im.resize((200, 150)).rotate(i).save(p, quality=85)
        paths.append(p)
    (tmp_path / "bad.jpg").write_bytes(b"garbage")
    paths.insert(3, tmp_path / "bad.jpg")
    assert len(paths) >= 32  # large enough for the worker pool
    serial = BuiltinEncoder(workers=1).encode_paths(paths)
    enc = BuiltinEncoder(workers=2)
    try:
        pooled = enc.encode_paths(paths)
    finally:
        enc.close()
    assert serial[3] == (None, "not an image") and pooled[3][0] is None
    for (a, ra), (b, rb) in zip(serial, pooled, strict=True):
        assert ra == rb
        if a is not None:
            np.testing.assert_allclose(a, b, atol=1e-6)


class _Fake:
    """A minimal third-party encoder: exercises the generic decode path."""

    id = "fake:1"
    dim = 3
    input_size = 32

    def __init__(self) -> None:
        self.sizes: list[tuple[int, int]] = []

    def encode_images(self, images):
        self.sizes += [im.size for im in images]
        out = np.array([np.asarray(im, np.float32).mean(axis=(0, 1)) + 1 for im in images], np.float32)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def test_generic_encode_paths(tmp_path: Path, demo_images):
    demo_images["china"].save(tmp_path / "a.png")
    (tmp_path / "z.jpg").write_bytes(b"")
    fake = _Fake()
    res = encode_paths(fake, [tmp_path / "a.png", tmp_path / "z.jpg"])
    assert res[0][0] is not None and res[0][0].shape == (3,)
    assert res[1] == (None, "zero-byte file")
    assert max(fake.sizes[0]) == 32


def test_specs():
    assert parse_spec("clip") == ("ViT-B-32", "laion2b_s34b_b79k")
    assert parse_spec("clip:ViT-L-14/dfn2b_s39b") == ("ViT-L-14", "dfn2b_s39b")
    assert parse_spec("clip:ViT-B-32//models/w.bin") == ("ViT-B-32", "/models/w.bin")
    assert parse_spec("clip:RN50") == ("RN50", "laion2b_s34b_b79k")
    assert canonical_spec("clip") == "clip:ViT-B-32/laion2b_s34b_b79k"
    assert canonical_spec("builtin") == "builtin:v1"
    with pytest.raises(PickselError, match="unknown encoder"):
        get_encoder("dinov2")
    with pytest.raises(PickselError, match="bad encoder spec"):
        parse_spec("clip:")


@pytest.mark.skipif(HAS_OPEN_CLIP, reason="open_clip is installed here")
def test_clip_without_extra_is_a_clear_error():
    with pytest.raises(PickselError, match=r"pip install 'picksel\[clip\]'"):
        get_encoder("clip")


def test_defect_directions_are_zero_for_photos_and_set_for_garbage(demo_images):
    from picksel.encoders.builtin import N_DEFECTS

    for name, im in demo_images.items():
        assert not describe(im)[-N_DEFECTS:].any(), name
    black = describe(Image.new("RGB", (50, 50)))[-N_DEFECTS:]
    white = describe(Image.new("RGB", (50, 50), (255, 255, 255)))[-N_DEFECTS:]
    grey_noise = describe(
        Image.fromarray(np.random.default_rng(2).integers(0, 256, (128, 128), dtype=np.uint8)).convert("RGB")
    )[-N_DEFECTS:]
    assert black[0] > 0 and black[1] == 0 and white[1] > 0 and white[0] == 0
    assert grey_noise[2] > 0  # no channel decorrelation: caught by pixel-scale energy
    # resolution is judged from the file's size, not the reduced decode
    small = demo_images["china"].resize((20, 14))
    big = demo_images["china"].resize((100, 70))
    big.info["original_size"] = (20, 14)
    assert describe(small)[-1] > 0 and describe(big)[-1] > 0
