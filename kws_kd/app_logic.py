"""Numpy reference of the Android sample app's logic (android_harness/).

The app keeps the last `input_samples` of microphone PCM in a ring buffer, runs
the model every hop, converts int16 PCM to the model's input dtype, turns the
output into posteriors, smooths them over a few hops and decodes the top label.
This module does exactly the same arithmetic in the same order as the plain-Java
classes in `android_harness/app/src/main/java/org/kwskd/app/core/`, so the
golden file written by `android_harness/make_golden.py` pins both sides:
integers must match exactly and floats to ~1e-6.

Arithmetic rules shared with the Java side (see docs/android.md):
- float input: ``pcm / 32768`` in float32 (exact: a power-of-two divisor).
- int8 input: ``clamp(round_half_away(pcm / 32768 / scale) + zero_point, -128, 127)``
  computed in float64; half away from zero is what TFLite's own quantize uses.
- int8 output: ``(q - zero_point) * scale`` in float64.
- posteriors in float64: softmax (single-label) or sigmoid (multi-label) of
  logits; ``"kind": "probabilities"`` outputs are used as they are.
- smoothing: plain mean of the last N posterior vectors, summed oldest first.
- decoding: first index of the maximum; "detected" when its smoothed posterior
  reaches the threshold and the label is not a filler (``_silence_`` etc.).
- announcing (`detection_events` over a whole stream, `Announcer` hop by hop;
  Java: `Announcer`): once per onset of a detected label, at most one
  announcement per suppression time.
- hop scheduling: the first inference runs as soon as the ring holds a full
  window, then one every ``hop`` samples: after ``input_samples + k * hop``
  samples have been written.
- streaming files (sidecar ``"streaming": {...}``, `StreamingSpec`): one call
  per ``hop_samples`` of audio, from the first hop on. The tail and state
  tensors are carried from each call's outputs to the next call's inputs
  (`StreamingState`), exactly as `kws_kd.tflite.streaming.StreamingTFLite`
  does: zeros at the start, carried values kept as float32 (an int8 output is
  dequantized ``(float32(q) - zero_point) * float32(scale)`` in float32), an
  int8 input requantized from them in float64 like the audio, and the
  ``recurrent`` states reset to zero after each of the first
  ``warmup_frames`` calls.

Numpy only: it never imports TensorFlow, so the golden test stays fast.

This module is the mirror's one public face; the code lives in `kws_kd.app`:
`sidecar` (the one sidecar reader), `tensors` (I/O conversion, posteriors),
`decoding` (smoothing, decoding, announcing) and `stream` (ring buffer, hop
schedule, streaming state, `KeywordStream`).
"""


from kws_kd.app import decoding, sidecar, stream, tensors
from kws_kd.app.decoding import *  # noqa: F403 - the public names of each part
from kws_kd.app.sidecar import *  # noqa: F403
from kws_kd.app.stream import *  # noqa: F403
from kws_kd.app.tensors import *  # noqa: F403

__all__ = [*decoding.__all__, *sidecar.__all__, *stream.__all__, *tensors.__all__]
