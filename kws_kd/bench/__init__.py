"""Latency and cost benchmarks of .tflite files: host LiteRT, ARM under qemu, phone over adb."""
