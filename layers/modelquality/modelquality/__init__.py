"""Live model quality from audited decisions, shared by `python -m monitoring quality`, the review queue, the gate
and the CheckQualityFunction through the ModelQualityLayer.

The audit choice (audit), the Wilson interval and the audits a verdict needs (stats), Ground Truth label lines
(groundtruth), the workflow's decision records (records), reading a bucket or a folder that mirrors one
(bucket), and the join of labels with the decisions they judge (assess). Standard library only, so the layer
stays tiny; boto3 is passed in by the caller.
"""
