from keel.data.fields import LabelField, MetadataField, TextField
from keel.data.instance import Instance, index_instances
from keel.data.token_indexers import SingleIdTokenIndexer
from keel.data.tokenizers import Token
from keel.data.vocabulary import Vocabulary


def _instance(text: str, label: str) -> Instance:
    tokens = [Token(w) for w in text.split()]
    return Instance(
        {
            "tokens": TextField(tokens, {"tokens": SingleIdTokenIndexer()}),
            "label": LabelField(label),
        }
    )


def test_instance_is_a_mapping_of_fields():
    instance = _instance("a b", "pos")
    assert list(instance) == ["tokens", "label"]
    assert len(instance) == 2
    assert isinstance(instance["label"], LabelField)
    assert instance.human_readable_dict() == {"tokens": ["a", "b"], "label": "pos"}


def test_instance_counts_and_indexes_once():
    instance = _instance("a b a", "pos")
    counter: dict[str, dict[str, int]] = {}
    instance.count_vocab_items(counter)
    assert counter == {"tokens": {"a": 2, "b": 1}, "labels": {"pos": 1}}
    vocab = Vocabulary(counter=counter)
    instance.index_fields(vocab)
    assert instance.indexed
    assert instance["tokens"].indexed == {"tokens": {"tokens": [2, 3, 2]}}


def test_instance_add_field_indexes_when_already_indexed():
    instance = _instance("a", "pos")
    vocab = Vocabulary.from_instances([instance])
    instance.index_fields(vocab)
    instance.add_field("other", LabelField("pos"), vocab)
    assert instance["other"].label_id == 0
    instance.add_field("meta", MetadataField({"id": 1}))
    assert instance["meta"]["id"] == 1


def test_index_instances_matches_index_fields():
    one = [_instance("a b", "pos"), _instance("c", "neg")]
    many = [_instance("a b", "pos"), _instance("c", "neg")]
    vocab = Vocabulary.from_instances(one)
    for instance in one:
        instance.index_fields(vocab)
    index_instances(many, vocab)
    for a, b in zip(one, many, strict=True):
        assert b.indexed
        assert a["tokens"].indexed == b["tokens"].indexed
        assert a["label"].label_id == b["label"].label_id
