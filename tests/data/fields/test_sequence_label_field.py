import pytest

from keel.common.errors import DataError
from keel.data.fields import SequenceLabelField, TextField
from keel.data.tokenizers import Token
from keel.data.vocabulary import Vocabulary


def _text(n: int) -> TextField:
    return TextField([Token(str(i)) for i in range(n)], {})


def test_sequence_label_field_counts_indexes_and_pads():
    fields = [
        SequenceLabelField(["B", "I", "O"], _text(3), "tags"),
        SequenceLabelField(["O"], _text(1), "tags"),
    ]
    counter: dict[str, dict[str, int]] = {}
    for field in fields:
        field.count_vocab_items(counter)
    assert counter == {"tags": {"B": 1, "I": 1, "O": 2}}
    vocab = Vocabulary(counter=counter)
    for field in fields:
        field.index(vocab)
    # Sorted by count: O=0, B=1, I=2 (tags are not padded, so 0 is a real tag here).
    assert SequenceLabelField.batch(fields).tolist() == [[1, 2, 0], [0, 0, 0]]


def test_sequence_label_field_length_mismatch_is_a_data_error():
    with pytest.raises(DataError, match="2 labels for 3 tokens"):
        SequenceLabelField(["O", "O"], _text(3))


def test_sequence_label_field_int_labels_skip_indexing():
    field = SequenceLabelField([4, 5], _text(2))
    assert field.skip_indexing
    assert not SequenceLabelField(["O", "O"], _text(2)).skip_indexing
    counter: dict[str, dict[str, int]] = {}
    field.count_vocab_items(counter)
    field.index(Vocabulary())
    assert counter == {}
    assert SequenceLabelField.batch([field]).tolist() == [[4, 5]]


def test_sequence_label_field_unseen_tag():
    vocab = Vocabulary(counter={"tags": {"O": 1}})
    with pytest.raises(DataError, match="'B-PER'"):
        SequenceLabelField(["O", "B-PER"], _text(2), "tags").index(vocab)


def test_sequence_label_field_index_many_equals_indexing_each_field():
    vocab = Vocabulary(counter={"tags": {"O": 3, "B": 1}, "pos_tokens": {"NN": 2}})

    def fields():
        return [
            SequenceLabelField(["O", "B", "O"], _text(3), "tags"),
            SequenceLabelField([7, 8], _text(2), "tags"),  # ids already: left alone
            SequenceLabelField(["NN"], _text(1), "pos_tokens"),  # a padded namespace
            SequenceLabelField(["O"], _text(1), "tags"),
        ]

    one_by_one, bulk = fields(), fields()
    for field in one_by_one:
        field.index(vocab)
    SequenceLabelField.index_many(bulk, vocab)
    assert [field.ids for field in bulk] == [field.ids for field in one_by_one]
    assert bulk[1].ids == [7, 8]
    # A label the namespace lacks: OOV (1) where the namespace is padded, an error where not.
    unseen_padded = [SequenceLabelField(["NN", "VB"], _text(2), "pos_tokens")]
    SequenceLabelField.index_many(unseen_padded, vocab)
    assert unseen_padded[0].ids == [vocab.get_token_index("NN", "pos_tokens"), 1]
    with pytest.raises(DataError, match="'I'"):
        SequenceLabelField.index_many(
            fields() + [SequenceLabelField(["I"], _text(1), "tags")], vocab
        )
