"""``mlflow``: the run in an MLflow tracking store: config, metrics, archive, verdict."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar

from keel.common.constraints import Positive, Supplied
from keel.common.filenames import CONFIG_NAME
from keel.common.optional_dependencies import require
from keel.training.callbacks.callback import TrainerCallback

#: MLflow's own limit on a parameter value's length
_PARAM_LENGTH = 6000


@TrainerCallback.register("mlflow")
class MlflowCallback(TrainerCallback):
    """Logs the run to MLflow (``pip install 'keel[mlflow]'``).

    Parameters: the resolved config, flattened to dotted paths. Metrics: every numeric metric of
    each epoch (step = epoch), and every ``log_every_batches`` steps the batch loss. Artifacts:
    the archive and its manifest. Tags: keel's verify verdict of the archive
    (``keel.verify`` = pass/fail, ``keel.verify.failed``) and the model name/version.

    ``tracking_uri``: the config's, else ``$MLFLOW_TRACKING_URI``, else a local store inside the
    serialization directory (``sqlite:///SERIALIZATION_DIR/mlflow.db``, artifacts in
    ``SERIALIZATION_DIR/mlartifacts``): nothing leaves the machine unless asked. A recovered
    run logs into the same MLflow run.
    """

    wants_verdict: ClassVar[bool] = True

    def __init__(
        self,
        serialization_dir: Annotated[str, Supplied],
        tracking_uri: str | None = None,
        experiment_name: str = "keel",
        run_name: str | None = None,
        log_every_batches: Annotated[int, Positive] | None = None,
    ) -> None:
        super().__init__(serialization_dir)
        self.tracking_uri = tracking_uri
        self.experiment_name = experiment_name
        self.run_name = run_name
        self.log_every_batches = log_every_batches
        self.run_id: str | None = None
        self._steps = 0

    def _mlflow(self) -> Any:
        mlflow = require("mlflow", extra="mlflow", needed_by="the mlflow callback")
        uri = self.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
        local = uri is None
        if local:
            uri = f"sqlite:///{(self.serialization_dir / 'mlflow.db').resolve()}"
        mlflow.set_tracking_uri(uri)
        if mlflow.get_experiment_by_name(self.experiment_name) is None:
            location = (
                (self.serialization_dir / "mlartifacts").resolve().as_uri() if local else None
            )
            mlflow.create_experiment(self.experiment_name, artifact_location=location)
        mlflow.set_experiment(self.experiment_name)
        return mlflow

    def on_start(self, trainer: Any, is_primary: bool = True, **kwargs: Any) -> None:
        if not is_primary:
            return
        mlflow = self._mlflow()
        if self.run_id is not None:  # --recover: continue the interrupted run
            mlflow.start_run(run_id=self.run_id)
            return
        run = mlflow.start_run(run_name=self.run_name or self.serialization_dir.name)
        self.run_id = run.info.run_id
        config_path = self.serialization_dir / CONFIG_NAME
        if config_path.is_file():
            config = json.loads(config_path.read_text(encoding="utf-8"))
            mlflow.log_params(
                {key: value[:_PARAM_LENGTH] for key, value in _flatten(config).items()}
            )
            for key in ("model_name", "model_version"):
                if config.get(key):
                    mlflow.set_tag(f"keel.{key}", config[key])
        mlflow.set_tag("keel.serialization_dir", str(self.serialization_dir.resolve()))

    def on_batch(
        self,
        trainer: Any,
        batch_inputs: list[dict[str, Any]],
        batch_outputs: list[dict[str, Any]],
        batch_metrics: dict[str, Any],
        epoch: int,
        batch_number: int,
        is_training: bool,
        is_primary: bool = True,
        batch_grad_norm: float | None = None,
        **kwargs: Any,
    ) -> None:
        if not (is_primary and is_training and self.log_every_batches):
            return
        self._steps += 1
        if self._steps % self.log_every_batches == 0 and "batch_loss" in batch_metrics:
            mlflow = require("mlflow", extra="mlflow")
            mlflow.log_metric("batch_loss", float(batch_metrics["batch_loss"]), step=self._steps)

    def on_epoch(
        self,
        trainer: Any,
        metrics: dict[str, Any],
        epoch: int,
        is_primary: bool = True,
        **kwargs: Any,
    ) -> None:
        if not is_primary:
            return
        mlflow = require("mlflow", extra="mlflow")
        numeric = {
            key: float(value)
            for key, value in metrics.items()
            if isinstance(value, int | float) and not isinstance(value, bool)
        }
        mlflow.log_metrics(numeric, step=epoch)

    def on_archive(
        self,
        archive_path: Path,
        manifest: Mapping[str, Any],
        verdict: Mapping[str, Any] | None,
        is_primary: bool = True,
    ) -> None:
        if not is_primary or self.run_id is None:
            return
        mlflow = require("mlflow", extra="mlflow")
        mlflow.log_artifact(str(archive_path))
        mlflow.log_dict(dict(manifest), "manifest.json")
        if verdict is not None:
            mlflow.set_tag("keel.verify", "pass" if verdict.get("ok") else "fail")
            mlflow.set_tag("keel.verify.failed", ",".join(verdict.get("failed") or []) or "-")
        mlflow.end_run(status="FINISHED")

    def on_error(self, error: BaseException, is_primary: bool = True) -> None:
        if not is_primary or self.run_id is None:
            return
        mlflow = require("mlflow", extra="mlflow")
        if mlflow.active_run() is not None:
            mlflow.set_tag("keel.error", f"{type(error).__name__}: {error}"[:_PARAM_LENGTH])
            mlflow.end_run(
                status="KILLED" if isinstance(error, KeyboardInterrupt | SystemExit) else "FAILED"
            )

    def state_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "steps": self._steps}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.run_id = state.get("run_id")
        self._steps = int(state.get("steps", 0))


def _flatten(value: Any, prefix: str = "") -> dict[str, str]:
    if isinstance(value, dict):
        flat: dict[str, str] = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix: json.dumps(value) if not isinstance(value, str) else value}
