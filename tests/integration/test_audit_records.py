"""Audits in the real ASL: a confident decision chosen for a blind audit is dispatched first (VehicleClassified),
then recorded under audit/; a record that cannot be written neither delays nor fails the dispatch; the same
image decides the same in every execution."""

from __future__ import annotations

import json
from contextlib import contextmanager
from datetime import UTC, datetime

import boto3

from common.servers import BackgroundServer
from common.settings import OFFLINE_REGION
from imaging.preprocess import content_hash, to_model_input
from testkit.images import png_bytes
from tests.support import HANG_GUARD_S, SCRIPTED_STACK
from workflow.offline.alarms import alarm_properties, alarm_state
from workflow.offline.runtime import OfflineRuntime
from workflow.offline.stub_endpoint import Answer, ScriptedEndpoint

MISSING_BUCKET = "no-such-review-bucket"


def entered(runtime: OfflineRuntime, arn: str) -> list[str]:
    return [e["stateEnteredEventDetails"]["name"] for e in runtime.history(arn) if e["type"].endswith("StateEntered")]


@contextmanager
def offline(answer: Answer, logs, *, parameter_overrides: dict[str, str], **options):
    """One runtime per test (two at once in one process would share moto's state machines), deployed with the two
    ClassNames and the threshold the scripted answers are about (tests.support.SCRIPTED_STACK)."""
    endpoint = ScriptedEndpoint(default=answer)
    with BackgroundServer(endpoint.app(), name="scripted-endpoint") as server:
        with OfflineRuntime(server.url, trigger=False, lambda_log_dir=logs,
                            parameter_overrides={**SCRIPTED_STACK, **parameter_overrides}, **options) as runtime:
            yield runtime


def test_an_audited_decision_is_dispatched_first_then_recorded_blind_for_review(tmp_path):
    image = png_bytes(seed=21)
    with offline(Answer.probabilities(0.98, 0.02), tmp_path, parameter_overrides={"AuditRate": "1"}) as audited:
        audited.put_image("incoming/a.png", image)
        result = audited.run("incoming/a.png")
        events = audited.events.drain()
        states = entered(audited, result.execution_arn)
        record = json.loads(audited.s3.get_object(Bucket=audited.bucket, Key=f"audit/{result.name}.json")["Body"]
                            .read())
        reviews = audited.review_records()

    assert result.status == "SUCCEEDED"
    assert states[-5:] == ["PublishClassified", "AuditChosen", "PrepareAuditRecord", "RecordAudit", "Audited"]
    (event,) = [e for e in events if e["detail-type"] == "VehicleClassified"]
    assert set(event["detail"]) == {"bucket", "key", "label", "confidence", "inferences", "model_version",
                                    "execution_id"}  # the dispatch event is as it was
    assert result.output["body"]["prediction"] == {"label": "bicycle", "confidence": 0.98}
    assert {k: v for k, v in record.items() if k != "recorded_at"} == {
        "s3_bucket": "scones-offline", "s3_key": "incoming/a.png",
        "content_sha256": content_hash(to_model_input(image)),
        "inferences": [0.98, 0.02], "prediction": {"label": "bicycle", "confidence": 0.98}, "audit": True,
        "audit_rate": 1, "model_version": "unversioned", "execution_arn": result.execution_arn}
    assert record["recorded_at"].startswith("20")
    assert reviews == {}  # an audit is not a low-confidence item


def test_an_audit_record_that_cannot_be_written_neither_fails_nor_holds_back_the_dispatch(tmp_path):
    with offline(Answer.probabilities(0.02, 0.98), tmp_path, parameter_overrides={"AuditRate": "1"},
                 substitution_overrides={"ReviewBucketName": MISSING_BUCKET}) as runtime:
        runtime.put_image("incoming/b.png", png_bytes(seed=23))
        result = runtime.run("incoming/b.png", timeout=HANG_GUARD_S)
        events = runtime.events.drain()
        states = entered(runtime, result.execution_arn)

    assert result.status == "SUCCEEDED"
    assert states[-4:] == ["PrepareAuditRecord", "RecordAudit", "CountAuditNotRecorded", "AuditNotRecorded"]
    assert states.index("PublishClassified") < states.index("RecordAudit")
    assert [e["detail"]["label"] for e in events if e["detail-type"] == "VehicleClassified"] == ["motorcycle"]
    # IAM refuses the write before S3 looks for the bucket: the machine's role may write only the data bucket's audit/
    assert result.output["audit_error"]["Error"] == "s3.AccessDeniedException"
    assert result.output["body"]["prediction"]["label"] == "motorcycle"


def test_an_audit_that_cannot_be_written_is_counted_and_alarms(tmp_path):
    """The execution still succeeds (the decision went out), but the lost audit is a datum of AuditsNotRecorded, which
    AuditsNotRecordedAlarm watches: a denied audit/ prefix no longer starves the quality check unseen."""
    with offline(Answer.probabilities(0.02, 0.98), tmp_path, parameter_overrides={"AuditRate": "1"},
                 substitution_overrides={"ReviewBucketName": MISSING_BUCKET}) as runtime:
        runtime.put_image("incoming/c.png", png_bytes(seed=24))
        results = [runtime.run("incoming/c.png", timeout=30) for _ in range(2)]
        states = entered(runtime, results[0].execution_arn)
        cloudwatch = boto3.client("cloudwatch", region_name=OFFLINE_REGION)
        alarm = alarm_properties(runtime.template, "AuditsNotRecordedAlarm")
        state, points = alarm_state(alarm, cloudwatch, datetime.now(UTC))

    assert [result.status for result in results] == ["SUCCEEDED"] * 2
    assert states[-4:] == ["PrepareAuditRecord", "RecordAudit", "CountAuditNotRecorded", "AuditNotRecorded"]
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == (
        "SconesUnlimited/ImageClassification", "AuditsNotRecorded", "Sum")
    assert (state, points) == ("ALARM", [2.0])


def test_a_recorded_audit_counts_nothing(tmp_path):
    with offline(Answer.probabilities(0.98, 0.02), tmp_path, parameter_overrides={"AuditRate": "1"}) as runtime:
        runtime.put_image("incoming/d.png", png_bytes(seed=25))
        assert runtime.run("incoming/d.png").status == "SUCCEEDED"
        cloudwatch = boto3.client("cloudwatch", region_name=OFFLINE_REGION)
        state = alarm_state(alarm_properties(runtime.template, "AuditsNotRecordedAlarm"), cloudwatch,
                            datetime.now(UTC))
    assert state == ("OK", [])


def test_the_same_image_is_audited_in_every_execution_and_another_is_not(tmp_path):
    """At AuditRate 0.5, by content hash: two executions and a second key of one image decide alike."""
    images = {seed: png_bytes(seed=seed) for seed in range(30, 40)}
    with offline(Answer.probabilities(0.97, 0.03), tmp_path, parameter_overrides={"AuditRate": "0.5"}) as runtime:
        chosen = {}
        for seed, image in images.items():
            first, second = f"incoming/a/{seed}.png", f"incoming/b/{seed}.png"  # serialize-image may read incoming/
            runtime.put_image(first, image)
            runtime.put_image(second, image)
            outcomes = {runtime.run(key).output["audit"]["sampled"] for key in (first, first, second)}
            assert len(outcomes) == 1, seed
            chosen[seed] = outcomes.pop()
        audits = runtime.s3.list_objects_v2(Bucket=runtime.bucket, Prefix="audit/").get("KeyCount", 0)
    assert 0 < sum(chosen.values()) < len(images)
    assert audits == 3 * sum(chosen.values())
