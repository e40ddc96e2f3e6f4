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
* a REAL streaming LSTM-P / CRNN runs through both with LiteRT in
  `tests/test_app_logic_real_streaming.py`.
"""

from __future__ import annotations

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
