"""`evaluate_tflite`: the full test metric of a .tflite file with LiteRT.

Called by `kws-kd eval --tflite FILE`. The label order comes from the sidecar
and is matched to the dataset's labels by name, so a dataset that lists its
labels in another order still scores correctly.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from kws_kd.data.manifest import Manifest
from kws_kd.errors import KwsKdError
from kws_kd.tflite.clips import load_clips
from kws_kd.metrics import classification_metrics
from kws_kd.tflite.runner import TFLiteClassifier
from kws_kd.tflite.sidecar import read_sidecar


def evaluate_tflite(
    path: str | os.PathLike,
    manifest: Manifest | str | os.PathLike,
    split: str = "test",
    *,
    max_clips: int | None = None,
    num_threads: int = 1,
) -> dict:
    """Run the .tflite file on every clip of `split`; return {"accuracy"|"mAP", "clips", ...}."""
    from tqdm import tqdm

    if not isinstance(manifest, Manifest):
        from kws_kd.data.load import load_dataset

        manifest = load_dataset(manifest)
    sidecar = read_sidecar(path)
    labels = list(sidecar["labels"])
    missing = [lab for lab in labels if lab not in manifest.label_names]
    if missing:
        raise KwsKdError(f"{Path(path)}: labels {missing[:5]} are not in the dataset at {manifest.root}")
    from kws_kd.tflite.streaming import streaming_runner

    stream = streaming_runner(path, num_threads)
    if stream is not None:  # one hop per call, carried state: the clip's last logits
        clf, samples = stream
        run_clip = clf.clip_logits
    else:
        clf = TFLiteClassifier(path, num_threads=num_threads)
        samples, run_clip = clf.input_samples, clf.logits
    audio, targets, _ = load_clips(manifest, split, samples, max_clips=max_clips)
    if len(audio) == 0:
        raise KwsKdError(f"{manifest.root}: split {split!r} has no clips")
    # Dataset label index -> model output index.
    to_model = np.array([labels.index(lab) if lab in labels else -1 for lab in manifest.label_names])
    logits = np.stack([run_clip(a) for a in tqdm(audio, desc=f"eval {Path(path).name}", unit="clip", leave=False, disable=None)])
    multi = bool(sidecar.get("multi_label", False))
    if multi:
        mapped = np.zeros((len(targets), len(labels)), np.float32)
        for j, m in enumerate(to_model):
            if m >= 0:
                mapped[:, m] = targets[:, j]
        targets = mapped
    else:
        targets = to_model[targets]
    metrics = classification_metrics(logits, targets, multi)
    metrics.update({"split": split, "tflite": str(path), "quantize": sidecar.get("quantize")})
    return metrics
