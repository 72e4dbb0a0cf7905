"""Beam pipelines: preprocessing (raw corpus → tf.Transform → TFRecords) and bulk scoring."""
