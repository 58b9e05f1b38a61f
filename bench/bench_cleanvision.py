"""Side by side with cleanvision on the demo album: which images each flags, per kind,
which duplicate groups each finds, and how long each takes.

cleanvision is a bench-only dependency (the ``bench`` extra, which ``make bench``
installs); without it this prints one line saying so and returns. Both run cold on a
fresh copy of the demo album (``picksel.demo.build_demo_album``): picksel's ``check_album``
measures every image (no index-time measures), cleanvision's ``Imagelab.find_issues``
with its defaults. Kinds are matched by meaning: cleanvision's ``light`` is picksel's
``bright``, ``low_information`` is ``blank``, ``odd_size`` (a size far from the album's
usual one, either way) is set beside ``small``; cleanvision has no noise check and
picksel no odd-size-either-way check. Digits are counted, other images named. The
photo variants (``_mirror``, ``_bright``, ``_dark``, ``_crop``) are scored by whether
each lands in one group with its original. Times are wall-clock on whatever else the
machine is doing (both use every core); compare them within one run.
"""

from __future__ import annotations

import re
import tempfile
import time
from pathlib import Path

KINDS = (  # (picksel flag, cleanvision issue)
    ("dark", "dark"),
    ("bright", "light"),
    ("blank", "low_information"),
    ("blurry", "blurry"),
    ("noisy", None),
    ("small", "odd_size"),
    ("grayscale", "grayscale"),
    ("odd-aspect", "odd_aspect_ratio"),
)
VARIANT = re.compile(r"^photos/(.+)_(mirror|bright|dark|crop)\.jpg$")


def describe(rels: set[str]) -> str:
    digits = sum(1 for r in rels if r.startswith("digits/"))
    named = sorted(r for r in rels if not r.startswith("digits/"))
    parts = ([f"{digits} digits"] if digits else []) + named
    return f"{len(rels):>3}  " + (", ".join(parts) if parts else "-")


def variants_grouped(groups: list[set[str]], rels: list[str]) -> tuple[int, int]:
    """(variants in one group with their original, variants in the album)."""
    variants = [(r, f"photos/{m.group(1)}.jpg") for r in rels if (m := VARIANT.match(r))]
    hit = sum(1 for v, orig in variants if any(v in g and orig in g for g in groups))
    return hit, len(variants)


def mixed(groups: list[set[str]]) -> int:
    """Groups holding both digits and photos (never right)."""
    return sum(1 for g in groups if {r.split("/")[0] for r in g} >= {"digits", "photos"})


def run_picksel(album: Path, rels: list[str]) -> tuple[dict[str, set[str]], list[set[str]], float]:
    from picksel.check import check_album
    from picksel.quality import Thresholds

    start = time.perf_counter()
    r = check_album(album, rels, album / ".picksel", Thresholds())
    took = time.perf_counter() - start
    flags: dict[str, set[str]] = {f: set() for f, _ in KINDS}
    for rel, names in r.flags.items():
        for f in names:
            flags[f].add(rel)
    groups = [{r.paths[g.keep], *(r.paths[i] for i in g.copies)} for g in r.groups]
    return flags, groups, took


def run_cleanvision(album: Path, rels: list[str]) -> tuple[dict[str, set[str]], list[set[str]], float]:
    import contextlib
    import io

    from cleanvision import Imagelab

    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        lab = Imagelab(filepaths=[str(album / r) for r in rels], verbose=False)
        lab.find_issues(verbose=False)
    took = time.perf_counter() - start

    def rel(p: str) -> str:
        return Path(p).relative_to(album).as_posix()

    issues = lab.issues
    flags = {}
    for _, cv in KINDS:
        if cv is not None and f"is_{cv}_issue" in issues.columns:
            flags[cv] = {rel(p) for p in issues.index[issues[f"is_{cv}_issue"]]}
    groups = []
    for kind in ("exact_duplicates", "near_duplicates"):
        for s in lab.info.get(kind, {}).get("sets", []):
            groups.append({rel(p) for p in s})
    return flags, groups, took


def main(quick: bool = False) -> None:
    try:
        import cleanvision  # noqa: F401
    except ImportError:
        print("cleanvision is not installed (it comes with the bench extra: "
              "`pip install -e '.[bench]'`, which `make bench` does): side-by-side skipped")
        return
    from picksel.demo import build_demo_album
    from picksel.scan import scan_album

    with tempfile.TemporaryDirectory() as tmp:
        album = Path(tmp) / "album"
        build_demo_album(album)
        rels = [e.rel for e in scan_album(album)]
        if quick:  # the photos and the garbage only: a smoke test
            rels = [r for r in rels if not r.startswith("digits/")]
        ours, our_groups, our_t = run_picksel(album, rels)
        theirs, their_groups, their_t = run_cleanvision(album, rels)
    print(f"demo album, {len(rels)} images: picksel check {our_t:.1f} s, "
          f"cleanvision find_issues {their_t:.1f} s (cold, wall-clock; ratio {their_t / our_t:.1f}×)")
    for flag, cv in KINDS:
        print(f"{flag} (cleanvision: {cv or 'no such check'})")
        print(f"   picksel     {describe(ours[flag])}")
        if cv is not None:
            print(f"   cleanvision {describe(theirs.get(cv, set()))}")
    for name, groups in (("picksel", our_groups), ("cleanvision", their_groups)):
        hit, total = variants_grouped(groups, rels)
        digit_groups = sum(1 for g in groups if all(r.startswith("digits/") for r in g))
        print(f"duplicates, {name}: {len(groups)} groups ({digit_groups} of digits only, "
              f"{mixed(groups)} mixing digits and photos); {hit} of {total} photo variants "
              f"grouped with their original")
        for g in groups:
            if not all(r.startswith("digits/") for r in g):
                print(f"   {' = '.join(sorted(g))}")


if __name__ == "__main__":
    main()
