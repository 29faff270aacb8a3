"""The drift check's core, shared by `python -m monitoring` and the CheckDriftFunction through the DriftCheckLayer.

Capture-record parsing and validation (capture), image and output features (features), the training
baseline (baseline), PSI and the two-sample tests with numpy and math only (stats), and the verdict
(checks). numpy is its only dependency, so the layer stays small; image decoding is passed in by the
caller (imaging.preprocess, the ImagingLayer), never imported here.
"""
