from __future__ import annotations

from keel.testing import ensure_model_can_train_save_and_load


def test_testing_helper_trains_archives_and_verifies(tmp_path, tiny_classifier_config) -> None:
    result, report = ensure_model_can_train_save_and_load(tiny_classifier_config(1), tmp_path / "r")
    assert report.ok and result.archive_path.is_file()
    assert report.check("predictions").status == "pass"
