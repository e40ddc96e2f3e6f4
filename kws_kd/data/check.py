"""`kws-kd data check`: validate a dataset folder before hours of training find the bad file.

Opens the folder with `load_dataset` (so missing split lists, unknown labels
and malformed manifests surface with the reader's own message), then checks
every clip's header: present, readable, mono, and for materialised datasets
exactly the declared length at 16 kHz. Headers only: fast enough for 100K clips.

numpy-only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from kws_kd.audio import SAMPLE_RATE, audio_info
from kws_kd.data.manifest import SPLITS, Manifest
from kws_kd.errors import KwsKdError


@dataclass
class CheckReport:
    """Outcome of a dataset check: counts when the folder could be read, and problems."""

    path: str
    manifest: Manifest | None = None
    problems: list[str] = field(default_factory=list)
    total_problems: int = 0

    @property
    def ok(self) -> bool:
        return self.total_problems == 0

    def format(self) -> str:
        lines = [f"dataset: {self.path}"]
        m = self.manifest
        if m is not None:
            kind = m.info.get("kind", "?")
            lines.append(
                f"kind: {kind}  labels: {m.num_labels}  clips: {len(m.clips)}  "
                f"multi_label: {m.multi_label}  clip_seconds: {m.clip_seconds}"
            )
            counts = m.counts()
            names = list(m.label_names)
            width = max([len(n) for n in names] + [5])
            lines.append(f"{'label':<{width}} " + " ".join(f"{s:>10}" for s in SPLITS))
            for n in names:
                row = [counts[s].get(n, 0) for s in SPLITS]
                if any(row):
                    lines.append(f"{n:<{width}} " + " ".join(f"{v:>10}" for v in row))
            lines.append(f"{'total':<{width}} " + " ".join(f"{len(m.split(s)):>10}" for s in SPLITS))
        if self.ok:
            lines.append("OK: no problems found")
        else:
            lines.append(f"PROBLEMS: {self.total_problems} (first {len(self.problems)} shown)")
            lines.extend(f"  {p}" for p in self.problems)
        return "\n".join(lines)


def check_dataset(path: str | Path, *, max_problems: int = 20, progress: bool = True, **options) -> CheckReport:
    """Validate a dataset folder; never raises for data problems (they go into the report)."""
    from kws_kd.data.load import load_dataset

    report = CheckReport(str(path))

    def problem(msg: str) -> None:
        report.total_problems += 1
        if len(report.problems) < max_problems:
            report.problems.append(msg)

    try:
        manifest = load_dataset(path, **options)
    except KwsKdError as exc:
        problem(str(exc))
        return report
    report.manifest = manifest
    if not manifest.clips:
        problem(f"{path}: dataset has no clips")
    materialised = manifest.info.get("kind") in ("noisy_speech_commands",) or (Path(path) / "manifest.csv").is_file()
    want_frames = (
        int(round(manifest.clip_seconds * SAMPLE_RATE)) if materialised and manifest.clip_seconds else None
    )
    seen: set[str] = set()
    for split in SPLITS:
        if manifest.clips and not manifest.split(split):
            problem(f"{path}: split {split!r} is empty")
    for c in tqdm(manifest.clips, desc="checking", disable=None if progress else True, unit="clip", leave=False):
        if c.clip_id in seen:
            problem(f"{c.path}: duplicate clip id {c.clip_id!r}")
        seen.add(c.clip_id)
        if not c.path:
            continue  # silence placeholder of the training archive
        try:
            rate, channels, frames = audio_info(c.path)
        except KwsKdError as exc:
            problem(str(exc))
            continue
        if channels != 1:
            problem(f"{c.path}: has {channels} channels; kws-kd needs mono audio")
        if want_frames is not None and (rate != SAMPLE_RATE or frames != want_frames):
            problem(f"{c.path}: {frames} samples at {rate} Hz; expected {want_frames} at {SAMPLE_RATE} Hz")
        if c.keyword_start is not None and manifest.clip_seconds:
            if not (0 <= c.keyword_start < c.keyword_end <= manifest.clip_seconds + 1e-6):
                problem(f"{c.path}: keyword span {c.keyword_start}-{c.keyword_end} s outside the clip")
    return report
