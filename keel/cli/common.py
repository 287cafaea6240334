"""What every command shares: options, error rendering and exit codes.

Exit codes: 0 success; 1 a verdict failed (verify, env diff, data validate); 2 the command could
not run (bad config, bad input, unreadable archive).
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape as rich_escape

from keel.common import errors
from keel.common.errors import KeelError, printable
from keel.guard.results import Report

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_ERROR = 2

console = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])

IncludePackage = Annotated[
    list[str],
    typer.Option(
        "--include-package",
        help="Import this module and its submodules so their components register (repeatable).",
    ),
]
Overrides = Annotated[
    str | None,
    typer.Option("--overrides", "-o", help="A JSON/Jsonnet object merged over the config."),
]
ExtVar = Annotated[
    list[str],
    typer.Option("--ext-var", help="name=value for std.extVar in Jsonnet (repeatable)."),
]


_LOG_HANDLER_NAME = "keel-cli"


def configure_logging(quiet: bool = False) -> None:
    """Send keel's log records (epoch summaries, progress away from a terminal) to stderr.

    INFO, or WARNING with ``quiet``. Idempotent: a second call adjusts the one handler.
    """
    package_logger = logging.getLogger("keel")
    package_logger.setLevel(logging.WARNING if quiet else logging.INFO)
    existing = [h for h in package_logger.handlers if h.get_name() == _LOG_HANDLER_NAME]
    if existing:
        # The command runs again in the same process (a test runner, a notebook): log to the
        # stderr of now, not to the one of the first call, which may be closed.
        for handler in existing:
            if isinstance(handler, logging.StreamHandler):
                # Not setStream: it flushes the old stream first, which may be closed.
                handler.acquire()
                try:
                    handler.stream = sys.stderr
                finally:
                    handler.release()
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_LOG_HANDLER_NAME)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    package_logger.addHandler(handler)


def keel_errors_exit(function: F) -> F:
    """Render keel's errors as one clear message and exit 2, instead of a traceback.

    What the operating system refuses (a full disk, a permission) is a KeelError too (``KS001``):
    the user can act on it, and no traceback helps them."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except KeelError as error:
            _print_error(error)
            raise typer.Exit(EXIT_ERROR) from error
        except OSError as error:
            wrapped = KeelError(
                f"{error.strerror or error}"
                + (f": {error.filename}" if error.filename else "")
                + " (the operating system refused; nothing was left half-written)",
                code=errors.OS_FAILURE,
            )
            _print_error(wrapped)
            raise typer.Exit(EXIT_ERROR) from error

    return wrapper  # type: ignore[return-value]


def _print_error(error: KeelError) -> None:
    console.print(
        "[bold red]error[/]", rich_escape(printable(str(error))), highlight=False, soft_wrap=True
    )


_STATUS_STYLE = {
    "pass": "green",
    "fail": "bold red",
    "not_checked": "bold magenta",
    "skipped": "yellow",
}

AllowUnchecked = Annotated[
    list[str],
    typer.Option(
        "--allow-unchecked",
        help="Accept that this check could not check (its not_checked no longer fails the "
        "verdict; every output still shows it). Repeatable.",
    ),
]
JunitOption = Annotated[
    Path | None, typer.Option("--junit", help="Also write the report as JUnit XML here.")
]
SignerOption = Annotated[
    list[Path],
    typer.Option("--signer", help="A trusted public key (PEM): check the signature."),
]
TrustedKeysDirOption = Annotated[
    list[Path],
    typer.Option("--trusted-keys", help="A folder of trusted *.pub keys: check the signature."),
]
HtmlOption = Annotated[
    Path | None,
    typer.Option(
        "--html", help="Also write a self-contained HTML report here (pip install 'keel[report]')."
    ),
]


def write_html(destination: Path | None, render: Callable[[], str]) -> None:
    """Write ``render()`` to ``destination`` atomically, when one is given."""
    if destination is None:
        return
    from keel.common.file_utils import atomic_write_text

    atomic_write_text(destination, render())
    console.print(f"HTML report: {destination}")


def emit_report(report: Report, *, as_json: bool = False, junit: Path | None = None) -> int:
    """Render a guard report (table on stderr, or JSON on stdout; JUnit XML to a file) and
    return its exit code: 0 when the verdict passes, 1 when it fails."""
    from rich.table import Table

    from keel.common.file_utils import atomic_write_text

    if junit is not None:
        atomic_write_text(junit, report.to_junit_xml())
    if as_json:
        sys.stdout.write(report.to_json())
    else:
        table = Table(title=f"keel {report.command} {report.subject}", show_lines=False)
        for column in ("check", "result", "reason"):
            table.add_column(column, overflow="fold")
        for check in report.checks:
            status = str(check.status)
            cell = f"[{_STATUS_STYLE[status]}]{status}[/]"
            if check.allowed_by:
                cell += f"\n[dim](allowed by {rich_escape(check.allowed_by)})[/]"
            reason = rich_escape(check.reason)
            if check.fix and check.blocks:
                reason += f"\nfix: {rich_escape(check.fix)}"
            table.add_row(rich_escape(check.name), cell, reason)
        # The report is the command's output: stdout (a Console per call, so a caller that
        # swaps sys.stdout, as CliRunner does, captures it); the verdict line too.
        out = Console(file=sys.stdout, soft_wrap=False)
        out.print(table)
        if report.ok:
            verdict = "[green]PASS[/]"
            if report.escapes:
                allowed = ", ".join(str(item["allowed_by"]) for item in report.escapes)
                verdict += f" [magenta](with escapes: {rich_escape(allowed)})[/]"
        else:
            verdict = f"[bold red]FAIL[/] ({rich_escape(', '.join(report.failed))})"
        out.print(f"verdict: {verdict}", highlight=False)
    return EXIT_OK if report.ok else EXIT_FAILED


def write_json_lines(rows: list[dict[str, Any]], destination: str | None) -> None:
    text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    if destination in (None, "-"):
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        from keel.common.file_utils import atomic_write_text

        atomic_write_text(destination, text)
