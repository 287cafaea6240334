"""docs/readers.md is the table the readers' constructors give today."""

from __future__ import annotations

from pathlib import Path

from keel.data.dataset_readers.dataset_reader import DatasetReader
from keel.data.dataset_readers.options import readers_table

PAGE = Path(__file__).resolve().parents[3] / "docs" / "readers.md"


def test_the_checked_in_reader_table_is_the_generated_one() -> None:
    assert PAGE.read_text(encoding="utf-8") == readers_table(), (
        "regenerate it: python -m keel.data.dataset_readers.options > docs/readers.md"
    )


def test_every_reader_option_has_a_type_a_default_and_a_meaning() -> None:
    table = readers_table()
    for name in DatasetReader.list_available():
        assert f"## `{name}`" in table
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    assert rows
    for row in rows:
        option, kind, default, meaning = (cell.strip() for cell in row.strip("|").split(" | "))
        assert kind and default and meaning, f"{row}: document the option in its docstring"
