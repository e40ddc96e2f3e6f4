"""Every student converts to every mode with builtin ops only, and runs in LiteRT.

One module-scoped pass converts all five students (reduced widths, so the pass
fits the test budget; the paper-size students are converted by the benchmark)
to float32/float16/dynamic/int8 at 1 s, plus the vanilla twins of the
non-attention students. Expected values come from the Keras model and from
LiteRT, never from the code under test.
"""

from __future__ import annotations

import signal

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from kws_kd.errors import KwsKdError  # noqa: E402
from kws_kd.tflite import MODES  # noqa: E402

SR = 16000
SMALL = {
    "lstm_p": {"units": 24, "projection": 16},
    "tc_resnet": {"channels": [12, 12, 16]},
    "crnn": {"gru_units": 16, "units1": 16, "units2": 16},
    "att_rnn": {"rnn_units": 16, "rnn_layers": 1, "units1": 16, "units2": 16},
    "mhatt_rnn": {"rnn_units": 16, "rnn_layers": 1, "units1": 16, "units2": 16},
}
NON_ATTENTION = ("lstm_p", "tc_resnet", "crnn")
# Ops whose presence would mean a loop, Flex or a custom op slipped in.
FORBIDDEN = {"WHILE", "CUSTOM", "DELEGATE", "CALL_ONCE", "IF"}


def _build(name, attention=True, for_export=True):
    from kws_kd.students.registry import build_student, make_config

    return build_student(name, 12, SR, make_config(name, SMALL[name]), attention=attention, for_export=for_export)


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """{student: {"keras": stripped model, "files": {mode: path}, "vanilla": path or None}}.

    All SavedModels are exported first, then ONE converter child converts them
    all (one TensorFlow import instead of eight).
    """
    from kws_kd.features import dynamic_range_safe, front_end_scopes
    from kws_kd.students.attention import strip
    from kws_kd.tflite.convert import Job, export_saved_model, run_jobs

    root = tmp_path_factory.mktemp("tflite")
    rep = np.random.default_rng(0).uniform(-0.3, 0.3, (8, SR)).astype(np.float32)
    out, jobs, scopes = {}, [], set()
    for name in SMALL:
        keras.utils.set_random_seed(1)
        model = strip(_build(name))
        scopes.update(front_end_scopes(model))
        export_saved_model(model, root / f"{name}_sm", name)
        with dynamic_range_safe(model):  # as convert_model does for --quantize dynamic
            export_saved_model(model, root / f"{name}_dynamic_sm", name)
        files = {m: root / f"{name}_{m}.tflite" for m in MODES}
        jobs += [Job(root / f"{name}_{'dynamic_' if m == 'dynamic' else ''}sm", m, p, name) for m, p in files.items()]
        vanilla = None
        if name in NON_ATTENTION:
            twin = _build(name, attention=False)
            twin.set_weights(model.get_weights())
            export_saved_model(twin, root / f"{name}_vanilla_sm", name)
            vanilla = root / f"{name}_vanilla.tflite"
            jobs.append(Job(root / f"{name}_vanilla_sm", "float32", vanilla, f"{name} (vanilla)"))
        out[name] = {"keras": model, "files": files, "vanilla": vanilla}
    assert scopes, "the students' MFCC front end was not found"
    run_jobs(jobs, representative=rep, float_scopes=sorted(scopes))  # as kws-kd export does
    return out


@pytest.fixture(scope="module")
def clips():
    rng = np.random.default_rng(7)
    t = np.arange(SR) / SR
    # Tones over a noise floor, like real recordings: a pure digital tone leaves mel
    # bins near zero, where log() turns FFT rounding (TF vs TFLite RFFT) into 1e-3 errors.
    tones = [0.4 * np.sin(2 * np.pi * f * t) + rng.normal(0, 0.01, SR) for f in (300.0, 900.0, 2500.0)]
    noise = rng.normal(0, 0.05, (3, SR))
    return np.concatenate([np.stack(tones), noise]).astype(np.float32)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SMALL))
def test_every_mode_converts_with_builtins_only_and_runs(converted, clips, name):
    from kws_kd.tflite.runner import TFLiteClassifier, op_counts

    for mode, path in converted[name]["files"].items():
        ops = op_counts(path)
        assert ops, f"{name}/{mode}: no ops"
        assert not FORBIDDEN & set(ops), f"{name}/{mode}: {FORBIDDEN & set(ops)}"
        assert not any(op.startswith("Flex") for op in ops)
        clf = TFLiteClassifier(path)
        assert clf.input["shape"].tolist() == [1, SR]
        assert clf.input["dtype"] == np.float32 and clf.output["dtype"] == np.float32
        logits = clf.logits_batch(clips)
        assert logits.shape == (len(clips), 12) and np.all(np.isfinite(logits))


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SMALL))
def test_float32_matches_keras(converted, clips, name):
    from kws_kd.tflite.runner import TFLiteClassifier
    from kws_kd.tflite.verify import keras_logits

    ref = keras_logits(converted[name]["keras"], clips)
    got = TFLiteClassifier(converted[name]["files"]["float32"]).logits_batch(clips)
    np.testing.assert_allclose(got, ref, atol=1e-4, rtol=0)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SMALL))
def test_quantized_files_store_narrow_weights(converted, name):
    """float16 stores float16 weights, dynamic/int8 store int8 weights, int8 also computes in int8.

    File sizes of these reduced-width students are dominated by the unrolled
    graph's tensor metadata, so the weight dtypes are the meaningful check;
    paper-size sizes are in docs/latency.md.
    """
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    def dtypes(mode):
        it = Interpreter(model_path=str(converted[name]["files"][mode]),
                         experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)  # fmt: skip
        return {np.dtype(d["dtype"]).name for d in it.get_tensor_details()}

    sizes = {m: p.stat().st_size for m, p in converted[name]["files"].items()}
    assert "float16" in dtypes("float16") and "float16" not in dtypes("float32")
    assert "int8" in dtypes("dynamic") and "int8" not in dtypes("float32")
    assert "int8" in dtypes("int8")
    assert max(sizes["float16"], sizes["dynamic"]) < sizes["float32"]
    # No size assertion for int8 here: an unrolled recurrence has thousands of
    # activation tensors, each carrying int8 quantization parameters, so at these
    # reduced widths an int8 RNN file is LARGER than float32 (see docs/export.md).


@pytest.mark.slow
def test_dynamic_range_keeps_the_mfcc_front_end(converted, clips):
    """Dynamic-range quantization must not wreck the features: TC-ResNet stays close to float32."""
    from kws_kd.tflite.runner import TFLiteClassifier

    f32 = TFLiteClassifier(converted["tc_resnet"]["files"]["float32"]).logits_batch(clips)
    dyn = TFLiteClassifier(converted["tc_resnet"]["files"]["dynamic"]).logits_batch(clips)
    # Wrecked mel energies give errors of the order of the logits themselves.
    assert np.max(np.abs(dyn - f32)) < 0.1 * max(1.0, np.max(np.abs(f32)))


@pytest.mark.slow
@pytest.mark.parametrize("name", NON_ATTENTION)
def test_stripped_student_equals_vanilla_twin(converted, name):
    from kws_kd.tflite.runner import op_counts

    stripped = converted[name]["files"]["float32"]
    vanilla = converted[name]["vanilla"]
    assert op_counts(stripped) == op_counts(vanilla)
    a, b = stripped.stat().st_size, vanilla.stat().st_size
    assert abs(a - b) <= 0.01 * b


def test_child_crash_becomes_clear_error_and_no_file(tmp_path, monkeypatch):
    """A segfault in the converter child names the student and mode; nothing is written."""
    from kws_kd.tflite import convert

    crash = f"import os, signal; os.kill(os.getpid(), signal.{signal.Signals.SIGSEGV.name})"
    monkeypatch.setattr(convert, "CHILD", ["-c", crash])
    out = tmp_path / "m.tflite"
    with pytest.raises(KwsKdError, match=r"att_rnn.*crashed \(SIGSEGV\).*int8"):
        convert.convert_saved_model(
            tmp_path, {"int8": out}, representative=np.zeros((1, 10), np.float32), label="att_rnn"
        )
    assert list(tmp_path.iterdir()) == []


def test_child_failure_names_mode(tmp_path):
    from kws_kd.tflite.convert import convert_saved_model

    (tmp_path / "not_a_saved_model").mkdir()
    with pytest.raises(KwsKdError, match=r"crnn: TFLite conversion to float16 failed"):
        convert_saved_model(tmp_path / "not_a_saved_model", {"float16": tmp_path / "x.tflite"}, label="crnn")
    assert not (tmp_path / "x.tflite").exists()


def test_int8_without_representative_set_is_refused(tmp_path):
    from kws_kd.tflite.convert import convert_saved_model

    with pytest.raises(KwsKdError, match="representative"):
        convert_saved_model(tmp_path, {"int8": tmp_path / "x.tflite"}, label="m")


def test_unknown_mode_is_refused(tmp_path):
    from kws_kd.tflite.convert import convert_saved_model

    with pytest.raises(KwsKdError, match="unknown quantization mode"):
        convert_saved_model(tmp_path, {"int4": tmp_path / "x.tflite"})


@pytest.mark.slow
def test_internal_tensor_names_are_short_and_io_and_signature_survive(converted, clips):
    """Every internal tensor is `t<index>`; the I/O tensors keep their names; the signature still runs.

    And shortening changes nothing else: re-shortening is a no-op, and the
    file's logits equal those of the Keras model (float32) as before.
    """
    import re

    from ai_edge_litert.interpreter import Interpreter

    from kws_kd.tflite.names import shorten_tensor_names
    from kws_kd.tflite.verify import keras_logits

    path = converted["att_rnn"]["files"]["int8"]
    it = Interpreter(model_path=str(path))
    io = {d["index"] for d in it.get_input_details() + it.get_output_details()}
    names = {t["index"]: t["name"] for t in it.get_tensor_details()}
    assert all(re.fullmatch(rf"t{i}", n) for i, n in names.items() if i not in io)
    assert all(not re.fullmatch(r"t\d+", names[i]) for i in io)
    (key,) = it.get_signature_list()
    runner = it.get_signature_runner(key)
    (in_name,) = it.get_signature_list()[key]["inputs"]
    (out,) = runner(**{in_name: clips[:1]}).values()
    assert out.shape == (1, 12) and np.all(np.isfinite(out))
    data = path.read_bytes()
    assert shorten_tensor_names(data) == data
    f32 = Interpreter(model_path=str(converted["lstm_p"]["files"]["float32"]))
    f32.allocate_tensors()
    f32.set_tensor(f32.get_input_details()[0]["index"], clips[:1])
    f32.invoke()
    ref = keras_logits(converted["lstm_p"]["keras"], clips[:1])
    np.testing.assert_allclose(f32.get_tensor(f32.get_output_details()[0]["index"]), ref, atol=1e-4)
