"""Evaluation of a run (Keras) or a .tflite file on a split: metrics, confusion matrix, attention in the keyword span.

Metrics are computed here in numpy from the collected logits, so training's
validation, `kws-kd eval` and `kws-kd eval --tflite` score identically:

* single-label: accuracy, per-class precision/recall/F1/support, the confusion
  matrix (rows = true label, columns = predicted);
* multi-label: mAP (macro average precision over classes with a positive clip),
  per-class AP.

`attention_in_span` is the issue's "proof that KD does something": the share of
a student's attention a_S that falls inside the keyword span, compared with
chance (the span's share of the clip).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kws_kd.errors import KwsKdError
from kws_kd.metrics import mean_average_precision, per_class_average_precision


# ---------------------------------------------------------------- numpy metrics


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_labels: int) -> np.ndarray:
    """[C, C] int64 counts, rows = true label, columns = predicted label."""
    cm = np.zeros((num_labels, num_labels), np.int64)
    np.add.at(cm, (np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)), 1)
    return cm


def classification_report(logits: np.ndarray, targets: np.ndarray, labels: list[str], multi_label: bool) -> dict:
    """All metrics of one evaluation as a JSON-able dict (see the module docstring)."""
    logits = np.asarray(logits, np.float64)
    n, c = logits.shape[0], len(labels)
    if multi_label:
        y = np.asarray(targets, np.float32).reshape(n, c)
        aps = per_class_average_precision(logits, y)
        return {
            "metric": "mAP",
            "mAP": mean_average_precision(logits, y),
            "clips": int(n),
            "per_class": {lab: {"ap": ap, "support": int(y[:, j].sum())} for j, (lab, ap) in enumerate(zip(labels, aps))},
        }
    y = np.asarray(targets, np.int64).reshape(n)
    pred = logits.argmax(axis=1) if n else np.zeros(0, np.int64)
    cm = confusion_matrix(y, pred, c)
    per_class = {}
    for j, lab in enumerate(labels):
        tp = int(cm[j, j])
        support, predicted = int(cm[j].sum()), int(cm[:, j].sum())
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else float("nan")
        f1 = 2 * precision * recall / (precision + recall) if support and (precision + recall) > 0 else 0.0
        per_class[lab] = {"precision": precision, "recall": recall, "f1": f1, "support": support}
    return {
        "metric": "accuracy",
        "accuracy": float((pred == y).mean()) if n else float("nan"),
        "clips": int(n),
        "per_class": per_class,
        "confusion_matrix": cm.tolist(),
    }


def main_metric(report: dict) -> float:
    return float(report[report["metric"]])


def save_confusion_png(cm: np.ndarray, labels: list[str], path: str | Path, title: str = "") -> None:
    """Confusion matrix as a PNG (row-normalised colours, counts written in the cells)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from kws_kd.atomic import atomic_path

    cm = np.asarray(cm)
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros(cm.shape, float), where=rows > 0)
    size = max(4.0, 0.45 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=90)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if len(labels) <= 40:
        for i in range(len(labels)):
            for j in range(len(labels)):
                if cm[i, j]:
                    ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7, color="white" if norm[i, j] > 0.5 else "black")
    ax.set_title(title)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


# ---------------------------------------------------------------- collecting predictions


@dataclass
class Predictions:
    """Everything one pass over a split gives back (numpy)."""

    logits: np.ndarray  # [N, C]
    targets: np.ndarray  # [N] int or [N, C] multi-hot
    clip_ids: list[str]
    spans: np.ndarray  # [N, 2] seconds, -1 where unknown
    attention: np.ndarray | None = None  # [N, n'] when asked for


def _predict(dataset, logits_of, *, with_attention: bool, progress: str | None) -> Predictions:
    """Run `logits_of(input) -> logits | (logits, attention)` over a batched dataset and gather everything.

    The input is the batch's `features` (a feature-cache dataset, `kws_kd.feature_cache`) or its `audio`.
    """
    from tqdm import tqdm

    outs: dict[str, list] = {"logits": [], "targets": [], "ids": [], "spans": [], "att": []}
    for batch in tqdm(dataset, desc=progress, unit="batch", leave=False, disable=None if progress else True):
        out = logits_of(batch["features"] if "features" in batch else batch["audio"])
        if with_attention:
            out, att = out
            outs["att"].append(np.asarray(att))
        outs["logits"].append(np.asarray(out))
        outs["targets"].append(batch["label"].numpy())
        outs["ids"].extend(x.decode() for x in batch["clip_id"].numpy())
        outs["spans"].append(batch["keyword_span"].numpy())
    if not outs["logits"]:
        raise KwsKdError("the split has no clips to evaluate")
    return Predictions(
        logits=np.concatenate(outs["logits"]),
        targets=np.concatenate(outs["targets"]),
        clip_ids=outs["ids"],
        spans=np.concatenate(outs["spans"]),
        attention=np.concatenate(outs["att"]) if with_attention else None,
    )


def predict_keras(model, dataset, *, with_attention: bool = False, progress: str | None = None) -> Predictions:
    """Run `model` (logits-only, or [logits, attention] with `with_attention`) over a batched dataset."""
    import tensorflow as tf

    forward = getattr(model, "_kws_kd_forward", None)
    if forward is None:
        forward = tf.function(lambda audio: model(audio, training=False), reduce_retracing=True)
        object.__setattr__(model, "_kws_kd_forward", forward)

    def logits_of(audio):
        out = forward(audio)
        if with_attention:
            return out
        return out[0] if isinstance(out, (list, tuple)) else out

    return _predict(dataset, logits_of, with_attention=with_attention, progress=progress)


def predict_tflite(path: str | Path, dataset, *, progress: str | None = None) -> Predictions:
    """Same as `predict_keras` for a .tflite file, clip by clip through LiteRT (same dataset, same clips)."""
    from kws_kd.tflite.runner import TFLiteClassifier

    clf = TFLiteClassifier(path)

    def logits_of(audio):
        audio = audio.numpy()
        if audio.shape[1] != clf.input_samples:
            raise KwsKdError(f"{path}: model takes {clf.input_samples} samples, the data gives {audio.shape[1]}")
        return np.stack([clf.logits(a) for a in audio])

    return _predict(dataset, logits_of, with_attention=False, progress=progress)


# ---------------------------------------------------------------- attention in the keyword span


def span_mass(attention: np.ndarray, spans: np.ndarray, clip_seconds: float) -> dict:
    """Attention mass inside each clip's keyword span vs chance; clips without a span are skipped.

    Step i of n' covers [i, i+1) * clip_seconds / n'; a step counts in proportion
    to its overlap with the span. Chance is the span's share of the clip.
    """
    attention = np.asarray(attention, np.float64)
    n, steps = attention.shape
    edges = np.linspace(0.0, clip_seconds, steps + 1)
    masses, chances, peaks = [], [], []
    for a, (start, end) in zip(attention, np.asarray(spans, np.float64)):
        if start < 0 or end <= start:
            continue
        overlap = np.clip(np.minimum(edges[1:], end) - np.maximum(edges[:-1], start), 0, None) / np.diff(edges)
        masses.append(float((a * overlap).sum() / max(a.sum(), 1e-12)))
        chances.append(min(end, clip_seconds) / clip_seconds - max(start, 0.0) / clip_seconds)
        peaks.append(bool(overlap[int(np.argmax(a))] > 0))
    if not masses:
        raise KwsKdError("no clip of the split has a keyword span; attention in span cannot be measured")
    mass, chance = float(np.mean(masses)), float(np.mean(chances))
    return {
        "clips": len(masses),
        "mass_in_span": mass,
        "chance": chance,
        "ratio_to_chance": mass / chance if chance > 0 else float("nan"),
        "peak_in_span": float(np.mean(peaks)),
    }


def attention_in_span(run, split: str = "test", *, data: str | None = None, batch_size: int = 50, max_clips: int | None = None) -> dict:
    """Attention mass a run's student puts inside the keyword span on `split` (see `span_mass`)."""
    from kws_kd.data.load import load_dataset
    from kws_kd.data.pipeline import eval_dataset

    manifest = load_dataset(data or run.config.data)
    model = run.build_model(weights="best")
    ds = eval_dataset(manifest, split, batch_size, run.clip_samples(), max_clips=max_clips)
    pred = predict_keras(model, ds, with_attention=True, progress=f"attention {split}")
    out = span_mass(pred.attention, pred.spans, run.clip_samples() / run.config.sample_rate)
    out.update({"run": str(run.path), "split": split, "kd_lambda": run.config.kd_lambda, "model": run.config.model})
    return out


# ---------------------------------------------------------------- kws-kd eval


def evaluate_run(
    run_path: str | Path,
    *,
    tflite: str | Path | None = None,
    data: str | None = None,
    split: str = "test",
    batch_size: int = 50,
    out_dir: str | Path | None = None,
    max_clips: int | None = None,
) -> dict:
    """`kws-kd eval`: metrics of a run's best weights (or of a .tflite file) on `split`.

    Writes `<out_dir>/eval_<split>[_<tflite stem>].json` and the confusion matrix
    PNG beside it (out_dir defaults to the run folder).
    """
    from kws_kd.data.load import load_dataset
    from kws_kd.data.pipeline import eval_dataset
    from kws_kd.run import load_run, write_json

    run = load_run(run_path)
    manifest = load_dataset(data or run.config.data)
    if manifest.label_names != run.labels:
        raise KwsKdError(f"{manifest.root}: labels differ from the run's ({Path(run_path) / 'labels.txt'})")
    clip_samples = run.clip_samples()
    tag = f"{split}"
    if tflite is not None:
        tflite = Path(tflite)
        tag = f"{split}_{tflite.stem}"
        samples = _tflite_samples(tflite, run.labels, clip_samples)
        ds = eval_dataset(manifest, split, batch_size, samples, max_clips=max_clips)
        pred = predict_tflite(tflite, ds, progress=f"eval {tflite.name}")
    else:
        model = run.build_model(weights="best", strip=True)
        ds = eval_dataset(manifest, split, batch_size, clip_samples, max_clips=max_clips)
        pred = predict_keras(model, ds, progress=f"eval {split}")
    report = classification_report(pred.logits, pred.targets, run.labels, run.multi_label)
    report.update({"split": split, "run": str(run.path), "tflite": str(tflite) if tflite else None})
    out_dir = Path(out_dir) if out_dir else run.path
    write_json(out_dir / f"eval_{tag}.json", report)
    if not run.multi_label:
        png = out_dir / f"confusion_{tag}.png"
        save_confusion_png(np.array(report["confusion_matrix"]), run.labels, png, title=f"{run.model_name} {tag}: acc {report['accuracy']:.4f}")
        report["confusion_png"] = str(png)
    return report


def _tflite_samples(path: Path, labels: list[str], default: int) -> int:
    """The input length the file's sidecar gives (the run's when it has none); its labels must be the run's."""
    from kws_kd.tflite.sidecar import read_sidecar, sidecar_path

    if not sidecar_path(path).is_file():
        return default
    side = read_sidecar(path)
    if list(side["labels"]) != list(labels):
        raise KwsKdError(f"{sidecar_path(path)}: labels differ from the run's labels")
    return int(side.get("input_samples") or default)


def format_report(report: dict) -> str:
    """Human summary printed by `kws-kd eval`."""
    lines = [f"{report['metric']}: {main_metric(report):.4f} on {report['clips']} {report.get('split', '')} clips"]
    for lab, m in report["per_class"].items():
        if report["metric"] == "accuracy":
            lines.append(f"  {lab:>14s}  precision {m['precision']:.3f}  recall {m['recall']:.3f}  f1 {m['f1']:.3f}  n={m['support']}")
        else:
            lines.append(f"  {lab:>14s}  AP {m['ap']:.3f}  n={m['support']}")
    if report.get("confusion_png"):
        lines.append(f"confusion matrix: {report['confusion_png']}")
    return "\n".join(lines)
