"""TFLite (LiteRT) export of stripped students.

`export.export_run` is the one entry point of `kws-kd export --tflite`;
`convert` runs the TensorFlow converter in a child process (`_child`),
`runner` runs and reads a .tflite file with LiteRT only (op list, I/O
details), `sidecar` writes the JSON an app needs, `streaming` builds and runs
one-hop-per-call files, `clips` loads held-out clips, `verify` (with its
per-mode bounds) and `evaluate` run the file on them.
"""

MODES = ("float32", "float16", "dynamic", "int8")
