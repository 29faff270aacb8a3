"""The batch door offline: the batch machine's Distributed Map over a mixed prefix, each object a child execution of
the EXPRESS machine; every object ends classified, in review, or failed by name, and the summary says which."""

from __future__ import annotations

import json

import pytest

from imaging.preprocess import encode_png, to_model_input
from testkit.images import png_bytes
from tests.support import HANG_GUARD_S
from workflow.batch import EmptyPrefixError, classify_prefix
from workflow.offline.events import CLASSIFIED, NEEDS_REVIEW, count_by_type
from workflow.offline.stub_endpoint import Answer

PREFIX = "batch/mixed/"


@pytest.fixture
def answers(endpoint):
    """Answers by image (the endpoint receives the 32x32 PNG serialize-image makes), so concurrency cannot mix them."""
    yield endpoint.by_body
    endpoint.by_body.clear()


def put(runtime, answers, name: str, data: bytes, answer: tuple[float, float] | None = None) -> str:
    runtime.put_image(PREFIX + name, data)
    if answer is not None:
        answers[encode_png(to_model_input(data))] = Answer.probabilities(*answer)
    return PREFIX + name


def test_every_object_of_a_mixed_prefix_is_accounted_for(runtime, endpoint, answers):
    runtime.events.drain()
    classified = [put(runtime, answers, "good_1.png", png_bytes(seed=51), (0.97, 0.03)),
                  put(runtime, answers, "good_2.jpg", png_bytes(90, 60, seed=52), (0.01, 0.99)),
                  put(runtime, answers, "nested/good_3.png", png_bytes(seed=53), (0.96, 0.04))]
    review = [put(runtime, answers, "low_1.png", png_bytes(seed=54), (0.6, 0.4)),
              put(runtime, answers, "low_2.png", png_bytes(seed=55), (0.45, 0.55))]
    failed = {put(runtime, answers, "corrupt.png", png_bytes(64, 64)[:200]): "NotAnImageError",
              put(runtime, answers, "notes.txt", b"not pixels"): "NotAnImageError"}
    runtime.put_image("batch/other/not_in_the_prefix.png", png_bytes())
    progress: list[tuple[int, int | None]] = []

    summary = classify_prefix(runtime.sfn, runtime.s3, runtime.batch_state_machine_arn, runtime.bucket, PREFIX,
                              results_bucket=runtime.bucket, poll_interval=0.05, timeout=HANG_GUARD_S,
                              progress=lambda done, total, note="": progress.append((done, total)))

    assert (summary["status"], summary["complete"], summary["objects"]) == ("SUCCEEDED", True, 7)
    assert summary["classified"] == {"count": 3, "keys": sorted(classified),
                                     "labels": {"bicycle": 2, "motorcycle": 1}}
    assert summary["review"] == {"count": 2, "keys": sorted(review)}
    assert summary["failed"] == {"count": 2, "keys": failed}
    assert progress[-1] == (7, 7)
    assert count_by_type(runtime.events.drain()) == {CLASSIFIED: 3, NEEDS_REVIEW: 2}
    records = runtime.review_records()
    assert sorted(r["s3_key"] for r in records.values() if r["s3_key"].startswith(PREFIX)) == sorted(review)
    stored = json.loads(runtime.s3.get_object(Bucket=runtime.bucket, Key=summary["summary_uri"].split("/", 3)[3])[
        "Body"].read())
    assert stored["failed"] == summary["failed"]


def test_the_results_are_written_as_the_result_writer_writes_them(runtime, endpoint):
    runtime.put_image("batch/two/a.png", png_bytes(seed=61))
    runtime.put_image("batch/two/b.png", b"text")
    summary = classify_prefix(runtime.sfn, runtime.s3, runtime.batch_state_machine_arn, runtime.bucket, "batch/two",
                              results_bucket=runtime.bucket, poll_interval=0.05, timeout=HANG_GUARD_S)
    run = summary["execution_arn"].rsplit(":", 1)[1]
    keys = [o["Key"] for o in runtime.s3.list_objects_v2(Bucket=runtime.bucket,
                                                          Prefix=f"batch-results/{run}/")["Contents"]]
    manifest_key = next(k for k in keys if k.endswith("/manifest.json"))
    manifest = json.loads(runtime.s3.get_object(Bucket=runtime.bucket, Key=manifest_key)["Body"].read())
    (succeeded,) = manifest["ResultFiles"]["SUCCEEDED"]
    entries = json.loads(runtime.s3.get_object(Bucket=runtime.bucket, Key=succeeded["Key"])["Body"].read())
    assert manifest["ResultFiles"]["FAILED"] == [] and len(entries) == 2
    assert all(isinstance(e["Input"], str) and isinstance(e["Output"], str) and e["Status"] == "SUCCEEDED"
               for e in entries)
    assert sorted(json.loads(e["Output"])["outcome"] for e in entries) == ["classified", "failed"]


def test_an_empty_prefix_is_refused_before_starting(runtime):
    with pytest.raises(EmptyPrefixError, match="no objects under s3://scones-offline/batch/none/"):
        classify_prefix(runtime.sfn, runtime.s3, runtime.batch_state_machine_arn, runtime.bucket, "batch/none/",
                        results_bucket=runtime.bucket)
