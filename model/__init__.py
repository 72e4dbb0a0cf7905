"""Keras text encoders, the trainer and the raw-text model export (TensorFlow only, never Beam)."""
