from __future__ import annotations

from keel.testing import ensure_model_can_train_save_and_load


def test_testing_helper_trains_archives_and_verifies(tmp_path, tiny_classifier_config) -> None:
    result, report = ensure_model_can_train_save_and_load(tiny_classifier_config(1), tmp_path / "r")
    assert report.ok and result.archive_path.is_file()
    assert report.check("predictions").status == "pass"


def test_testing_helper_takes_a_config_path_and_imports_include_packages(tmp_path) -> None:
    import pytest

    from keel.common.errors import ConfigurationError
    from tests.conftest import SST2_SAMPLE, TINY_CLASSIFIER

    package = tmp_path / "src" / "helperplugin"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(
        "from keel.models.basic_classifier import BasicClassifier\n"
        "from keel.models.model import Model\n\n\n"
        '@Model.register("helper_classifier")\n'
        "class HelperClassifier(BasicClassifier):\n"
        "    pass\n",
        encoding="utf-8",
    )
    import sys

    sys.path.insert(0, str(tmp_path / "src"))
    try:
        result, report = ensure_model_can_train_save_and_load(
            TINY_CLASSIFIER,
            tmp_path / "run",
            include_packages=("helperplugin",),
            ext_vars={"data_dir": str(SST2_SAMPLE), "epochs": "1"},
            overrides={"model": {"type": "helper_classifier"}},  # a subclass: merged
        )
    finally:
        sys.path.remove(str(tmp_path / "src"))
    assert report.ok and result.archive_path.is_file()
    with pytest.raises(ConfigurationError, match="not a list"):
        ensure_model_can_train_save_and_load([1, 2], tmp_path / "other")
