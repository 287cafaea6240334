from keel.data.fields import MetadataField
from keel.data.vocabulary import Vocabulary


def test_metadata_field_batches_to_the_raw_objects():
    fields = [MetadataField({"words": ["a"]}), MetadataField({"words": ["b", "c"]})]
    counter: dict[str, dict[str, int]] = {}
    for field in fields:
        field.count_vocab_items(counter)
        field.index(Vocabulary())
    assert counter == {}
    assert MetadataField.batch(fields) == [{"words": ["a"]}, {"words": ["b", "c"]}]
    assert fields[1]["words"] == ["b", "c"]
