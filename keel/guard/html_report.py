"""One self-contained HTML page per verdict: ``--html`` on ``verify``, ``archive diff`` and
``rebuild``.

The verdict comes first, then the evidence: steps, metric deltas, a confusion-matrix pair, a
histogram of score differences, per-class changes, environment differences by severity. Charts
are drawn here with matplotlib into inline SVG, and the page loads nothing (no script, no font,
no network), so it reads the same from a CI artifact, a mail attachment or a file share.
"""

from __future__ import annotations

import html
import io
from collections.abc import Mapping, Sequence
from typing import Any

from keel.common.optional_dependencies import require

_STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 70rem; color: #222; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; margin-top: 2rem; }
.verdict { font-size: 1.6rem; font-weight: 700; padding: .8rem 1.2rem; border-radius: .4rem; }
.pass { background: #e3f6e3; color: #17611b; } .fail { background: #fde4e1; color: #9b1c10; }
table { border-collapse: collapse; margin: .5rem 0; }
td, th { border: 1px solid #ccc; padding: .25rem .6rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.status-pass { color: #17611b; } .status-fail, .severity-breaking { color: #9b1c10; }
.status-not_checked, .severity-risky { color: #8a5a00; } .status-skipped { color: #666; }
.charts { display: flex; flex-wrap: wrap; gap: 1rem; }
.charts svg { max-width: 100%; height: auto; }
ul.reasons li { margin: .2rem 0; }
"""


class Page:
    """An HTML page built section by section; ``render()`` returns the whole document."""

    def __init__(self, title: str, passed: bool, verdict: str) -> None:
        self.title = title
        self.parts = [
            f'<div class="verdict {"pass" if passed else "fail"}" id="verdict">'
            f"{html.escape(verdict)}</div>"
        ]

    def heading(self, text: str) -> None:
        self.parts.append(f"<h2>{html.escape(text)}</h2>")

    def items(self, lines: Sequence[str], css: str = "reasons") -> None:
        if lines:
            body = "".join(f"<li>{html.escape(line)}</li>" for line in lines)
            self.parts.append(f'<ul class="{css}">{body}</ul>')

    def text(self, line: str) -> None:
        self.parts.append(f"<p>{html.escape(line)}</p>")

    def table(
        self,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        classes: Sequence[str | None] | None = None,
    ) -> None:
        head = "".join(f"<th>{html.escape(column)}</th>" for column in columns)
        body = []
        for index, row in enumerate(rows):
            css = classes[index] if classes else None
            cells = "".join(_cell(value) for value in row)
            body.append(f'<tr class="{css}">{cells}</tr>' if css else f"<tr>{cells}</tr>")
        self.parts.append(f"<table><tr>{head}</tr>{''.join(body)}</table>")

    def charts(self, svgs: Sequence[str]) -> None:
        if svgs:
            self.parts.append('<div class="charts">' + "".join(svgs) + "</div>")

    def render(self) -> str:
        return (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(self.title)}</title><style>{_STYLE}</style></head><body>"
            f"<h1>{html.escape(self.title)}</h1>{''.join(self.parts)}</body></html>\n"
        )


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f'<td class="num">{value:.4g}</td>'
    if isinstance(value, int) and not isinstance(value, bool):
        return f'<td class="num">{value}</td>'
    return f"<td>{html.escape('' if value is None else str(value))}</td>"


# -- charts --------------------------------------------------------------------------------------


def _pyplot() -> Any:
    matplotlib = require("matplotlib", extra="report", needed_by="the HTML report")
    matplotlib.use("Agg")
    return require("matplotlib.pyplot", extra="report")


def _svg(figure: Any) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    _pyplot().close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg") :]  # inline: without the XML prolog and doctype


def histogram_svg(counts: Sequence[float], edges: Sequence[float], title: str) -> str:
    """A histogram already binned (``numpy.histogram``'s counts and edges)."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(5.5, 3.2))
    if counts:
        widths = [right - left for left, right in zip(edges[:-1], edges[1:], strict=True)]
        axes.bar(edges[:-1], counts, width=widths, align="edge", color="#3b6ea8")
    axes.set_title(title)
    axes.set_xlabel("|score difference|")
    axes.set_ylabel("scores")
    return _svg(figure)


def bars_svg(names: Sequence[str], values: Sequence[float], title: str, xlabel: str) -> str:
    """Horizontal bars, one per name (metric deltas, weight distances)."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(5.5, max(1.6, 0.28 * len(names) + 0.8)))
    colors = ["#9b1c10" if value < 0 else "#3b6ea8" for value in values]
    axes.barh(list(names), list(values), color=colors)
    axes.axvline(0, color="#444", linewidth=0.8)
    axes.invert_yaxis()
    axes.set_title(title)
    axes.set_xlabel(xlabel)
    return _svg(figure)


def confusion_svg(labels: Sequence[str], matrix: Sequence[Sequence[int]], title: str) -> str:
    """A confusion matrix (rows gold, columns predicted) with its counts written in."""
    plt = _pyplot()
    size = max(2.6, 0.5 * len(labels) + 1.6)
    figure, axes = plt.subplots(figsize=(size, size))
    axes.imshow(matrix, cmap="Blues")
    axes.set_xticks(range(len(labels)), labels=list(labels), rotation=90)
    axes.set_yticks(range(len(labels)), labels=list(labels))
    for row, values in enumerate(matrix):
        for column, value in enumerate(values):
            axes.text(column, row, str(value), ha="center", va="center", fontsize=8)
    axes.set_xlabel("predicted")
    axes.set_ylabel("gold")
    axes.set_title(title)
    return _svg(figure)


# -- the three reports ---------------------------------------------------------------------------


def environment_rows(differences: Sequence[Mapping[str, Any]]) -> tuple[list, list]:
    """Rows and row classes of environment differences, breaking first, info last."""
    order = {"breaking": 0, "risky": 1, "info": 2}
    ranked = sorted(differences, key=lambda item: (order.get(item["severity"], 3), item["key"]))
    rows = [[d["severity"], d["key"], d.get("old"), d.get("new"), d["reason"]] for d in ranked]
    return rows, [f"severity-{d['severity']}" for d in ranked]


def verify_html(report: Mapping[str, Any]) -> str:
    """``keel verify --html``: the verdict, every step, the score differences, the environment."""
    ok = bool(report["ok"])
    failed = report.get("failed") or []
    page = Page(
        f"keel verify {report['subject']}",
        ok,
        "PASS" if ok else f"FAIL ({', '.join(failed)})",
    )
    if report.get("escapes"):
        page.items(
            [f"{item['check']}: allowed by {item['allowed_by']}" for item in report["escapes"]]
        )
    page.heading("Steps")
    checks = report["checks"]
    page.table(
        ["step", "result", "reason"],
        [[check["name"], check["status"], check["reason"]] for check in checks],
        [f"status-{check['status']}" for check in checks],
    )
    predictions = next((c for c in checks if c["name"] == "predictions"), None)
    stats = (predictions or {}).get("details", {}).get("differences")
    if stats:
        page.heading("Golden predictions: |score difference|")
        page.table(["statistic", "value"], [[key, float(value)] for key, value in stats.items()])
        quantiles = [(key, float(value)) for key, value in stats.items() if key != "max"]
        page.charts(
            [
                bars_svg(
                    [k for k, _ in quantiles],
                    [v for _, v in quantiles],
                    "golden score differences",
                    "|difference|",
                )
            ]
        )
    environment = next((c for c in checks if c["name"] == "environment"), None)
    details = (environment or {}).get("details", {})
    differences = [*details.get("breaking", []), *details.get("risky", [])]
    if differences:
        page.heading("Environment differences")
        rows, classes = environment_rows(differences)
        page.table(["severity", "key", "recorded", "here", "reason"], rows, classes)
    return page.render()


def diff_html(result: Mapping[str, Any]) -> str:
    """``keel archive diff --html``."""
    identical = bool(result["identical"])
    page = Page(
        f"keel archive diff {result['a']} {result['b']}",
        identical,
        "identical" if identical else "the archives differ",
    )
    predictions = result["predictions"]
    page.heading("Predictions on the golden inputs")
    if predictions.get("compared"):
        page.text(
            f"{predictions['agreement']:.2%} of {predictions['compared']} decoded outputs agree; "
            f"max |score difference| {predictions['max_score_difference']}"
        )
    else:
        page.text(str(predictions.get("note")))
    if result["config"]:
        page.heading("Config")
        page.table(
            ["path", "change", "A", "B"],
            [[c["path"], c["change"], c["a"], c["b"]] for c in result["config"]],
        )
    if result["vocabulary"]:
        page.heading("Vocabulary")
        page.table(
            ["namespace", "size A", "size B", "added", "removed", "moved"],
            [
                [name, v["size_a"], v["size_b"], v["added"], v["removed"], v["moved"]]
                for name, v in result["vocabulary"].items()
            ],
        )
    if result["weights"]:
        page.heading("Weights")
        page.table(
            ["change", "key", "RMS distance", "shape A", "shape B"],
            [
                [w["change"], w["key"], w.get("rms"), w.get("shape_a"), w.get("shape_b")]
                for w in result["weights"]
            ],
        )
        moved = [w for w in result["weights"] if w["change"] == "~"]
        if moved:
            page.charts(
                [
                    bars_svg(
                        [w["key"] for w in moved],
                        [w["rms"] for w in moved],
                        "RMS distance per tensor",
                        "RMS",
                    )
                ]
            )
    environment = result.get("environment")
    if environment and environment.get("differences"):
        page.heading("Environment differences")
        rows, classes = environment_rows(environment["differences"])
        page.table(["severity", "key", "A", "B", "reason"], rows, classes)
    return page.render()


def rebuild_html(report: Mapping[str, Any]) -> str:
    """``keel rebuild --html``: verdict, reasons and causes, metric deltas, confusion-matrix
    pair, score-difference histogram, per-class changes, environment differences."""
    equivalent = report["verdict"] == "equivalent"
    page = Page(
        f"keel rebuild {report['original']}",
        equivalent,
        "equivalent" if equivalent else "drifted",
    )
    page.items(report["reasons"])
    if report["causes"]:
        page.heading("Likely causes")
        page.items(report["causes"])
    page.text(f"weights bit-identical: {report['weights_bit_identical']}")
    deltas = report["metric_deltas"]
    if deltas:
        page.heading("Validation metrics")
        page.table(
            ["metric", "original", "rebuilt", "delta"],
            [[name, d["original"], d["rebuilt"], d["delta"]] for name, d in deltas.items()],
        )
        per_class = {
            name: d
            for name, d in deltas.items()
            if "_" in name and not name.startswith(("macro_", "micro_", "weighted_"))
        }
        charts = [
            bars_svg(
                list(deltas),
                [d["delta"] for d in deltas.values()],
                "metric deltas (rebuilt - original)",
                "delta",
            )
        ]
        page.charts(charts)
        if per_class:
            page.heading("Per-class changes")
            page.table(
                ["class metric", "original", "rebuilt", "delta"],
                [[name, d["original"], d["rebuilt"], d["delta"]] for name, d in per_class.items()],
            )
    confusion = report.get("confusion")
    charts = []
    if confusion:
        charts.append(confusion_svg(confusion["labels"], confusion["original"], "original"))
        charts.append(confusion_svg(confusion["labels"], confusion["rebuilt"], "rebuilt"))
    for label in ("validation", "golden"):
        section = report.get(label) or {}
        histogram = (section.get("score_difference") or {}).get("histogram")
        if histogram and histogram["counts"]:
            charts.append(histogram_svg(histogram["counts"], histogram["edges"], f"{label} set"))
    if charts:
        page.heading("Outputs")
        for label in ("validation", "golden"):
            section = report.get(label) or {}
            if section.get("compared"):
                largest = section["score_difference"]["max"]
                page.text(
                    f"{label}: {section['agreement']:.2%} of {section['compared']} decoded "
                    f"outputs agree; |score difference| max {largest:.3g}"
                )
        page.charts(charts)
    environment = report.get("environment")
    if environment and environment.get("differences"):
        page.heading("Environment differences between the two training runs")
        rows, classes = environment_rows(environment["differences"])
        page.table(["severity", "key", "original", "rebuild", "reason"], rows, classes)
    return page.render()
