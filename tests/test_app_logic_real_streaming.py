"""A REAL streaming file through LiteRT: the app mirror and `StreamingTFLite` agree exactly.

A streaming LSTM-P / CRNN (random weights, float32 and int8, exported by the
exporter's own functions) runs through `kws_kd.app_logic.KeywordStream` and
through `StreamingTFLite`: same tensors, same logits, same decisions and
announcements, and its sidecar has the schema of the committed golden ones
(tests/test_app_logic_streaming.py covers the golden stub files).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kws_kd import app_logic as al

ROOT = Path(__file__).resolve().parents[1]
GOLDEN_DIR = ROOT / "android_harness" / "app" / "src" / "test" / "resources" / "golden"
SR = 16000


def _feed(stream: al.KeywordStream, pcm: np.ndarray, chunks) -> list[al.HopResult]:
    out, pos = [], 0
    for n in chunks:
        out += stream.feed(pcm[pos : pos + n])
        pos += n
    assert pos == len(pcm)
    return out


def _schema(obj, path=""):
    """Key sets and value types of a sidecar, with name-keyed maps (states, tensors) reduced to one entry's schema."""
    if path in (".front_end", ".source_run", ".test_metrics", ".ops"):  # not read by the app; values vary
        return "any"
    if isinstance(obj, dict):
        if path.endswith(("states", "tensors.inputs", "tensors.outputs")):
            entries = {json.dumps(_schema(v, path + ".*"), sort_keys=True) for v in obj.values()}
            return {"*": sorted(entries)}
        return {k: _schema(v, f"{path}.{k}") for k, v in obj.items()}
    if isinstance(obj, list):
        return ["list"]
    return type(obj).__name__ if obj is not None else "null"


@pytest.fixture(scope="module")
def real_files(tmp_path_factory):
    """LSTM-P float32 + int8 (float I/O, as kws-kd export writes it) + int8 I/O, and CRNN int8 I/O (warm-up)."""
    keras = pytest.importorskip("keras")
    pytest.importorskip("ai_edge_litert")
    from kws_kd.students.attention import strip
    from kws_kd.students.registry import build_student, make_config
    from kws_kd.tflite.convert import Job, run_jobs
    from kws_kd.tflite.sidecar import build_sidecar, write_sidecar
    from kws_kd.tflite.streaming import (build_streaming_model, convert_streaming, export_streaming_saved_model,
                                         keras_stream_inputs)

    root = tmp_path_factory.mktemp("app_stream")
    rng = np.random.default_rng(5)
    t = np.arange(SR) / SR
    calib = np.stack([0.3 * np.sin(2 * np.pi * f * t) + rng.normal(0, 0.02, SR) for f in (300, 900, 2000, 3100)])
    calib = calib.astype(np.float32)
    labels = ["_silence_", "yes", "no", "up"]
    files = {}
    keras.utils.set_random_seed(3)
    lstm_p = strip(build_student("lstm_p", 4, SR, make_config("lstm_p", {"units": 24, "projection": 16}), for_export=True))
    keras.utils.set_random_seed(4)
    crnn = strip(build_student("crnn", 4, SR, make_config("crnn", {"gru_units": 16, "units1": 16, "units2": 16}),
                               for_export=True))
    outs = {m: root / f"lstm_p_{m}.tflite" for m in ("float32", "int8")}
    layouts = {"lstm_p": convert_streaming(lstm_p, outs, calibration_audio=calib, label="lstm_p", log=lambda *a: None)}
    files.update({f"lstm_p_{m}": (p, "lstm_p") for m, p in outs.items()})
    for name, student in (("lstm_p", lstm_p), ("crnn", crnn)):  # int8 audio, tail and states
        model, layout = build_streaming_model(student)
        layouts[name] = layout
        saved = root / f"{name}_saved"
        export_streaming_saved_model(model, layout, saved, name)
        path = root / f"{name}_int8io.tflite"
        run_jobs([Job(saved, "int8", path, name)], representative=keras_stream_inputs(model, layout, calib, every=6),
                 int8_io=True)
        files[f"{name}_int8io"] = (path, name)
    for key, (path, name) in files.items():
        side = build_sidecar(path, model=name, quantize="int8" if "int8" in key else "float32", labels=labels,
                             multi_label=False, sample_rate=SR, front_end={}, source_run=None, test_metrics=None,
                             streaming=layouts[name].to_dict(), clip_samples=SR)
        write_sidecar(path.with_suffix(".json"), side)
    return {k: p for k, (p, _) in files.items()}


def _test_pcm() -> np.ndarray:
    rng = np.random.default_rng(1)
    t = np.arange(int(1.2 * SR)) / SR
    x = np.where(t < 0.2, 0.0, 0.4 * np.sin(2 * np.pi * 700 * t)) + np.where(t > 0.8, rng.normal(0, 0.1, len(t)), 0)
    return np.clip(np.round(x * 32768), -32768, 32767).astype(np.int16)


@pytest.mark.parametrize("key", ["lstm_p_float32", "lstm_p_int8", "lstm_p_int8io", "crnn_int8io"])
def test_real_streaming_file_app_mirror_equals_streaming_tflite(real_files, key, monkeypatch):
    from ai_edge_litert.interpreter import Interpreter

    import kws_kd.tflite.streaming as streaming
    from kws_kd.stream_scorers import tflite_scorer

    class Recording(streaming.StreamingTFLite):
        """StreamingTFLite recording every feed it hands LiteRT."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            real, self.seen = self.runner, []
            self.runner = lambda **feeds: (self.seen.append(feeds), real(**feeds))[1]
            made.append(self)

    made: list = []
    monkeypatch.setattr(streaming, "StreamingTFLite", Recording)

    path = real_files[key]
    sc = al.load_sidecar(al.sidecar_path_for(path))
    spec = sc.streaming
    assert spec.audio.dtype == ("int8" if "int8io" in key else "float32")
    assert all(s.input.dtype == spec.audio.dtype for s in spec.states)
    if key.startswith("crnn"):
        assert spec.warmup_frames == 6 and [s.recurrent for s in spec.states] == [False, False, True]
    golden_side = json.loads((GOLDEN_DIR / ("stream_int8.json" if "int8io" in key else "stream_float.json")).read_text())
    assert _schema(json.loads(al.sidecar_path_for(path).read_text())) == _schema(golden_side)  # golden = export schema

    pcm = _test_pcm()
    windows = 3
    # kws-kd eval --stream: StreamingTFLite over the whole file, its feeds recorded
    scorer = tflite_scorer(path, average_window_ms=60)
    assert scorer.windows == windows and scorer.hop_samples == 320 and len(made) == 1
    ends, smoothed = scorer.score(pcm)
    seen = made[0].seen

    interp = Interpreter(model_path=str(path), num_threads=1)
    sig = interp.get_signature_runner()
    conf = np.sort(np.unique(smoothed.max(axis=1)))
    gaps = np.flatnonzero(np.diff(conf) > 1e-5)
    threshold = float((conf[gaps[len(gaps) // 2]] + conf[gaps[len(gaps) // 2] + 1]) / 2) if len(gaps) else 0.5
    assert spec.logits.dtype == "float32" or spec.logits.quantization is not None
    stream = al.KeywordStream(sc, al.signature_runner_model(sig, sc), 250, windows, threshold, 0.1)
    results = _feed(stream, pcm, [1, 511, 3000, 17, 4001, 320, 319, 1] + [512] * ((len(pcm) - 8170) // 512)
                    + [(len(pcm) - 8170) % 512])
    assert [r.end_sample for r in results] == ends.tolist() == [320 * (k + 1) for k in range(len(pcm) // 320)]
    names = ["audio", "tail", *(s.name for s in spec.states)]
    for k, (r, feeds) in enumerate(zip(results, seen)):
        for n, mine in zip(names, r.frame_inputs):
            np.testing.assert_array_equal(mine, np.asarray(feeds[n]).reshape(-1), err_msg=f"{key} call {k} input {n}")
    mine = np.array([r.smoothed for r in results])
    if spec.logits.dtype == "float32":
        np.testing.assert_array_equal(mine, smoothed)  # float logits: bit for bit
    else:  # the app dequantizes int8 logits in float64, StreamingTFLite in float32
        np.testing.assert_allclose(mine, smoothed, rtol=0, atol=1e-6)
    index, _, detected = al.decode_batch(smoothed, sc.labels, threshold)
    assert [r.decision.index for r in results] == index.tolist()
    assert [r.decision.detected for r in results] == detected.tolist()
    fired = al.detection_events(ends / SR, index, detected, 0.1)
    assert [k for k, r in enumerate(results) if r.announced] == fired.tolist()
    assert len(gaps) and 0 < detected.sum() < len(detected) and len(fired) >= 1  # the comparison is not vacuous
