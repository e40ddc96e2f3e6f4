"""TFLite (LiteRT) export of stripped students.

`export.export_run` is the one entry point of `kws-kd export --tflite`;
`convert` runs the TensorFlow converter in a child process, `inspect` reads a
.tflite file with LiteRT only (op list, I/O details), `sidecar` writes the JSON
an app needs, `verify` and `evaluate` run the file on real clips.
"""

MODES = ("float32", "float16", "dynamic", "int8")
