"""``keel verify`` and ``keel doctor``: verdicts with exit codes for pipelines."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from keel.cli.common import (
    AllowUnchecked,
    HtmlOption,
    IncludePackage,
    JunitOption,
    SignerOption,
    TrustedKeysDirOption,
    emit_report,
    keel_errors_exit,
    write_html,
)
from keel.cli.train import TrustBundledCode


@keel_errors_exit
def verify(
    archive: Annotated[Path, typer.Argument(help="The model.tar.gz to verify.")],
    data: Annotated[
        Path | None, typer.Option("--data", help="A labelled file: check the metric on it.")
    ] = None,
    tolerance: Annotated[
        float | None,
        typer.Option("--tolerance", help="Max |logit difference| (default 1e-5 same device)."),
    ] = None,
    metric_tolerance: Annotated[
        float, typer.Option("--metric-tolerance", help="Allowed metric difference with --data.")
    ] = 0.005,
    allow_env_drift: Annotated[
        bool, typer.Option("--allow-env-drift", help="Do not fail on breaking env differences.")
    ] = False,
    allow_unchecked: AllowUnchecked = [],  # noqa: B006
    device: Annotated[
        str, typer.Option("--device", help="cpu, cuda or cuda:N: where the model is replayed.")
    ] = "cpu",
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    junit: JunitOption = None,
    html: HtmlOption = None,
    include_package: IncludePackage = [],  # noqa: B006
    signer: SignerOption = [],  # noqa: B006
    trusted_keys: TrustedKeysDirOption = [],  # noqa: B006
    trust_bundled_code: TrustBundledCode = False,
) -> None:
    """Check that ARCHIVE still behaves here exactly as when it was trained (exit 1 if not).

    A step that could not check (nothing recorded to compare with) is not_checked and fails the
    verdict unless named with --allow-unchecked STEP.
    """
    from keel.common.plugins import import_plugins
    from keel.guard.verify import verify_archive

    import_plugins(include_package)
    if trust_bundled_code:
        _import_bundled_code(archive, signer, trusted_keys)
    report = verify_archive(
        archive,
        data=str(data) if data else None,
        tolerance=tolerance,
        metric_tolerance=metric_tolerance,
        allow_env_drift=allow_env_drift,
        allow_unchecked=tuple(allow_unchecked),
        device=device,
        include_packages=tuple(include_package),
        signers=tuple(str(path) for path in signer),
        trusted_keys_dirs=tuple(str(path) for path in trusted_keys),
    )
    if html is not None:
        from keel.guard.html_report import verify_html

        write_html(html, lambda: verify_html(report.to_dict()))
    raise typer.Exit(emit_report(report, as_json=as_json, junit=junit))


def _import_bundled_code(archive: Path, signers: list[Path], trusted_dirs: list[Path]) -> None:
    """Import the archive's bundled code; a signature, when asked for, is checked first."""
    from keel.archive.archive import opened_archive
    from keel.archive.bundled_code import load_bundled_code
    from keel.archive.signing import trusted_public_keys, verify_signature

    if signers or trusted_dirs:
        verify_signature(archive, trusted_public_keys(signers, trusted_dirs))
    with opened_archive(archive) as (root, manifest):
        load_bundled_code(root, manifest)


@keel_errors_exit
def doctor(
    archive: Annotated[Path | None, typer.Argument(help="An archive to verify too.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    junit: JunitOption = None,
    allow_unchecked: AllowUnchecked = [],  # noqa: B006
    include_package: IncludePackage = [],  # noqa: B006
    distributed: Annotated[
        bool,
        typer.Option(
            "--distributed", help="Also check the ranks of this torchrun job (see env check)."
        ),
    ] = False,
) -> None:
    """env check + verify (with an archive) + a reproducibility checklist, one exit code."""
    from keel.common.plugins import import_plugins
    from keel.guard.doctor import run_doctor

    import_plugins(include_package)
    report = run_doctor(
        str(archive) if archive else None,
        include_packages=tuple(include_package),
        allow_unchecked=tuple(allow_unchecked),
        distributed=distributed,
    )
    raise typer.Exit(emit_report(report, as_json=as_json, junit=junit))
