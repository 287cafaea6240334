"""The ``keel`` command."""

from __future__ import annotations

import typer

from keel import __version__
from keel.cli import archive as archive_commands
from keel.cli import cache as cache_commands
from keel.cli import config as config_commands
from keel.cli import data as data_commands
from keel.cli import env as env_commands
from keel.cli import rebuild as rebuild_commands
from keel.cli import serve as serve_commands
from keel.cli import sign as sign_commands
from keel.cli import train as train_commands
from keel.cli import verify as verify_commands

app = typer.Typer(
    name="keel",
    help="Train, archive, verify and serve NLP models that survive migration.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("train")(train_commands.train)
app.command("evaluate")(train_commands.evaluate)
app.command("predict")(train_commands.predict)
app.command("verify")(verify_commands.verify)
app.command("doctor")(verify_commands.doctor)
app.command("keygen")(sign_commands.keygen)
app.command("sign")(sign_commands.sign)
app.command("serve")(serve_commands.serve)
app.command("rebuild")(rebuild_commands.rebuild)
app.add_typer(env_commands.app, name="env")
app.add_typer(data_commands.app, name="data")
app.add_typer(cache_commands.app, name="cache")
app.add_typer(config_commands.app, name="config")
app.add_typer(archive_commands.app, name="archive")


@app.command("version")
def version() -> None:
    """Print keel's version."""
    typer.echo(__version__)


def main() -> None:
    _quiet_third_party_progress()
    _exit_cleanly_on_sigterm()
    app()


def _exit_cleanly_on_sigterm() -> None:
    """SIGTERM (what schedulers and Kubernetes send) ends the command like Ctrl-C does: the
    ``with`` blocks unwind, so every temporary folder is removed, and the exit status is 143.
    ``keel serve`` replaces this with uvicorn's graceful shutdown."""
    import signal

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)


def _quiet_third_party_progress() -> None:
    # transformers prints a progress bar on every model load; keel reports its own progress.
    import os

    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


if __name__ == "__main__":
    main()
