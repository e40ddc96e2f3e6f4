"""The torch side of kws-kd: the wav2vec 2.0 teacher, its fine-tuning, and the attention store export.

Nothing in this package imports TensorFlow; the TF side never imports this package.
"""
