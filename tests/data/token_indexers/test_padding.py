import numpy as np

from keel.data.token_indexers.padding import pad_1d, pad_2d


def test_pad_1d_pads_with_zero_and_masks():
    padded, mask = pad_1d([[3, 4, 5], [6], []])
    np.testing.assert_array_equal(padded, [[3, 4, 5], [6, 0, 0], [0, 0, 0]])
    np.testing.assert_array_equal(mask, [[1, 1, 1], [1, 0, 0], [0, 0, 0]])
    assert padded.dtype == np.int64 and mask.dtype == np.bool_


def test_pad_1d_min_length_and_all_empty():
    padded, mask = pad_1d([[], []], min_length=2)
    assert padded.shape == (2, 2) and not mask.any()


def test_pad_2d_pads_both_dimensions():
    padded, mask = pad_2d([[[2, 3], [4]], [[5, 6, 7]]], min_inner=4)
    assert padded.shape == (2, 2, 4)
    np.testing.assert_array_equal(padded[0], [[2, 3, 0, 0], [4, 0, 0, 0]])
    np.testing.assert_array_equal(padded[1], [[5, 6, 7, 0], [0, 0, 0, 0]])
    np.testing.assert_array_equal(mask, [[1, 1], [1, 0]])


def test_pad_2d_empty_rows():
    padded, mask = pad_2d([[], []])
    assert padded.shape == (2, 0, 0) and mask.shape == (2, 0)
