"""The Python API for Keras users (docs/python_api.md): what `kws-kd train` / `export` do, as functions.

    student = build_student("tc_resnet", num_labels, clip_samples)
    data = distillation_dataset("tc_resnet", DATA, STORE, batch_size=32)
    distiller = TemporalDistiller(student, kd_lambda=0.25)
    distiller.compile(optimizer=keras.optimizers.Adam(1e-3))
    distiller.fit(data, epochs=..., steps_per_epoch=...)
    export_tflite(student, "student_int8.tflite", quantize="int8", labels=..., calibration=audio)

Every function here is the same code path the CLI runs, so a model trained
here exports and evaluates exactly like a `kws-kd train` run.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from kws_kd.errors import KwsKdError


def distillation_dataset(model: str, data: str | os.PathLike, teacher_store: str | os.PathLike | None = None, *,
                         batch_size: int = 32, seed: int = 0, clip_seconds: float | None = None,
                         teacher_first_frame: str = "neighbour", interpolation: str = "linear"):
    """The training stream `fit()` takes: `(audio, {"label", "teacher_attention"})` batches, epoch after epoch.

    The teacher's stored rollout is resampled to `model`'s attention length and
    joined to each clip (checks as `kws-kd train`: a store for other data, or
    missing clips, is a one-line error). Without a store the targets are left out
    (a vanilla student). Infinite: give `fit` a `steps_per_epoch`.
    """
    from kws_kd.train import TrainOptions, prepare
    from kws_kd.train_data import train_stream

    opts = TrainOptions(model=model, data=str(data), out="", teacher_store=str(teacher_store) if teacher_store else None,
                        kd_lambda=1.0 if teacher_store else 0.0, batch_size=batch_size, seed=seed,
                        clip_seconds=clip_seconds, teacher_first_frame=teacher_first_frame,
                        interpolation=interpolation, feature_cache="off")
    return train_stream(prepare(opts), 0)


def _export_build(student):
    """The export variant (plain forms, batch 1, unrolled recurrences) of any build, with its weights."""
    from kws_kd.students.base import student_info

    info = student_info(student)
    if info.options.features_input:
        raise KwsKdError(f"{student.name}: a features-input build has no front end to export; build it from audio")
    from kws_kd.students.attention import strip

    return strip(_rebuilt(student, for_export=True))


def _rebuilt(student, **build_options):
    """The same student built with other `build_student` options, carrying its weights (through a weights file,
    which matches variables by path, so the training and the plain/export forms exchange weights)."""
    from kws_kd.students.base import student_info
    from kws_kd.students.registry import build_student

    info = student_info(student)
    rebuilt = build_student(info.spec.name, info.options.num_labels, info.options.clip_samples, info.config,
                            attention=True, **build_options)
    with tempfile.TemporaryDirectory(prefix="kws-kd-weights-") as tmp:
        path = Path(tmp) / "student.weights.h5"
        _training_model(student).save_weights(str(path))
        rebuilt.load_weights(str(path))
    return rebuilt


def _training_model(student):
    """The [logits, attention] model a build belongs to (weights files always hold that one)."""
    from kws_kd.students.base import assemble, student_info

    info = student_info(student)
    return student if info.attention else assemble(info.spec, info.config, info.layers, info.options, attention=True)


def export_tflite(student, path: str | os.PathLike, *, quantize: str = "int8", labels: list[str],
                  calibration: np.ndarray | None = None, multi_label: bool = False) -> Path:
    """Convert a trained student (any build of it) to `path` and write its sidecar beside it.

    `calibration`: float audio [N, samples] for int8 (a few hundred training
    clips; the front end stays float).
    """
    from kws_kd.students.base import student_info
    from kws_kd.tflite.convert import convert_model
    from kws_kd.tflite.sidecar import build_sidecar, sidecar_path, write_sidecar

    path = Path(path)
    if quantize == "int8" and calibration is None:
        raise KwsKdError(f"{path}: int8 export needs calibration audio")
    info = student_info(student)
    if len(labels) != info.options.num_labels:
        raise KwsKdError(f"{path}: {len(labels)} labels for a student with {info.options.num_labels} outputs")
    convert_model(_export_build(student), {quantize: path}, representative=calibration)
    front = info.config.front_end
    sidecar = build_sidecar(path, model=info.spec.name, quantize=quantize, labels=list(labels),
                            multi_label=multi_label, sample_rate=front.sample_rate, front_end=front.to_dict(),
                            source_run=None, test_metrics=None)
    write_sidecar(sidecar_path(path), sidecar)
    return path


def save_student(student, path: str | os.PathLike) -> Path:
    """Save the stripped, plain-graph student as a `.keras` file (`keras.saving.load_model` reads it back)."""
    import keras

    from kws_kd.students.attention import strip

    path = Path(path)
    if path.suffix != ".keras":
        raise KwsKdError(f"{path}: a Keras model file must end in .keras")
    plain = _rebuilt(student, fast_graph=False)
    tmp = path.with_name(f".{path.stem}.tmp.keras")  # Keras wants the .keras suffix: write, then rename
    path.parent.mkdir(parents=True, exist_ok=True)
    keras.saving.save_model(strip(plain), str(tmp))
    os.replace(tmp, path)
    return path


def load_student(path: str | os.PathLike):
    """A `.keras` student saved by `save_student` (logits only)."""
    import keras

    import kws_kd.students.registry  # noqa: F401 - registers every custom layer

    path = Path(path)
    if not path.is_file():
        raise KwsKdError(f"{path}: no such .keras file")
    return keras.saving.load_model(str(path))
