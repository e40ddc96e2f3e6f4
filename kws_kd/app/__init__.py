"""Numpy mirror of the Android sample app, in parts; `kws_kd.app_logic` is its one public face."""
