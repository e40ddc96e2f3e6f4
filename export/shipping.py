"""Shipping a teacher: RUN/best to DEST in float16, measured, and re-verifiable.

`ship` copies a finished `kws-kd teacher finetune` run's best checkpoint to
DEST with its weights in float16 (refused over `max_mb`), plus the run's
metrics.csv and finetune.json, then measures exactly what ships on the test
split with the run's own deterministic mixes (`measure`: accuracy at 1, 2, 4
and 8 s and 1 s clean, the attention focus at 8 s, and a small
`subset_check`). `verify` re-evaluates that subset_check later, within the
stated tolerance. DEST is replaced atomically. The command line is
`export/ship_teacher.py`; the curriculum that trains first and then calls
`ship` is `export/curriculum.py`.

torch-only: never imports TensorFlow.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import torch

from export.attention_check import TARGETS, attention_focus
from export.finetune_setup import FinetuneOptions, make_sources
from export.finetune_state import BEST_DIR, OPTIONS_JSON
from export.teacher_eval import evaluate
from export.teacher_model import HEAD_FILE, TEACHER_JSON, checkpoint_hash, load_teacher, save_teacher
from kws_kd.atomic import atomic_dir
from kws_kd.data.load import load_dataset
from kws_kd.data.manifest import Manifest
from kws_kd.errors import KwsKdError

KEEP = ("README.md",)
TEST_SECONDS = (1.0, 2.0, 4.0, 8.0)
SUBSET_CLIPS = 32
SUBSET_TOLERANCE = {"accuracy_clips": 1, "loss": 0.01, "rollout_mass": 0.01}


def measurement_source(manifest: Manifest, data: str, fresh_mix: bool, noise: str | None, seed: int,
                       split: str = "test"):
    """The deterministic 8 s source of `split` that a teacher's figures are measured on."""
    opts = FinetuneOptions(data=data, out="", fresh_mix=fresh_mix, seed=seed, noise=noise, clip_seconds=(8.0,),
                           progress=False)
    return make_sources(manifest, opts, splits=(split,))[split]


def subset_check(model: torch.nn.Module, source, *, seed: int, clips: int = SUBSET_CLIPS, seconds: float = 8.0) -> dict:
    """Figures of `clips` fixed clips of the deterministic `seconds` pass: cheap to re-evaluate exactly."""
    res = evaluate(model, source, seconds, limit=clips, seed=seed, batch_size=8, predictions=True)
    focus = attention_focus(model, source, seconds, limit=clips, seed=seed)
    return {
        "seconds": seconds, "clips": res["clips"], "seed": seed,
        "accuracy": res.get("accuracy"), "loss": res["loss"], "predictions": res["predictions"],
        "rollout_mass": focus["rollout"]["mass"],
        "tolerance": dict(SUBSET_TOLERANCE, note="accuracy within accuracy_clips clips, loss and rollout mass "
                                                 "within the absolute values given (float rounding across machines)"),
    }


def compare_subset_check(expected: dict, measured: dict) -> list[str]:
    """What differs beyond the stated tolerance (empty: it matches)."""
    tol = expected.get("tolerance", SUBSET_TOLERANCE)
    bad = []
    if expected["clips"] != measured["clips"]:
        bad.append(f"clips {measured['clips']} vs {expected['clips']}")
    if expected.get("accuracy") is not None:
        if abs(measured["accuracy"] - expected["accuracy"]) * expected["clips"] > tol["accuracy_clips"] + 1e-6:
            bad.append(f"accuracy {measured['accuracy']:.4f} vs {expected['accuracy']:.4f}")
    if abs(measured["loss"] - expected["loss"]) > tol["loss"]:
        bad.append(f"loss {measured['loss']:.4f} vs {expected['loss']:.4f}")
    if abs(measured["rollout_mass"] - expected["rollout_mass"]) > tol["rollout_mass"]:
        bad.append(f"rollout mass {measured['rollout_mass']:.4f} vs {expected['rollout_mass']:.4f}")
    return bad


def measure(model: torch.nn.Module, manifest: Manifest, data: str, *, fresh_mix: bool, noise: str | None, seed: int,
            limit: int | None = None, subset_clips: int = SUBSET_CLIPS) -> dict:
    """Test figures of a teacher: accuracy at TEST_SECONDS, 1 s clean, attention at 8 s, subset_check."""
    t0 = time.time()
    test = measurement_source(manifest, data, fresh_mix, noise, seed)
    focus = attention_focus(model, test, 8.0, limit=limit, seed=seed + 1)
    figures = {"test_accuracy_8s": focus["accuracy"], "test_clips": focus["clips"]}
    for s in TEST_SECONDS[:-1]:
        figures[f"test_accuracy_{s:g}s"] = evaluate(model, test, s, limit=limit, seed=seed + 1)["metric"]
    if fresh_mix:  # the clips as they are (no added noise), 1 s
        clean = measurement_source(manifest, data, False, None, seed)
        figures["test_accuracy_1s_clean"] = evaluate(model, clean, 1.0, limit=limit, seed=seed + 1)["metric"]
    figures["attention_test_8s"] = {k: focus[k] for k in TARGETS}
    figures["subset_check"] = dict(subset_check(model, test, seed=seed + 1, clips=subset_clips),
                                   split="test", fresh_mix=fresh_mix, noise=noise, source_seed=seed)
    figures["measure_seconds"] = round(time.time() - t0, 1)
    return figures


def ship(run: Path, dest: Path, data: str | None = None, limit: int | None = None, *, extra: dict | None = None,
         max_mb: float = 10.0, subset_clips: int = SUBSET_CLIPS) -> dict:
    """Copy RUN/best to DEST in float16 and measure the shipped weights (see the module docstring)."""
    run, dest = Path(run), Path(dest)
    best = run / BEST_DIR
    if not (best / TEACHER_JSON).is_file():
        raise KwsKdError(f"{best}: no teacher checkpoint yet")
    opts_json = json.loads((run / OPTIONS_JSON).read_text())
    data = data or opts_json["data"]
    manifest = load_dataset(data)
    if manifest.content_hash() != opts_json.get("manifest_hash"):
        raise KwsKdError(f"{data}: not the dataset {run} was trained on (manifest hash differs)")
    seed = int(opts_json.get("seed", 0))
    meta = json.loads((best / TEACHER_JSON).read_text())
    keep = {k: meta[k] for k in ("step", "val_metric", "val_seconds", "init_from") if k in meta}
    with atomic_dir(dest, overwrite=True) as tmp:
        save_teacher(load_teacher(best), tmp / "teacher", extra=keep, dtype=torch.float16)
        for f in (tmp / "teacher").iterdir():
            f.rename(tmp / f.name)
        (tmp / "teacher").rmdir()
        size = sum((tmp / n).stat().st_size for n in ("model.safetensors", HEAD_FILE))
        if size > max_mb * 1e6:
            raise KwsKdError(f"{best}: the fp16 weights are {size / 1e6:.1f} MB, over the {max_mb:g} MB limit")
        for name in ("metrics.csv", OPTIONS_JSON):
            if (run / name).is_file():
                shutil.copy2(run / name, tmp / ("training_" + name))
        for name in KEEP:
            if (dest / name).is_file():
                shutil.copy2(dest / name, tmp / name)
        model = load_teacher(tmp)  # measure exactly what ships (fp16-rounded weights)
        val_key = f"val_accuracy_{float(meta.get('val_seconds') or 8):g}s"
        figures = {"step": meta.get("step"), val_key: meta.get("val_metric"),
                   "weights_dtype": "float16", "weights_bytes": size, "num_parameters": meta.get("num_parameters")}
        figures |= measure(model, manifest, data, fresh_mix=bool(opts_json.get("fresh_mix")), noise=opts_json.get("noise"),
                           seed=seed, limit=limit, subset_clips=subset_clips)
        figures |= {"checkpoint_hash": checkpoint_hash(tmp), "dataset": data, "manifest_hash": manifest.content_hash()}
        figures |= extra or {}
        (tmp / "metrics.json").write_text(json.dumps(figures, indent=2) + "\n")
        make_readable(tmp)
    return figures


def make_readable(folder: Path) -> None:
    """Temporary files and folders are created private (0600/0700); a ship folder is for everyone to read."""
    folder.chmod(0o755)
    for f in folder.iterdir():
        f.chmod(0o644)


def verify(dest: Path, data: str | None = None) -> dict:
    """Re-evaluate DEST's subset_check; returns {"ok", "differences", "expected", "measured"}."""
    dest = Path(dest)
    figures = json.loads((dest / "metrics.json").read_text())
    expected = figures.get("subset_check")
    if expected is None:
        raise KwsKdError(f"{dest / 'metrics.json'}: no subset_check (shipped before it existed)")
    data = data or figures["dataset"]
    manifest = load_dataset(data)
    if manifest.content_hash() != figures.get("manifest_hash"):
        raise KwsKdError(f"{data}: not the dataset {dest} was measured on (manifest hash differs)")
    if checkpoint_hash(dest) != figures.get("checkpoint_hash"):
        raise KwsKdError(f"{dest}: the weights are not the ones metrics.json describes (checkpoint hash differs)")
    source = measurement_source(manifest, data, bool(expected["fresh_mix"]), expected.get("noise"),
                          int(expected["source_seed"]), split=expected.get("split", "test"))
    measured = subset_check(load_teacher(dest), source, seed=int(expected["seed"]), clips=int(expected["clips"]),
                            seconds=float(expected["seconds"]))
    bad = compare_subset_check(expected, measured)
    return {"ok": not bad, "differences": bad, "expected": expected, "measured": measured}
