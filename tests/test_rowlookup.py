from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from picksel.rowlookup import SortedRows

NAMES = st.text(alphabet=st.sampled_from(list("ab/é_.\udcff0")), min_size=1, max_size=6)


@settings(max_examples=80, deadline=None)
@given(paths=st.sets(NAMES, max_size=40), probes=st.lists(NAMES, max_size=20))
def test_sorted_rows_answer_like_a_dict(paths: set[str], probes: list[str]) -> None:
    """Present, absent, longer than any listed path, a listed path plus a NUL (which
    numpy's fixed-width strings cannot tell apart), surrogate-escaped names."""
    listed = sorted(paths)
    rows = SortedRows(listed, np.array(listed, dtype=f"U{max(map(len, listed), default=1)}"))
    table = {p: i for i, p in enumerate(listed)}
    tricky = [p + "\0" for p in listed[:3]] + [p + "zz" * 5 for p in listed[:3]] + [7, None]
    for probe in [*probes, *listed, *tricky]:
        assert (probe in rows) == (probe in table)
        assert rows.get(probe) == table.get(probe)
    wanted = [*probes, *listed[::2], *tricky]
    expected = [table[p] for p in wanted if isinstance(p, str) and p in table]
    assert rows.rows_of(wanted).tolist() == expected
    assert len(rows) == len(table) and list(rows) == listed
