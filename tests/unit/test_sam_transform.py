"""common.sam_transform lends samtranslator a region for the call only: the process's environment is its own."""

from __future__ import annotations

import os

from common import sam_transform


def test_transforming_leaves_no_region_behind(monkeypatch, tmp_path):
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    sam_transform._transformed.cache_clear()  # a cached result would skip the transform this test is about
    template = sam_transform.transformed_template()
    assert "AWS::Serverless::Function" not in {resource["Type"] for resource in template["Resources"].values()}
    assert "AWS_DEFAULT_REGION" not in os.environ
