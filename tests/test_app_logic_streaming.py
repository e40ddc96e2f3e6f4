"""kws_kd.app_logic's streaming path: what the Android app does with a streaming .tflite file.

A streaming file runs once per 20 ms hop; its tail and state tensors are
carried from each call's outputs to the next call's inputs. The app mirror must
do exactly what `kws_kd.tflite.streaming.StreamingTFLite` (and so
`kws-kd eval --stream`) does: zeros at the start, float32 carried values,
int8 requantization, recurrent states held at zero during the warm-up.

* the golden file `streaming_golden.json` (android_harness/make_golden.py, a
  stub interpreter) is reproduced here and by the JVM `StreamingGoldenTest`;
* `StreamingTFLite` driven by the same stub (no TensorFlow) sees exactly the
  tensors the app mirror hands the stub;
* a REAL streaming LSTM-P / CRNN (random weights, float32 and int8, exported
  by the exporter's own functions) runs through both with LiteRT: same
  tensors, same logits, same decisions and announcements.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kws_kd import app_logic as al
from kws_kd.errors import KwsKdError

ROOT = Path(__file__).resolve().parents[1]
GOLDEN_DIR = ROOT / "android_harness" / "app" / "src" / "test" / "resources" / "golden"
SR = 16000


@pytest.fixture(scope="module")
def golden() -> dict:
    return json.loads((GOLDEN_DIR / "streaming_golden.json").read_text())


@pytest.fixture(scope="module")
def make_golden():
    spec = importlib.util.spec_from_file_location("golden_streaming", ROOT / "android_harness" / "golden_streaming.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _case(golden: dict, name: str) -> dict:
    return next(c for c in golden["cases"] if c["name"] == name)


def _roles(spec: al.StreamingSpec) -> list[str]:
    return ["logits", "tail_out", *(f"{s.name}_out" for s in spec.states)]


def _arr(values, spec: al.TensorSpec) -> np.ndarray:
    return np.array(values, dtype=np.int8 if spec.dtype == "int8" else np.float32)


def _replay(case: dict, spec: al.StreamingSpec):
    """A frame model that checks each input against the golden hop and answers with the recorded outputs."""
    audio = _arr(case["audio_input"], spec.audio)
    calls = {"n": 0}

    def model(inputs):
        hop = case["hops"][calls["n"]]
        end = hop["end_sample"]
        want = [audio[end - spec.hop_samples : end], *(_arr(hop["inputs"][t.name], t) for t in spec.inputs[1:])]
        assert len(inputs) == len(want)
        for got, exp, t in zip(inputs, want, spec.inputs):
            assert got.dtype == exp.dtype, t.name
            np.testing.assert_array_equal(got, exp, err_msg=f"{case['name']} call {calls['n']} input {t.name}")
        calls["n"] += 1
        return [_arr(hop["outputs"][r], t) for r, t in zip(_roles(spec), spec.outputs)]

    return model, calls


def _feed(stream: al.KeywordStream, pcm: np.ndarray, chunks) -> list[al.HopResult]:
    out, pos = [], 0
    for n in chunks:
        out += stream.feed(pcm[pos : pos + n])
        pos += n
    assert pos == len(pcm)
    return out


def _check(case: dict, results: list[al.HopResult]) -> None:
    assert len(results) == len(case["hops"])
    for r, h in zip(results, case["hops"]):
        assert r.end_sample == h["end_sample"]
        np.testing.assert_allclose(r.posteriors, h["posteriors"], rtol=0, atol=1e-12)
        np.testing.assert_allclose(r.smoothed, h["smoothed"], rtol=0, atol=1e-12)
        assert (r.decision.index, r.decision.label, r.decision.detected, r.announced) == (
            h["label_index"], h["label"], h["detected"], h["announced"])
        assert r.decision.confidence == pytest.approx(h["confidence"], abs=1e-12)


@pytest.mark.parametrize("name", ["stream_float", "stream_int8"])
def test_golden_streaming_case_reproduced(golden, name):
    case = _case(golden, name)
    sc = al.load_sidecar(GOLDEN_DIR / case["sidecar"])
    assert sc.is_streaming and sc.streaming.hop_samples == 160
    pcm = np.array(golden["pcm"], dtype=np.int16)
    for chunks in (golden["chunks"], [len(pcm)], [1] * 500 + [len(pcm) - 500], [159, 1, 161, 319, 4160]):
        model, calls = _replay(case, sc.streaming)
        stream = al.KeywordStream(sc, model, 250, case["smoothing_windows"], case["threshold"], case["suppression_ms"] / 1000)
        _check(case, _feed(stream, pcm, chunks))
        assert calls["n"] == len(case["hops"]) == len(pcm) // 160


@pytest.mark.parametrize("name", ["stream_float", "stream_int8"])
def test_golden_outputs_are_the_stub_function(golden, make_golden, name):
    """make_golden.stub_frame on the recorded inputs gives the recorded outputs (the Java stub is held to the same)."""
    case = _case(golden, name)
    sc = al.load_sidecar(GOLDEN_DIR / case["sidecar"])
    spec = sc.streaming
    stub = make_golden.stub_frame(spec)
    audio = _arr(case["audio_input"], spec.audio)
    for h in case["hops"]:
        ins = [audio[h["end_sample"] - 160 : h["end_sample"]], *(_arr(h["inputs"][t.name], t) for t in spec.inputs[1:])]
        for got, role, t in zip(stub(ins), _roles(spec), spec.outputs):
            np.testing.assert_array_equal(got, _arr(h["outputs"][role], t))
    assert golden["stub"]["W"] == make_golden.STUB_W and golden["stub"]["V"] == make_golden.STUB_V


def test_golden_exercises_warmup_and_requantization(golden):
    for case in golden["cases"]:
        sc = al.load_sidecar(GOLDEN_DIR / case["sidecar"])
        spec = sc.streaming
        h_spec = next(s for s in spec.states if s.name == "state_h")
        zero = al.carried_input(np.zeros(h_spec.input.size, np.float32), h_spec.input)
        for k, hop in enumerate(case["hops"][: spec.warmup_frames + 2]):
            same = np.array_equal(_arr(hop["inputs"]["state_h"], h_spec.input), zero)
            assert same == (k <= spec.warmup_frames), (case["name"], k)  # zeros, held twice, then carried
        assert sum(h["announced"] for h in case["hops"]) >= 2
        assert 0 < sum(h["detected"] for h in case["hops"]) < len(case["hops"])
    buf = [_case(golden, "stream_int8")["hops"][k] for k in (5, 6)]
    assert buf[0]["outputs"]["conv0_buffer_out"] != buf[1]["inputs"]["conv0_buffer"]  # other scale: requantized
    assert 127 in sum((h["inputs"]["state_h"] for h in _case(golden, "stream_int8")["hops"]), [])  # clamped


# ---------------------------------------------------------------------------
# the same arithmetic as StreamingTFLite (no TensorFlow: a stub runner behind it)


def _stub_streaming_tflite(side: dict, stub):
    """A StreamingTFLite whose signature runner is `stub`; returns it and the list of feeds it was called with."""
    from kws_kd.tflite.streaming import StreamingLayout, StreamingTFLite

    layout = StreamingLayout.from_dict(side["streaming"])
    tensors = side["streaming"]["tensors"]

    def detail(e):
        q = e["quantization"]
        return {"dtype": np.dtype(e["dtype"]).type, "shape": np.array(e["shape"]),
                "quantization": (q["scale"], q["zero_point"]) if q else (0.0, 0)}

    runner = object.__new__(StreamingTFLite)  # everything but the LiteRT interpreter
    runner.layout = layout
    runner.inputs = {n: detail(e) for n, e in tensors["inputs"].items()}
    runner.outputs = {e["name"]: detail(e) for e in tensors["outputs"].values()}
    order = sorted(runner.outputs, key=lambda k: int(k.rsplit("_", 1)[-1]))
    runner.out_names = dict(zip(["logits", "tail", *layout.states], order))
    seen = []

    def run(**feeds):
        seen.append(feeds)
        return dict(zip(order, stub([feeds[n] for n in ["audio", "tail", *layout.states]])))

    runner.runner = run
    runner.reset()
    return runner, seen


@pytest.mark.parametrize("name", ["stream_float", "stream_int8"])
def test_app_mirror_feeds_what_streaming_tflite_feeds(golden, make_golden, name):
    """Reset, warm-up, carry and requantization: StreamingTFLite and the app mirror hand the model the same tensors."""
    case = _case(golden, name)
    side = json.loads((GOLDEN_DIR / case["sidecar"]).read_text())
    sc = al.parse_sidecar(json.dumps(side), case["sidecar"])
    stub = make_golden.stub_frame(sc.streaming)
    ref, seen = _stub_streaming_tflite(side, stub)
    pcm = np.array(golden["pcm"], dtype=np.int16)
    x = al.pcm_to_float(pcm)  # what kws-kd eval --stream feeds StreamingTFLite
    ref_logits = [ref.push(x[k * 160 : (k + 1) * 160]) for k in range(len(pcm) // 160)]
    results = _feed(al.KeywordStream(sc, stub, 250, 4, 0.5), pcm, golden["chunks"])
    assert len(results) == len(seen) == ref.calls
    names = ["audio", "tail", *(s.name for s in sc.streaming.states)]
    for k, (r, feeds) in enumerate(zip(results, seen)):
        for n, mine in zip(names, r.frame_inputs):
            theirs = np.asarray(feeds[n]).reshape(-1)
            assert theirs.dtype == mine.dtype, n
            np.testing.assert_array_equal(mine, theirs, err_msg=f"call {k} input {n}")
        np.testing.assert_array_equal(al.carried_value(r.raw_output, sc.output), ref_logits[k])


def test_carried_value_is_streaming_tflite_arithmetic():
    """int8 out -> float32 -> int8 in, for every int8 value and scales as LiteRT reports them (float32)."""
    from kws_kd.tflite.streaming import StreamingTFLite

    out_q = (float(np.float32(0.00661920290440321)), 73)
    in_q = (float(np.float32(0.006639713887125254)), 73)
    ref = object.__new__(StreamingTFLite)
    ref.outputs = {"o": {"dtype": np.int8, "quantization": out_q}}
    ref.inputs = {"i": {"dtype": np.int8, "quantization": in_q}}
    q = np.arange(-128, 128, dtype=np.int8)
    out_spec = al.TensorSpec("o", (256,), "int8", al.Quantization(*out_q))
    in_spec = al.TensorSpec("i", (256,), "int8", al.Quantization(*in_q))
    v = al.carried_value(q, out_spec)
    assert v.dtype == np.float32
    np.testing.assert_array_equal(v, ref._from("o", q))
    np.testing.assert_array_equal(al.carried_input(v, in_spec), ref._to("i", v))
    f_spec = al.TensorSpec("f", (3,), "float32", None)
    np.testing.assert_array_equal(al.carried_input(al.carried_value(np.array([0.5, -1e-8, 3.0]), f_spec), f_spec),
                                  np.float32([0.5, -1e-8, 3.0]))


# ---------------------------------------------------------------------------
# announcing


def test_golden_announcer_sequences_are_detection_events(golden):
    for seq in golden["announcer"]:
        fired = al.detection_events(np.array(seq["times_s"]), np.array(seq["index"]), np.array(seq["detected"]),
                                    seq["suppression_s"])
        assert fired.tolist() == seq["fired"]


def test_announcer_is_detection_events_hop_by_hop():
    rng = np.random.default_rng(0)
    for trial in range(200):
        n = int(rng.integers(1, 120))
        hop_s = float(rng.choice([0.01, 0.02, 0.1, 0.25]))
        times = np.arange(1, n + 1) * hop_s
        index = np.repeat(rng.integers(0, 3, n), rng.integers(1, 5, n))[:n]
        detected = np.repeat(rng.random(n) < 0.5, rng.integers(1, 6, n))[:n]
        suppression = float(rng.choice([0.0, 0.05, 0.3, 0.5, 1.0]))
        a = al.Announcer(suppression)
        hop_by_hop = [i for i in range(n) if a.push(times[i], int(index[i]), bool(detected[i]))]
        assert hop_by_hop == al.detection_events(times, index, detected, suppression).tolist(), trial
    with pytest.raises(KwsKdError, match="suppression"):
        al.Announcer(-0.1)


def test_keyword_stream_announces_like_detection_events(golden):
    case = _case(golden, "stream_float")
    sc = al.load_sidecar(GOLDEN_DIR / case["sidecar"])
    model, _ = _replay(case, sc.streaming)
    results = _feed(al.KeywordStream(sc, model, 250, 4, 0.5, 0.05), np.array(golden["pcm"], np.int16), [4800])
    ends = np.array([r.end_sample for r in results])
    index = np.array([r.decision.index for r in results])
    detected = np.array([r.decision.detected for r in results])
    fired = al.detection_events(ends / SR, index, detected, 0.05)
    assert [i for i, r in enumerate(results) if r.announced] == fired.tolist() and len(fired) >= 2


# ---------------------------------------------------------------------------
# sidecar parsing


def test_streaming_sidecar_fields():
    sc = al.load_sidecar(GOLDEN_DIR / "stream_int8.json")
    spec = sc.streaming
    assert (spec.hop_samples, spec.window_samples, spec.tail_samples, spec.warmup_frames) == (160, 208, 48, 2)
    assert [s.name for s in spec.states] == ["conv0_buffer", "state_h"]  # layout order, not the tensors' name order
    assert [s.recurrent for s in spec.states] == [False, True]
    assert [t.name for t in spec.inputs] == ["audio", "tail", "conv0_buffer", "state_h"]
    assert [t.name for t in spec.outputs] == ["output_0", "output_1", "output_2", "output_3"]
    assert spec.states[1].output.quantization == al.Quantization(float(np.float32(0.0315)), 1)
    assert spec.logits.kind == "logits" and spec.logits == sc.output
    assert sc.input_samples == 4800 and not al.load_sidecar(GOLDEN_DIR / "tiny_int8.json").is_streaming
    from kws_kd.tflite.streaming import StreamingLayout  # the app reads the layout the exporter wrote

    layout = StreamingLayout.from_dict(json.loads((GOLDEN_DIR / "stream_int8.json").read_text())["streaming"])
    assert layout.states == {s.name: s.shape for s in spec.states} and layout.recurrent == ("state_h",)


def _stream_sidecar(change) -> dict:
    obj = json.loads((GOLDEN_DIR / "stream_int8.json").read_text())
    change(obj)
    return obj


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda o: o.update(streaming="yes"), "must be false or the streaming layout"),
        (lambda o: o["streaming"].update(hop_samples=0), "'streaming.hop_samples' must be positive"),
        (lambda o: o["streaming"].update(window_samples=160), "window_samples' larger"),
        (lambda o: o["streaming"].update(tail_samples=47), "tail_samples' is not"),
        (lambda o: o["streaming"].update(warmup_frames=-1), "warmup_frames' must not be negative"),
        (lambda o: o["streaming"].update(recurrent=["state_x"]), "names 'state_x'"),
        (lambda o: o["streaming"].pop("tensors"), "missing field 'streaming.tensors'"),
        (lambda o: o["streaming"]["tensors"]["outputs"].pop("state_h_out"),
         "missing field 'streaming.tensors.outputs.state_h_out'"),
        (lambda o: o["streaming"]["tensors"]["outputs"]["state_h_out"].pop("name"), "state_h_out.name' must name"),
        (lambda o: o["streaming"].update(window_samples=209, tail_samples=49),
         "'streaming.tensors.inputs.tail' has shape [1, 48], expected 49 values"),
        (lambda o: o["streaming"]["states"].update(state_h=[5]), "inputs.state_h' has shape [1, 4], expected 5 values"),
        (lambda o: o["streaming"]["states"].update(state_h=[]), "'streaming.states.state_h' must be"),
        (lambda o: o["output"]["quantization"].update(scale=0.5), "differ from 'streaming.tensors'"),
        (lambda o: o.update(input_samples=-1), "must be positive"),
        (lambda o: o.update(streaming=True), "streaming layout is missing"),
    ],
)
def test_streaming_sidecar_errors_name_file_and_problem(tmp_path, change, message):
    path = tmp_path / "m.json"
    path.write_text(json.dumps(_stream_sidecar(change)))
    with pytest.raises(KwsKdError) as exc:
        al.load_sidecar(path)
    assert str(exc.value).startswith(f"{path}: ") and message in str(exc.value), str(exc.value)
    assert "\n" not in str(exc.value)


def test_streaming_sidecar_without_clip_length_parses():
    obj = _stream_sidecar(lambda o: o.update(input_samples=0))  # build_sidecar writes 0 when it was not told
    assert al.parse_sidecar(json.dumps(obj)).input_samples == 0


def test_app_logic_still_imports_no_tensorflow():
    code = ("import sys, kws_kd.app_logic as al; al.load_sidecar(sys.argv[1]); "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'ai_edge_litert')]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code, str(GOLDEN_DIR / "stream_int8.json")], check=True, cwd=ROOT)


# ---------------------------------------------------------------------------
# a real streaming file through LiteRT: the app mirror and StreamingTFLite agree exactly


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
