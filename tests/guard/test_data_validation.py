from collections.abc import Callable, Iterator

from keel.common import errors
from keel.common.errors import DataError
from keel.data import Instance, LabelField, TextField, Vocabulary
from keel.data.dataset_readers import DatasetReader, TsvReader
from keel.data.token_indexers import SingleIdTokenIndexer
from keel.data.tokenizers import WhitespaceTokenizer
from keel.guard.data_validation import (
    labels_from_instances,
    labels_from_vocabulary,
    reader_supports_on_error,
    validate_data,
)

BAD_TSV = (
    "sentence\tlabel\n"
    "good film\t1\n"
    "no label column here\n"
    "bad film\t0\n"
    "\t\n"
    "strange label\t7\n"
    "another broken line\n"
)


class LabelTextReader(DatasetReader):
    """``label<TAB>text`` lines; continues past bad lines when ``read`` gets ``on_error``.

    This is the reader hook keel.guard.data_validation expects (proposed for DatasetReader).
    """

    def __init__(self) -> None:
        super().__init__()
        self.tokenizer = WhitespaceTokenizer()
        self.token_indexers = {"tokens": SingleIdTokenIndexer()}
        self._on_error: Callable[[DataError], None] | None = None

    def read(self, file_path, on_error=None):
        self._on_error = on_error
        return super().read(file_path)

    def _read(self, file_path: str) -> Iterator[Instance]:
        with open(file_path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                label, tab, text = line.rstrip("\n").partition("\t")
                if not tab or not text.strip():
                    error = DataError(
                        "expected 'label<TAB>text'", path=file_path, line=number, excerpt=line
                    )
                    if self._on_error is None:
                        raise error
                    self._on_error(error)
                    continue
                yield self.text_to_instance(text, label)

    def text_to_instance(self, text, label=None):
        fields = {"tokens": TextField(self.tokenizer.tokenize(text), self.token_indexers)}
        if label is not None:
            fields["label"] = LabelField(label)
        return Instance(fields)


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_data_validation_reports_every_bad_line_with_a_continuing_reader(tmp_path):
    path = _write(tmp_path, "data.txt", "pos\tgood\nnot a record\npos\tfine\n\nneg\t  \nneg\tbad\n")
    report = validate_data(LabelTextReader(), path)
    assert [(e.line, e.code) for e in report.errors] == [(2, "KD001"), (4, "KD001"), (5, "KD001")]
    assert report.errors[0].render() == f"{path}:2: [KD001] expected 'label<TAB>text'"
    assert report.instances == 3
    assert report.error_counts == {"KD001": 3}
    assert not report.ok and report.complete


def test_data_validation_max_errors_stops_early(tmp_path):
    path = _write(tmp_path, "data.txt", "x\ny\nz\npos\tok\n")
    report = validate_data(LabelTextReader(), path, max_errors=2)
    assert [e.line for e in report.errors] == [1, 2]
    assert not report.complete
    assert "max-errors" in report.notes[0]


def test_data_validation_unseen_labels_are_errors(tmp_path):
    train = _write(tmp_path, "train.txt", "pos\tgood\nneg\tbad\n")
    dev = _write(tmp_path, "dev.txt", "pos\tgood\nmeh\tso so\nmeh\tfine\nugh\tbad\n")
    known = labels_from_instances(LabelTextReader().read(train))
    assert known == {"labels": {"pos", "neg"}}
    report = validate_data(LabelTextReader(), dev, known_labels=known)
    assert report.unseen_labels == {"labels": {"meh": 2, "ugh": 1}}
    assert report.error_counts == {errors.UNSEEN_LABEL: 2}
    assert "'meh' (2 instances, the first is instance 2 of the file)" in report.errors[0].reason
    assert validate_data(LabelTextReader(), train, known_labels=known).ok


def test_data_validation_labels_from_an_archive_vocabulary(tmp_path):
    train = _write(tmp_path, "train.txt", "pos\tgood\nneg\tbad\n")
    vocab = Vocabulary.from_instances(LabelTextReader().read(train))
    assert labels_from_vocabulary(vocab) == {"labels": {"pos", "neg"}}


def test_data_validation_reader_without_hook_reports_its_first_bad_line(tmp_path):
    path = _write(tmp_path, "data.tsv", BAD_TSV)
    reader = TsvReader()
    report = validate_data(reader, path)
    assert not report.ok
    first = report.errors[0]
    assert (first.path, first.line, first.code) == (str(path), 3, errors.MISSING_COLUMN)
    if not reader_supports_on_error(reader):
        assert not report.complete and "on_error" in report.notes[0]
    else:
        assert [e.line for e in report.errors] == [3, 7]


def test_data_validation_missing_file(tmp_path):
    report = validate_data(TsvReader(), tmp_path / "absent.tsv")
    assert report.error_counts == {errors.DATA_NOT_FOUND: 1}
    assert report.complete


def test_data_validation_clean_file_is_ok(tmp_path):
    path = _write(tmp_path, "ok.tsv", "sentence\tlabel\ngood film\t1\nbad film\t0\n")
    report = validate_data(TsvReader(), path, known_labels={"labels": {"0", "1"}})
    assert report.ok and report.instances == 2
    assert report.to_dict()["error_count"] == 0


def test_data_validation_unseen_tag_names_the_line_of_its_sentence(tmp_path):
    from keel.data.dataset_readers.conllu import ConlluDatasetReader

    rows = [
        "# sent_id = 1",
        "1\tGood\tgood\tADJ\tJJ\t_\t2\tamod\t_\t_",
        "2\tfilm\tfilm\tNOUN\tNN\t_\t0\troot\t_\t_",
        "",
        "# sent_id = 2",
        "1\tOdd\todd\tWEIRD\tJJ\t_\t0\troot\t_\t_",
        "",
    ]
    path = tmp_path / "dev.conllu"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    report = validate_data(ConlluDatasetReader(), path, known_labels={"labels": {"ADJ", "NOUN"}})
    [bad] = report.errors
    assert (bad.code, bad.line) == (errors.UNSEEN_LABEL, 6)
    assert bad.render().startswith(f"{path}:6: [KD006] label 'WEIRD'")
