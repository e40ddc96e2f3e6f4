"""Copy a run's best teacher into `export/reference_teacher/` with its measured figures.

    python -m export.ship_teacher RUN [--data DIR] [--dest export/reference_teacher] [--limit N]

Copies RUN/best (weights, config.json, head.safetensors, teacher.json), the
run's metrics.csv and finetune.json, then measures on the test split with the
run's own deterministic fresh mixes: accuracy at 8 s and 2 s, and the keyword
focus of the attention targets at 8 s (`export.attention_check`). Everything
lands in DEST/metrics.json; README.md in DEST is not touched. The destination
folder is replaced atomically, so a failed measurement leaves the old one.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import torch

from export.attention_check import attention_focus
from export.finetune import OPTIONS_JSON, FinetuneOptions, evaluate, make_sources
from export.teacher_model import HEAD_FILE, TEACHER_JSON, checkpoint_hash, load_teacher
from kws_kd.atomic import atomic_dir
from kws_kd.data.load import load_dataset
from kws_kd.errors import KwsKdError

DEFAULT_DEST = Path(__file__).resolve().parent / "reference_teacher"
KEEP = ("README.md",)


def ship(run: Path, dest: Path, data: str | None = None, limit: int | None = None) -> dict:
    best = run / "best"
    if not (best / TEACHER_JSON).is_file():
        raise KwsKdError(f"{best}: no teacher checkpoint yet")
    opts_json = json.loads((run / OPTIONS_JSON).read_text())
    data = data or opts_json["data"]
    model = load_teacher(best)
    manifest = load_dataset(data)
    if manifest.content_hash() != opts_json.get("manifest_hash"):
        raise KwsKdError(f"{data}: not the dataset {run} was trained on (manifest hash differs)")
    seed = int(opts_json.get("seed", 0))
    opts = FinetuneOptions(data=data, out="", fresh_mix=bool(opts_json.get("fresh_mix")), seed=seed,
                           noise=opts_json.get("noise"), clip_seconds=(8.0,), progress=False)
    test = make_sources(manifest, opts, splits=("test",))["test"]
    t0 = time.time()
    focus = attention_focus(model, test, 8.0, limit=limit, seed=seed + 1)
    acc2 = evaluate(model, test, 2.0, limit=limit, seed=seed + 1)["accuracy"]
    meta = json.loads((best / TEACHER_JSON).read_text())
    figures = {
        "step": meta.get("step"), "val_accuracy_8s": meta.get("val_metric"),
        "test_accuracy_8s": focus["accuracy"], "test_accuracy_2s": acc2, "test_clips": focus["clips"],
        "attention_test_8s": {k: focus[k] for k in ("rollout", "rollout_top2", "last_layer")},
        "checkpoint_hash": checkpoint_hash(best), "dataset": data, "manifest_hash": manifest.content_hash(),
        "measure_seconds": round(time.time() - t0, 1),
    }
    with atomic_dir(dest, overwrite=True) as tmp:
        for name in ("model.safetensors", "config.json", HEAD_FILE, TEACHER_JSON):
            shutil.copy2(best / name, tmp / name)
        for name in ("metrics.csv", OPTIONS_JSON):
            if (run / name).is_file():
                shutil.copy2(run / name, tmp / ("training_" + name))
        for name in KEEP:
            if (dest / name).is_file():
                shutil.copy2(dest / name, tmp / name)
        (tmp / "metrics.json").write_text(json.dumps(figures, indent=2) + "\n")
    return figures


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m export.ship_teacher", description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path)
    p.add_argument("--data", default=None, help="dataset folder (default: the one the run was trained on)")
    p.add_argument("--dest", type=Path, default=DEFAULT_DEST)
    p.add_argument("--limit", type=int, default=None, help="test clips to measure (default all)")
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    print(json.dumps(ship(a.run, a.dest, a.data, a.limit), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
