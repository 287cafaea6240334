import numpy as np

from keel.data.packing import ArrayPack, ListPack, RaggedIds


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
