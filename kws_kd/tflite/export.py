"""`kws-kd export --tflite`: a trained run -> stripped, quantized .tflite + sidecar, verified.

Steps: rebuild the student from the run with `for_export=True` (batch 1,
recurrences unrolled by construction, so no WHILE loop) at the requested clip
length, load the best weights, strip the attention branch, convert in a child
process, then run the file on held-out clips against the Keras model and write
the sidecar. The .tflite and its sidecar appear only once everything passed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path


from kws_kd.atomic import atomic_path
from kws_kd.errors import KwsKdError
from kws_kd.tflite import MODES


@dataclass
class ExportResult:
    tflite: Path
    sidecar: Path
    verification: dict | None


def _load_data(run, data: str | None):
    from kws_kd.data.load import load_dataset

    path = data or run.config.data
    if not path:
        return None
    if not Path(path).exists():
        return None
    return load_dataset(path)


def export_run(
    run_dir: str | os.PathLike,
    out: str | os.PathLike,
    *,
    quantize: str = "float32",
    clip_seconds: float | None = None,
    streaming: bool = False,
    int8_io: bool = False,
    data: str | None = None,
    calibration_clips: int = 200,
    verify_clips: int = 200,
    log=print,
) -> ExportResult:
    """Export the run's best weights to `out` (a .tflite path) and its sidecar beside it."""
    from kws_kd.features import front_end_recipe
    from kws_kd.run import load_run
    from kws_kd.tflite.clips import load_clips
    from kws_kd.tflite.convert import convert_model
    from kws_kd.tflite.sidecar import build_sidecar, sidecar_path, write_sidecar
    from kws_kd.tflite.verify import check_bounds, format_report, verify_tflite

    if quantize not in MODES:
        raise KwsKdError(f"unknown --quantize {quantize!r} (choose from {', '.join(MODES)})")
    out = Path(out)
    if out.suffix != ".tflite":
        raise KwsKdError(f"{out}: the output must end in .tflite (the sidecar goes beside it as .json)")
    run = load_run(run_dir)
    if streaming:
        from kws_kd.tflite.streaming import check_streamable

        check_streamable(run.model_name)
        if int8_io:
            raise KwsKdError("--int8-io is for whole-clip files; a streaming file keeps float audio and state I/O")
    if clip_seconds is not None and clip_seconds <= 0:
        raise KwsKdError(f"--clip-seconds must be positive, got {clip_seconds}")
    samples = run.clip_samples(clip_seconds)
    model = run.build_model(clip_seconds, strip=True, for_export=True)
    manifest = _load_data(run, data)
    if manifest is None and quantize == "int8":
        where = data or run.config.data or "(none recorded)"
        raise KwsKdError(f"{where}: the run's training data is not there; int8 calibration needs it (pass --data)")
    representative = None
    if quantize == "int8":
        representative, _, _ = load_clips(manifest, "train", samples, max_clips=calibration_clips, seed=1)
        if len(representative) == 0:
            raise KwsKdError(f"{manifest.root}: no training clips to calibrate int8 on")
        log(f"calibrating int8 on {len(representative)} training clips")
    label = f"{run.model_name} ({quantize}, {'streaming' if streaming else f'{samples / run.config.sample_rate:g} s'})"
    layout = stream_runner = None
    with tempfile.TemporaryDirectory(prefix="kws-kd-export-", dir=out.parent if out.parent.exists() else None) as tmp:
        tmp_tflite = Path(tmp) / out.name
        log(f"converting {label} in a child process ...")
        if streaming:
            from kws_kd.tflite.streaming import StreamingTFLite, convert_streaming

            layout = convert_streaming(model, {quantize: tmp_tflite}, calibration_audio=representative, label=label,
                                       log=log)
            stream_runner = StreamingTFLite(tmp_tflite, layout)
        else:
            convert_model(model, {quantize: tmp_tflite}, representative=representative, int8_io=int8_io, label=label)
        report = None
        if manifest is not None:
            split = "test" if manifest.split("test") else "validation"
            audio, targets, _ = load_clips(manifest, split, samples, max_clips=verify_clips, seed=2)
            if len(audio):
                report = verify_tflite(tmp_tflite, model, audio, targets, multi_label=run.multi_label,
                                       runner=stream_runner)
                report["split"] = split
                log(format_report(report, str(out)))
                check_bounds(report, quantize, label)
        else:
            log(f"note: dataset {run.config.data!r} not found; skipped the check on held-out clips")
        sidecar = build_sidecar(
            tmp_tflite,
            model=run.model_name,
            quantize=quantize,
            labels=run.labels,
            multi_label=run.multi_label,
            sample_rate=run.config.sample_rate,
            front_end=front_end_recipe(model),
            source_run=str(run.path),
            test_metrics=run.test_metrics,
            streaming=layout.to_dict() if layout else None,
            clip_samples=samples,
        )
        side = sidecar_path(out)
        with atomic_path(out) as tmp_out:
            shutil.copyfile(tmp_tflite, tmp_out)
            write_sidecar(side, sidecar)
    if report is None:
        log(f"{out}: {sidecar['size_bytes'] / 1024:.1f} KiB, {sum(sidecar['ops'].values())} ops")
    return ExportResult(tflite=out, sidecar=side, verification=report)
