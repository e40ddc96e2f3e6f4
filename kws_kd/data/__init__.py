"""Datasets: readers for real layouts, the Noisy Speech Commands builder, offline synthesis.

Everything in this package except `pipeline.py` is numpy-only, so the torch
teacher in `export/` can use the same manifests without importing TensorFlow.
"""
