"""common.environ: patches put every variable back, and an offline block sees none of the user's AWS settings."""

from __future__ import annotations

import os

import boto3

from common.environ import isolated_aws_environ, patched_environ


def test_a_patch_sets_removes_and_restores(monkeypatch):
    monkeypatch.setenv("SCONES_TEST_KEPT", "before")
    monkeypatch.delenv("SCONES_TEST_NEW", raising=False)
    with patched_environ({"SCONES_TEST_KEPT": None, "SCONES_TEST_NEW": "during"}):
        assert "SCONES_TEST_KEPT" not in os.environ and os.environ["SCONES_TEST_NEW"] == "during"
    assert os.environ["SCONES_TEST_KEPT"] == "before" and "SCONES_TEST_NEW" not in os.environ


def test_an_isolated_block_has_only_the_aws_settings_it_names(monkeypatch, tmp_path):
    config = tmp_path / "config"
    config.write_text("[default]\nendpoint_url = http://127.0.0.1:9\nregion = eu-west-3\n[profile other]\n")
    users = {"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9",
             "AWS_PROFILE": "nope", "AWS_DEFAULT_PROFILE": "nope", "AWS_CONFIG_FILE": str(config),
             "AWS_SHARED_CREDENTIALS_FILE": str(config), "AWS_USE_FIPS_ENDPOINT": "true",
             "AWS_USE_DUALSTACK_ENDPOINT": "true", "AWS_CA_BUNDLE": "/no/such/bundle.pem", "AWS_REGION": "eu-west-3"}
    for name, value in users.items():
        monkeypatch.setenv(name, value)
    offline = {"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    with isolated_aws_environ(offline):
        aws = {name: value for name, value in os.environ.items() if name.startswith("AWS_")}
        assert aws == {**offline, "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                       "AWS_EC2_METADATA_DISABLED": "true"}
        session = boto3.session.Session()
        assert (session.available_profiles, session.region_name) == ([], "us-east-1")
        assert session.client("s3").meta.endpoint_url == "https://s3.amazonaws.com"
    assert {name: os.environ.get(name) for name in users} == users
