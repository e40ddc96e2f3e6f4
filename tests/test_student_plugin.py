"""A new student is one file plus a registry line: a toy streamable student, registered for the test only.

`tests/_toy_student.py` is written as docs/students.md says; registered, it
builds, strips, reports MACs and exports as a streaming .tflite file whose
logits after the last hop equal the whole-clip Keras model's.
"""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

import _toy_student  # noqa: E402

from kws_kd.errors import KwsKdError  # noqa: E402

SR = 16000


@pytest.fixture
def registered(monkeypatch):
    """The registry line (`_SPECS` in registry.py), for this test only."""
    from kws_kd.students import registry

    monkeypatch.setitem(registry.STUDENTS, _toy_student.SPEC.name, _toy_student.SPEC)
    return _toy_student.SPEC


def test_spec_fields_of_the_registered_students():
    from typing import get_args

    from kws_kd.students import STUDENTS, get_spec
    from kws_kd.train_options import Optimizer

    assert sorted(n for n, s in STUDENTS.items() if s.streamable) == ["crnn", "lstm_p"]
    for spec in STUDENTS.values():
        assert spec.default_optimizer in get_args(Optimizer)
        assert spec.streamable or spec.not_streamable
    assert get_spec("tc_resnet").default_optimizer == "sgd" and get_spec("crnn").default_optimizer == "adam"
    assert dict(get_spec("tc_resnet").short_run_config) == {"bn_momentum": 0.9}
    assert "bidirectional" in get_spec("att_rnn").not_streamable


def test_toy_student_builds_strips_and_counts(registered):
    from kws_kd.features import front_ends
    from kws_kd.students import attention_length, build_student, strip
    from kws_kd.students.base import student_info
    from kws_kd.students.macs import model_macs

    model = build_student("toy_gru", 3, SR)
    logits, a_s = model(np.zeros((2, SR), np.float32))
    assert logits.shape == (2, 3) and a_s.shape == (2, attention_length("toy_gru", SR))
    inference = strip(model)
    assert front_ends(inference) == [student_info(model).front_end]
    assert model_macs(strip(build_student("toy_gru", 3, SR, for_export=True))) > 0


def test_toy_student_exports_streaming_and_matches_the_whole_clip_model(registered, tmp_path):
    from kws_kd.students import build_student, strip
    from kws_kd.tflite.streaming import StreamingTFLite, build_streaming_model, check_streamable, convert_streaming
    from kws_kd.tflite.verify import keras_logits

    check_streamable("toy_gru")  # no error: its spec has a stream_step
    keras.utils.set_random_seed(4)
    model = strip(build_student("toy_gru", 3, SR, for_export=True))
    _, layout = build_streaming_model(model)
    assert layout.states == {"state_h": (8,)} and layout.warmup_frames == 0
    out = tmp_path / "toy.tflite"
    layout = convert_streaming(model, {"float32": out}, calibration_audio=None, label="toy_gru", log=lambda *a: None)
    rng = np.random.default_rng(0)
    clips = (0.3 * rng.standard_normal((2, SR))).astype(np.float32)
    got = StreamingTFLite(out, layout).logits_batch(clips)
    np.testing.assert_allclose(got, keras_logits(model, clips), atol=1e-4)


def test_unregistered_and_non_streamable_students_are_clear_errors():
    from kws_kd.tflite.streaming import check_streamable

    with pytest.raises(KwsKdError, match="unknown student 'toy_gru'"):
        check_streamable("toy_gru")
    with pytest.raises(KwsKdError, match="tc_resnet cannot stream \\(its strided"):
        check_streamable("tc_resnet")
