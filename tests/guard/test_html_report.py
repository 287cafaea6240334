"""The HTML reports: self-contained pages, checked as text and rendered in headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from keel.guard.archive_diff import diff_archives
from keel.guard.html_report import diff_html, rebuild_html, verify_html
from keel.guard.verify import verify_archive
from keel.pipeline.rebuild import rebuild_archive
from keel.pipeline.train import train_model

pytest.importorskip("matplotlib")

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "archives"


def _self_contained(page: str) -> None:
    assert page.startswith("<!DOCTYPE html>")
    assert "<script" not in page.lower()
    # Nothing is fetched when the page is viewed: no src=, no stylesheet links, no url(...)
    # but the SVGs' references to their own clip paths (url(#...)).
    assert not re.search(r"\ssrc\s*=", page) and "<link" not in page
    assert not re.search(r"url\((?!#)", page)
    assert not re.search(r'href="https?:', page)


@pytest.fixture(scope="module")
def rebuild_report(tmp_path_factory) -> dict:
    from keel.common.params import load_config
    from tests.conftest import SST2_SAMPLE, TINY_CLASSIFIER

    directory = tmp_path_factory.mktemp("html")
    config = load_config(TINY_CLASSIFIER, ext_vars={"data_dir": str(SST2_SAMPLE), "epochs": "2"})
    config["golden_sample_size"] = 32
    original = train_model(config, directory / "original", quiet=True)
    report = rebuild_archive(original.archive_path, directory / "rebuilt", min_agreement=1.0)
    return report.to_dict()


def test_rebuild_page_puts_the_verdict_first_and_draws_every_chart(rebuild_report) -> None:
    page = rebuild_html(rebuild_report)
    _self_contained(page)
    body = page[page.index("<body>") :]
    assert body.index('id="verdict"') < body.index("<table")  # the verdict before the evidence
    assert ">equivalent</div>" in page
    # metric deltas, the confusion-matrix pair, the validation and golden histograms
    assert page.count("<svg") == 5
    assert "Per-class changes" in page and "0_f1" in page
    assert rebuild_report["confusion"]["original"] == rebuild_report["confusion"]["rebuilt"]


def test_verify_and_diff_pages(tmp_path) -> None:
    import io
    import tarfile

    archive = FIXTURES / "format1-classifier.tar.gz"
    page = verify_html(verify_archive(archive).to_dict())
    _self_contained(page)
    assert ">PASS</div>" in page and page.count('class="status-pass"') == 8
    assert "Golden predictions" in page and page.count("<svg") == 1
    tampered = tmp_path / "tampered.tar.gz"
    with tarfile.open(archive) as source, tarfile.open(tampered, "w:gz") as out:
        for member in source:
            data = source.extractfile(member).read()
            if member.name == "config.json":
                data = data.replace(b'"embedding_dim": 8', b'"embedding_dim": 9')
            member.size = len(data)
            out.addfile(member, io.BytesIO(data))
    page = verify_html(verify_archive(tampered).to_dict())
    assert ">FAIL (integrity)</div>" in page and 'class="status-fail"' in page
    diff = diff_archives(
        FIXTURES / "format2-classifier.tar.gz", FIXTURES / "components1-cnn-classifier.tar.gz"
    ).to_dict()
    page = diff_html(diff)
    _self_contained(page)
    assert ">the archives differ</div>" in page and "RMS distance per tensor" in page


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.slow
@pytest.mark.skipif(
    _chromium() is None, reason="Debian's chromium is not installed (.ci/run installs it)"
)
def test_rebuild_page_renders_in_headless_chromium(rebuild_report, tmp_path) -> None:
    from PIL import Image

    page = tmp_path / "report.html"
    page.write_text(rebuild_html(rebuild_report), encoding="utf-8")
    flags = [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--enable-logging=stderr",
        "--v=0",
        "--window-size=1280,2400",
    ]
    chromium = _chromium()
    assert chromium is not None
    dom = subprocess.run(
        [chromium, *flags, "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'id="verdict">equivalent</div>' in dom.stdout
    assert dom.stdout.count("<svg") == 5
    # Console messages are logged as "CONSOLE(...)"; an error on the page would show there.
    assert "Uncaught" not in dom.stderr
    assert not re.search(r"CONSOLE\(\d+\).*(error|Error)", dom.stderr)
    shot = tmp_path / "shot.png"
    screenshot = subprocess.run(
        [chromium, *flags, f"--screenshot={shot}", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert screenshot.returncode == 0 and shot.is_file(), screenshot.stderr[-2000:]
    image = Image.open(shot).convert("RGB")
    colours = image.getcolors(maxcolors=1 << 20) or []
    assert len(colours) > 50  # text, bars and matrices, not a blank page
    # The verdict banner's green is on screen.
    assert any(
        abs(r - 0xE3) < 8 and abs(g - 0xF6) < 8 and abs(b - 0xE3) < 8 for _, (r, g, b) in colours
    )
