"""The run folder: everything `kws-kd train` leaves behind, and the one reader of it.

A run folder is the hand-off between training and everything after it (eval,
export, plots, the demo). Its layout is fixed here and nowhere else:

    RUN/config.json          resolved training config (see `RunConfig`)
    RUN/labels.txt           one label per line, index order of the logits
    RUN/best.weights.h5      weights of the best validation step (training model)
    RUN/last.weights.h5      weights at the last finished step
    RUN/checkpoint/          resume state (model + optimizer + step)
    RUN/history.csv/.json    one row per validation
    RUN/test_metrics.json    final test metrics of the best weights
    RUN/tensorboard/         TensorBoard scalars

Weights are always those of the *training* model (`attention=True`: logits +
attention outputs, attention branch included). Students' weights do not depend
on the clip length, so `Run.build_model` rebuilds the student at any length,
batch size or for export, loads the weights, and `strip=True` returns the
logits-only inference model.

This module imports TensorFlow/Keras only inside the functions that build models,
so reading a run's config is cheap.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kws_kd.atomic import atomic_write_text
from kws_kd.audio import SAMPLE_RATE
from kws_kd.errors import KwsKdError
from kws_kd.jsonio import read_json_object
from kws_kd.options import config_fields, like, option
from kws_kd.train_options import TrainOptions

RUN_FORMAT = "kws-kd-run"
RUN_VERSION = 1

CONFIG_JSON = "config.json"
LABELS_TXT = "labels.txt"
BEST_WEIGHTS = "best.weights.h5"
LAST_WEIGHTS = "last.weights.h5"
CHECKPOINT_DIR = "checkpoint"
HISTORY_CSV = "history.csv"
HISTORY_JSON = "history.json"
TEST_METRICS = "test_metrics.json"
TENSORBOARD_DIR = "tensorboard"


@dataclass
class RunConfig(TrainOptions):
    """The resolved training configuration, written verbatim to `config.json`.

    Its fields are `TrainOptions`' (one definition of every option) with every
    default resolved before training starts (no `None` meaning "whatever the
    code does today"), plus what `kws_kd.train.prepare` reads off the data, so a
    run can be reproduced and resumed from this file.
    """

    data: str = like(TrainOptions, "data", "")
    out: str = like(TrainOptions, "out", "")
    labels: list[str] = option([], "label names, in the logits' order", cli=False)
    multi_label: bool = option(False, "multi-hot labels (mAP) instead of one label per clip", cli=False)
    clip_seconds: float = like(TrainOptions, "clip_seconds", 1.0)
    sample_rate: int = option(SAMPLE_RATE, "audio sample rate", cli=False)
    manifest_hash: str = option("", "content hash of the dataset manifest", cli=False)
    format: str = option(RUN_FORMAT, cli=False)
    version: int = option(RUN_VERSION, cli=False)

    @property
    def clip_samples(self) -> int:
        return int(round(self.clip_seconds * self.sample_rate))

    @property
    def metric_name(self) -> str:
        """The validation metric that picks the best weights."""
        return "mAP" if self.multi_label else "accuracy"

    def to_dict(self) -> dict:
        """The config.json content (the run folder itself is not in it)."""
        return {k: getattr(self, k) for k in config_fields(type(self))}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_dict(cls, data: dict, source: str = CONFIG_JSON, out: str = "") -> "RunConfig":
        names = set(config_fields(cls))
        if data.get("format") not in (None, RUN_FORMAT):
            raise KwsKdError(f"{source}: format is {data.get('format')!r}, not a kws-kd run config")
        missing = [k for k in ("model", "labels") if k not in data]
        if missing:
            raise KwsKdError(f"{source}: missing field(s) {', '.join(missing)}")
        unknown = sorted(set(data) - names)
        if unknown:
            raise KwsKdError(f"{source}: unknown field(s) {', '.join(unknown)} (written by a newer kws-kd?)")
        # Runs written before --teacher-first-frame existed trained on the stored frame 0.
        data = {"teacher_first_frame": "keep", **data}
        return cls(out=out, **data)


def write_config(run_dir: str | Path, config: RunConfig) -> None:
    """Write `config.json` and `labels.txt` atomically."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / CONFIG_JSON, config.to_json())
    atomic_write_text(run_dir / LABELS_TXT, "".join(f"{lab}\n" for lab in config.labels))


def read_config(run_dir: str | Path) -> RunConfig:
    path = Path(run_dir) / CONFIG_JSON
    data = read_json_object(path, f"{Path(run_dir)} is not a kws-kd run folder")
    return RunConfig.from_dict(data, source=str(path), out=str(run_dir))


def student_config_object(model: str, config: dict[str, Any] | None):
    """Turn the JSON dict stored in a run into the student's config dataclass."""
    from kws_kd.students.registry import make_config

    return make_config(model, config or {})


def student_config_dict(config) -> dict[str, Any]:
    """The JSON-able form of a student config (dataclass, dict or None)."""
    if config is None:
        return {}
    if dataclasses.is_dataclass(config):
        return json.loads(json.dumps(dataclasses.asdict(config)))
    return dict(config)


def strip_model(model):
    """`strip` of the students package (the logits-only model sharing the weights)."""
    from kws_kd.students import registry

    fn = getattr(registry, "strip", None)
    if fn is None:
        from kws_kd.students.attention import strip as fn
    return fn(model)


@dataclass
class Run:
    """A run folder opened for reading (see the module docstring)."""

    path: Path
    config: RunConfig

    @property
    def labels(self) -> list[str]:
        return list(self.config.labels)

    @property
    def multi_label(self) -> bool:
        return self.config.multi_label

    @property
    def model_name(self) -> str:
        return self.config.model

    def weights_path(self, which: str = "best") -> Path:
        name = {"best": BEST_WEIGHTS, "last": LAST_WEIGHTS}.get(which)
        if name is None:
            raise KwsKdError(f"unknown weights {which!r}; expected 'best' or 'last'")
        path = self.path / name
        if not path.is_file():
            raise KwsKdError(f"{path}: missing; the run has no {which} weights yet (did training finish a validation?)")
        return path

    @property
    def test_metrics(self) -> dict | None:
        path = self.path / TEST_METRICS
        return json.loads(path.read_text()) if path.is_file() else None

    def history(self) -> list[dict]:
        path = self.path / HISTORY_JSON
        return json.loads(path.read_text()) if path.is_file() else []

    def clip_samples(self, clip_seconds: float | None = None) -> int:
        seconds = self.config.clip_seconds if clip_seconds is None else clip_seconds
        return int(round(seconds * self.config.sample_rate))

    def build_model(
        self,
        clip_seconds: float | None = None,
        *,
        weights: str | None = "best",
        strip: bool = False,
        for_export: bool = False,
        batch_size: int | None = None,
    ):
        """Rebuild the student at `clip_seconds` (default: the trained length) with the run's weights.

        `strip=True` returns the logits-only inference model (no attention branch);
        `for_export=True` builds the export variant (batch 1 by default, unrolled
        recurrences). `weights=None` leaves the fresh initialisation (used by
        training itself).
        """
        from kws_kd.students.registry import build_student

        if for_export and batch_size is None:
            batch_size = 1
        model = build_student(
            self.config.model,
            len(self.config.labels),
            self.clip_samples(clip_seconds),
            student_config_object(self.config.model, self.config.student_config),
            attention=True,
            batch_size=batch_size,
            for_export=for_export,
        )
        if weights is not None:
            path = self.weights_path(weights)
            try:
                model.load_weights(str(path))
            except Exception as exc:  # noqa: BLE001 - Keras raises many types for a bad file
                raise KwsKdError(f"{path}: cannot load into {self.config.model} ({type(exc).__name__}: {exc})") from None
        return strip_model(model) if strip else model


def load_run(path: str | Path) -> Run:
    """Open a run folder written by `kws-kd train` (clear error when it is not one)."""
    path = Path(path)
    if not path.is_dir():
        raise KwsKdError(f"{path}: no such run folder")
    config = read_config(path)
    labels_path = path / LABELS_TXT
    if labels_path.is_file():
        labels = [line for line in labels_path.read_text().splitlines() if line]
        if labels != list(config.labels):
            raise KwsKdError(f"{labels_path}: labels differ from {CONFIG_JSON}")
    return Run(path=path.resolve(), config=config)


def write_json(path: str | Path, data: Any) -> None:
    """Atomic JSON write; NaN/inf become null so the file stays valid JSON."""

    def clean(x):
        if isinstance(x, float) and not math.isfinite(x):
            return None
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [clean(v) for v in x]
        return x

    atomic_write_text(path, json.dumps(clean(data), indent=2) + "\n")


HISTORY_FIELDS = (
    "step",
    "lr",
    "train_loss",
    "train_cls",
    "train_kd",
    "train_logit_kd",
    "val_loss",
    "val_metric",
    "best",
    "seconds",
)


def write_history(run_dir: str | Path, rows: list[dict]) -> None:
    """Write the metrics history as JSON and CSV (same rows, atomic)."""
    import csv
    import io

    run_dir = Path(run_dir)
    write_json(run_dir / HISTORY_JSON, rows)
    sio = io.StringIO()
    fields = list(HISTORY_FIELDS) + sorted({k for r in rows for k in r} - set(HISTORY_FIELDS))
    writer = csv.DictWriter(sio, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: r.get(k, "") for k in fields})
    atomic_write_text(run_dir / HISTORY_CSV, sio.getvalue())
