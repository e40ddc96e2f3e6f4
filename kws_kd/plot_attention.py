"""The paper's Fig. 2 for one clip: the teacher's rollout and each student's a_S over time.

Every curve is drawn against seconds, so a teacher with 50 frames/s and a
student with n' steps line up; the keyword span from the manifest is shaded.
On each student's panel the teacher target a_T (the rollout interpolated to
that student's n', exactly what the KD loss saw) is drawn dashed, so one can see
whether distillation pulled a_S towards it.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from kws_kd.errors import KwsKdError


def student_attention(run, manifest, clip_id: str) -> np.ndarray:
    """a_S of a run's best weights for one clip, through the same data path as training/eval."""
    from kws_kd.evaluate import predict_keras
    from kws_kd.data.pipeline import eval_dataset

    record = next((c for c in manifest.clips if c.clip_id == clip_id), None)
    if record is None:
        raise KwsKdError(f"{manifest.root}: no clip with id {clip_id!r}")
    one = replace(manifest, clips=[record])
    model = run.build_model(weights="best")
    pred = predict_keras(model, eval_dataset(one, record.split, 1, run.clip_samples()), with_attention=True)
    return pred.attention[0]


def plot_attention(runs: list[str], teacher_store: str, clip_id: str, out: str | Path, *, data: str | None = None) -> Path:
    """Draw teacher rollout + each run's student attention for `clip_id`; write a PNG atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from kws_kd.atomic import atomic_path
    from kws_kd.data.load import load_dataset
    from kws_kd.distill import fix_first_frame, interpolate_attention
    from kws_kd.run import load_run
    from kws_kd.store import TeacherStore

    if not runs:
        raise KwsKdError("give at least one --run")
    store = TeacherStore.open(teacher_store)
    teacher = np.asarray(store.attention(clip_id), np.float64)
    opened = [load_run(r) for r in runs]
    manifest = load_dataset(data or opened[0].config.data)
    record = next((c for c in manifest.clips if c.clip_id == clip_id), None)
    if record is None:
        raise KwsKdError(f"{manifest.root}: no clip with id {clip_id!r}")

    fig, axes = plt.subplots(len(opened) + 1, 1, figsize=(8, 1.8 * (len(opened) + 1)), sharex=True, squeeze=False)
    axes = axes[:, 0]
    t_teacher = (np.arange(len(teacher)) + 0.5) / store.frame_rate
    axes[0].plot(t_teacher, teacher, color="black")
    axes[0].set_ylabel("teacher\nrollout")
    for ax, run in zip(axes[1:], opened):
        a_s = student_attention(run, manifest, clip_id)
        seconds = run.clip_samples() / run.config.sample_rate
        t = (np.arange(len(a_s)) + 0.5) * seconds / len(a_s)
        ax.plot(t, a_s, color="tab:blue", label="a_S")
        if len(teacher) >= len(a_s):
            target = fix_first_frame(teacher, run.config.teacher_first_frame)
            ax.plot(t, interpolate_attention(target, len(a_s), run.config.interpolation), "--", color="gray", label="a_T")
        ax.set_ylabel(f"{run.config.model}\nλ={run.config.kd_lambda:g}")
        ax.legend(loc="upper right", fontsize=7)
    for ax in axes:
        if record.keyword_start is not None:
            ax.axvspan(record.keyword_start, record.keyword_end, color="tab:orange", alpha=0.25)
        ax.set_ylim(bottom=0)
    axes[-1].set_xlabel("time (s)")
    axes[0].set_title(f"{clip_id} ({'|'.join(record.labels)}); keyword span shaded")
    fig.tight_layout()
    out = Path(out)
    with atomic_path(out, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
    return out
