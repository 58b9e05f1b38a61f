"""Duplicate groups: exact (same decoded pixels) and near (re-encoded, resized, mirrored,
brightened, slightly cropped), as pure functions over per-image hashes.

Why multi-index hashing: comparing every pair of 100,000 perceptual hashes is 5·10⁹
popcounts. Split the 64 bits into ``BANDS`` bands; two hashes within ``radius`` bits of
each other differ in at most ``radius // BANDS`` bits of some band (pigeonhole), so it
suffices to look up, for every band, the bucket of each hash's band value and of its
neighbours within that many bits. With three bands (a bucket table of 2²² entries each)
and a radius of 8, 232 look-ups per band find every pair exactly (tests compare with
brute force): 100,000 hashes in seconds, memory linear in N.

A candidate pair is confirmed by its 16×16 grey thumbnails (``THUMB_MIN_CORR``): pHash
alone puts unrelated low-detail images (two handwritten 1s of the demo album correlate up
to 0.988) within a few bits, while altered copies of one photo correlate ≥ 0.99 (JPEG,
mirror, brightness, noise; 5 % crops through the centre variant).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

BITS = 64
BANDS = 3
NEAR_BITS = 8
"""Perceptual hashes at most this many bits apart are near-duplicate candidates."""
THUMB_MIN_CORR = 0.99
"""… confirmed when their mirror-canonical 16×16 thumbnails correlate at least this much."""

_M1 = np.uint64(0x5555555555555555)
_M2 = np.uint64(0x3333333333333333)
_M4 = np.uint64(0x0F0F0F0F0F0F0F0F)
_H01 = np.uint64(0x0101010101010101)


def popcount(x: np.ndarray) -> np.ndarray:
    """Set bits of each uint64 (numpy's bitwise_count where present)."""
    x = np.asarray(x, np.uint64)
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(x).astype(np.int64)
    x = x - ((x >> np.uint64(1)) & _M1)
    x = (x & _M2) + ((x >> np.uint64(2)) & _M2)
    x = (x + (x >> np.uint64(4))) & _M4
    return ((x * _H01) >> np.uint64(56)).astype(np.int64)


def hamming_pairs_brute(hashes: np.ndarray, radius: int) -> np.ndarray:
    """Every pair (i < j) within ``radius`` bits, by comparing all pairs: the reference
    the fast search is tested against, and the bench baseline."""
    h = np.asarray(hashes, np.uint64)
    out = []
    for i in range(len(h) - 1):
        d = popcount(h[i + 1 :] ^ h[i])
        js = np.nonzero(d <= radius)[0] + i + 1
        out.append(np.stack([np.full(len(js), i), js], axis=1))
    return _sorted_pairs(np.concatenate(out) if out else np.zeros((0, 2), np.int64))


def _sorted_pairs(pairs: np.ndarray) -> np.ndarray:
    pairs = np.asarray(pairs, np.int64).reshape(-1, 2)
    if not len(pairs):
        return pairs
    pairs = np.unique(pairs, axis=0)
    return pairs


def _band_masks(width: int, flips: int) -> np.ndarray:
    """Every value with at most ``flips`` of the low ``width`` bits set."""
    masks = [0]
    for k in range(1, flips + 1):
        for combo in itertools.combinations(range(width), k):
            masks.append(sum(1 << b for b in combo))
    return np.array(masks, np.uint64)


def hamming_pairs(hashes: np.ndarray, radius: int = NEAR_BITS, bands: int = BANDS) -> np.ndarray:
    """Every pair (i < j, sorted rows) of 64-bit hashes at most ``radius`` bits apart:
    exactly the brute-force answer, without an N×N matrix (see module docstring)."""
    if not 1 <= bands <= BITS or radius < 0:
        raise ValueError(f"bands must be 1..{BITS} and radius ≥ 0 (got {bands}, {radius})")
    h = np.asarray(hashes, np.uint64)
    n = len(h)
    if n < 2:
        return np.zeros((0, 2), np.int64)
    flips = radius // bands
    widths = [BITS // bands + (1 if b < BITS % bands else 0) for b in range(bands)]
    found: list[np.ndarray] = []
    shift = 0
    for width in widths:
        keys = ((h >> np.uint64(shift)) & np.uint64((1 << width) - 1)).astype(np.int64)
        shift += width
        # A bucket table instead of a sorted search: one gather per probe.
        counts = np.bincount(keys, minlength=1 << width)
        starts = np.cumsum(counts) - counts
        order = np.argsort(keys, kind="stable")
        for mask in _band_masks(width, flips).astype(np.int64):
            probe = keys ^ mask
            c_all = counts[probe]
            hit = np.nonzero(c_all)[0]
            if not len(hit):
                continue
            c = c_all[hit]
            qi = np.repeat(hit, c)
            first = np.repeat(starts[probe[hit]] - (np.cumsum(c) - c), c)
            cj = order[np.arange(len(qi)) + first]
            keep = qi < cj
            qi, cj = qi[keep], cj[keep]
            close = popcount(h[qi] ^ h[cj]) <= radius
            if close.any():
                found.append(np.stack([qi[close], cj[close]], axis=1))
    if not found:
        return np.zeros((0, 2), np.int64)
    return _sorted_pairs(np.concatenate(found))


def thumb_corr(thumbs: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Pearson correlation of the two thumbnails of each pair (1.0 for two flat ones)."""
    if not len(pairs):
        return np.zeros(0, np.float64)
    t = thumbs.reshape(len(thumbs), -1).astype(np.float64)
    t = t - t.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(t, axis=1)
    a, b = pairs[:, 0], pairs[:, 1]
    num = np.einsum("ij,ij->i", t[a], t[b])
    den = norm[a] * norm[b]
    flat = den < 1e-9
    out = np.where(flat, 0.0, num / np.where(flat, 1.0, den))
    return np.where(flat & (norm[a] < 1e-9) & (norm[b] < 1e-9), 1.0, out)


def union_find(n: int, pairs: np.ndarray) -> np.ndarray:
    """Group label of each of ``n`` items (the smallest member's index) given linked
    pairs: union by smaller root, path halving."""
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in np.asarray(pairs, np.int64).reshape(-1, 2).tolist():
        ra, rb = find(a), find(b)
        if ra != rb:
            if ra < rb:
                parent[rb] = ra
            else:
                parent[ra] = rb
    return np.array([find(i) for i in range(n)], np.int64)


@dataclass
class DuplicateGroup:
    keep: int
    copies: list[int]
    kind: str  # "exact" when every member has the same pixels, else "near"


def near_pairs(phashes: np.ndarray, thumbs: np.ndarray, radius: int = NEAR_BITS,
               min_corr: float = THUMB_MIN_CORR) -> np.ndarray:
    """Near-duplicate pairs (i < j). ``phashes`` is N × V (hash variants of each image:
    whole, centre) and ``thumbs`` N × V × side × side: two images are candidates when any
    variant of one is within ``radius`` bits of any variant of the other, and confirmed
    when the best-correlating pair of their thumbnails reaches ``min_corr``."""
    ph = np.asarray(phashes, np.uint64)
    n = len(ph)
    ph = ph.reshape(n, -1)
    variants = ph.shape[1]
    cand = hamming_pairs(ph.T.ravel(), radius) % n  # row v*n+i is variant v of image i
    cand = np.sort(cand, axis=1)
    cand = cand[cand[:, 0] != cand[:, 1]]
    cand = _sorted_pairs(cand)
    if not len(cand):
        return cand
    th = np.asarray(thumbs).reshape(n, variants, -1)
    best = np.full(len(cand), -1.0)
    for va in range(variants):
        for vb in range(variants):
            corr = thumb_corr(np.concatenate([th[:, va], th[:, vb]]), cand + np.array([0, n]))
            best = np.maximum(best, corr)
    return cand[best >= min_corr]


def exact_pairs(pixel_hashes: np.ndarray) -> np.ndarray:
    """Pairs linking each image to the first image with the same pixel hash."""
    h = np.asarray(pixel_hashes, np.uint64)
    order = np.argsort(h, kind="stable")
    hs = h[order]
    same = np.nonzero(hs[1:] == hs[:-1])[0]
    if not len(same):
        return np.zeros((0, 2), np.int64)
    # link each equal neighbour to its predecessor in sorted order (a chain is enough)
    return _sorted_pairs(np.sort(np.stack([order[same], order[same + 1]], axis=1), axis=1))


def group(
    n: int,
    pairs: np.ndarray,
    pixel_hashes: np.ndarray,
    paths: Sequence[str],
    pixels: np.ndarray,
    sharp: np.ndarray,
    pinned: set[str] | frozenset[str] = frozenset(),
) -> list[DuplicateGroup]:
    """Union-find the linked pairs into groups of two or more, each naming the image to
    keep: a pinned one, else the most pixels, else the sharpest, else the first path."""
    labels = union_find(n, pairs)
    members: dict[int, list[int]] = {}
    for i, lab in enumerate(labels.tolist()):
        members.setdefault(lab, []).append(i)
    groups = []
    for idx in members.values():
        if len(idx) < 2:
            continue
        keep, copies = keeper_first(idx, paths, pixels, sharp, lambda i: paths[i] in pinned)
        hashes = {int(pixel_hashes[i]) for i in idx}
        groups.append(DuplicateGroup(keep, copies, "exact" if len(hashes) == 1 else "near"))
    groups.sort(key=lambda g: paths[g.keep])
    return groups


def keeper_first(
    members: Sequence[int],
    paths: Sequence[str],
    pixels: np.ndarray,
    sharp: np.ndarray,
    is_pinned: Callable[[int], bool],
) -> tuple[int, list[int]]:
    """(the member to keep, the others sorted by path): a pinned one, else the most
    pixels, else the sharpest (unmeasured counts as least sharp), else the first path.
    The one rule of ``group`` and of callers that re-keep groups when pins change
    (membership does not depend on pins, only the keeper does)."""
    idx = list(members)
    s = np.nan_to_num(np.asarray(sharp, np.float64)[idx], nan=-1.0)
    ranked = sorted(
        range(len(idx)),
        key=lambda k: (not is_pinned(idx[k]), -float(pixels[idx[k]]), -s[k], paths[idx[k]]),
    )
    return idx[ranked[0]], sorted((idx[k] for k in ranked[1:]), key=lambda i: paths[i])
