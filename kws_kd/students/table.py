"""The `kws-kd models` table: every registered student's size and attention length."""

from __future__ import annotations

import json

from kws_kd.errors import KwsKdError


def models_table(clip_seconds: float = 1.0, num_labels: int = 12, sample_rate: int = 16000) -> list[dict]:
    """One row per student: parameters with and without the attention branch, and n'.

    Parameters are counted on real builds (all weights, BN statistics included,
    as kws_streaming reports them); n' is `attention_length` for the clip.
    """
    from kws_kd.students import STUDENTS, attention_length, build_student, strip

    if clip_seconds <= 0:
        raise KwsKdError(f"--clip-seconds must be positive, got {clip_seconds}")
    if num_labels < 1:
        raise KwsKdError(f"--num-labels must be >= 1, got {num_labels}")
    samples = int(round(clip_seconds * sample_rate))
    rows = []
    for name, spec in STUDENTS.items():
        model = build_student(name, num_labels, samples)
        rows.append(
            {
                "name": name,
                "params_with_attention": int(model.count_params()),
                "params_inference": int(strip(model).count_params()),
                "attention_length": attention_length(name, samples),
                "attention": "branch (removed by strip)" if spec.branch else "own attention weights",
                "clip_seconds": clip_seconds,
                "num_labels": num_labels,
                "summary": spec.summary,
            }
        )
    return rows


def format_table(rows: list[dict]) -> str:
    head = f"{'name':<11} {'params (train)':>14} {'params (infer)':>14} {'n_prime':>7}  attention"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['name']:<11} {r['params_with_attention']:>14,} {r['params_inference']:>14,} "
            f"{r['attention_length']:>7}  {r['attention']}"
        )
    return "\n".join(lines)


def format_json(rows: list[dict]) -> str:
    return json.dumps(rows, indent=2)
