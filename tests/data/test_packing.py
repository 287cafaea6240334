import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from keel.data.packing import ArrayPack, ListPack, NestedIds, RaggedIds
from keel.data.token_indexers.padding import pad_2d


def test_ragged_ids_take_pads_selected_rows():
    ragged = RaggedIds.from_rows([[1, 2, 3], [], [4], [5, 6]])
    padded, mask = ragged.take(np.array([3, 1, 0]))
    np.testing.assert_array_equal(padded, [[5, 6, 0], [0, 0, 0], [1, 2, 3]])
    np.testing.assert_array_equal(mask, [[1, 1, 0], [0, 0, 0], [1, 1, 1]])


def test_ragged_ids_all_empty_rows():
    padded, mask = RaggedIds.from_rows([[], []]).take(np.array([1, 0]))
    assert padded.shape == (2, 0) and mask.shape == (2, 0)


def test_array_and_list_packs():
    assert ArrayPack(np.array([7, 8, 9])).take(np.array([2, 0])).tolist() == [9, 7]
    assert ListPack(["a", "b", "c"], list).take(np.array([1, 2])) == ["b", "c"]


nested_rows = st.lists(
    st.lists(st.lists(st.integers(0, 50), max_size=6), max_size=5), min_size=1, max_size=8
)


@settings(max_examples=150, deadline=None)
@given(rows=nested_rows, data=st.data(), min_inner=st.integers(0, 4))
def test_nested_ids_take_equals_pad_2d(rows, data, min_inner):
    from itertools import chain

    items = list(chain.from_iterable(rows))
    nested = NestedIds(
        np.array([len(row) for row in rows], dtype=np.int64),
        np.array([len(item) for item in items], dtype=np.int64),
        np.array(list(chain.from_iterable(items)), dtype=np.int64),
    )
    indices = data.draw(st.lists(st.integers(0, len(rows) - 1), min_size=1, max_size=6))
    padded, mask = nested.take(np.array(indices), min_inner)
    expected, expected_mask = pad_2d([rows[i] for i in indices], min_inner=min_inner)
    np.testing.assert_array_equal(padded, expected)
    np.testing.assert_array_equal(mask, expected_mask)
    assert padded.shape == expected.shape


def test_shared_value():
    from keel.data.packing import shared_value

    assert shared_value(["labels", "labels"]) == "labels"
    assert shared_value([False, False]) is False  # a shared False is not "differs"
    assert shared_value(["a", "b"]) is None
    assert shared_value([]) is None
