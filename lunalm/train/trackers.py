"""Experiment trackers beside TensorBoard: ``--report-to tensorboard,wandb,mlflow,trackio``, like
transformers' ``report_to``.

Each tracker gets what TensorBoard gets, under the same names (``train/loss``, ``val/bits_per_byte`` ...,
the names ``metrics.jsonl`` records too), plus the resolved run config when the run starts and the final
metrics (``summary.json``'s numbers) when it ends. TensorBoard itself is written by
``lunalm.train.metrics.RunLogger``; this module holds the others, each imported only when asked for:

* ``wandb``: ``wandb.init(project="lunalm", name=RUN, dir=RUN_DIR, config=...)``; ``WANDB_MODE=offline``
  keeps everything in ``RUN_DIR/wandb`` (sync later with ``wandb sync``).
* ``mlflow``: a run named after ours in ``MLFLOW_TRACKING_URI`` (default: ``sqlite:///RUN_DIR/mlflow.db``, a
  local SQLite store); config as params (flattened, ``train.lr``), metrics with their steps.
* ``trackio``: ``trackio.init(project="lunalm", name=RUN, config=...)``, local by default.

A tracker that is not installed is refused before training starts, with the pip command.
"""

from __future__ import annotations

import math
from pathlib import Path

from lunalm.config import REPORT_TO  # noqa: F401  (the names; validated by TrainConfig)
from lunalm.errors import ConfigError

PACKAGES = {"wandb": "wandb", "mlflow": "mlflow", "trackio": "trackio"}  # tracker -> pip package
PROJECT = "lunalm"


def check_trackers(names: tuple[str, ...]) -> None:
    """Refuse unknown or uninstalled trackers (before any data or model work)."""
    import importlib.util

    missing = [name for name in names if name in PACKAGES and importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigError(f"--report-to {','.join(missing)}: not installed; pip install "
                          f"{' '.join(PACKAGES[name] for name in missing)}")


def open_trackers(names: tuple[str, ...], run_dir: Path, run_name: str, config: dict) -> list:
    """The trackers named in ``names`` other than tensorboard, each started with the run config."""
    check_trackers(names)
    kinds = {"wandb": WandbTracker, "mlflow": MlflowTracker, "trackio": TrackioTracker}
    return [kinds[name](Path(run_dir), run_name, config) for name in names if name in kinds]


def _finite(values: dict) -> dict:
    return {k: float(v) for k, v in values.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}


class WandbTracker:
    def __init__(self, run_dir: Path, run_name: str, config: dict):
        import wandb

        self.run = wandb.init(project=PROJECT, name=run_name, dir=str(run_dir), config=config, reinit=True)

    def log(self, values: dict, step: int) -> None:
        self.run.log(_finite(values), step=step)

    def summary(self, values: dict) -> None:
        self.run.summary.update(_finite(values))

    def close(self) -> None:
        self.run.finish()


class MlflowTracker:
    def __init__(self, run_dir: Path, run_name: str, config: dict):
        import os

        import mlflow

        default = f"sqlite:///{(run_dir / 'mlflow.db').resolve()}"  # MLflow 3 retired the file store default
        self.client = mlflow.MlflowClient(os.environ.get("MLFLOW_TRACKING_URI") or default)
        experiment = self.client.get_experiment_by_name(PROJECT)
        experiment_id = experiment.experiment_id if experiment else self.client.create_experiment(PROJECT)
        self.run_id = self.client.create_run(experiment_id, run_name=run_name).info.run_id
        for key, value in sorted(_flatten(config).items())[:100]:  # MLflow caps a batch at 100 params
            self.client.log_param(self.run_id, key, str(value)[:500])

    def log(self, values: dict, step: int) -> None:
        for name, value in _finite(values).items():
            self.client.log_metric(self.run_id, name, value, step=step)

    def summary(self, values: dict) -> None:
        self.log({f"final/{k}": v for k, v in values.items()}, step=0)

    def close(self) -> None:
        self.client.set_terminated(self.run_id)


class TrackioTracker:
    def __init__(self, run_dir: Path, run_name: str, config: dict):
        import trackio

        self.trackio = trackio
        trackio.init(project=PROJECT, name=run_name, config=config)

    def log(self, values: dict, step: int) -> None:
        self.trackio.log(_finite(values), step=step)

    def summary(self, values: dict) -> None:
        self.trackio.log({f"final/{k}": v for k, v in _finite(values).items()})

    def close(self) -> None:
        self.trackio.finish()


def _flatten(config: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, name + "."))
        elif value is not None:
            flat[name] = value
    return flat
