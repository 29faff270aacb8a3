"""The review queue and its stores: Ground Truth lines, one label per image (folder and S3), restarts, claims."""

from __future__ import annotations

import json
import threading

import boto3
import pytest
from moto import mock_aws

from common.artefacts import (
    ArtefactError,
    GroundTruthLabel,
    ManifestRow,
    dataset_ground_truth,
    parse_ground_truth_line,
    parse_ground_truth_manifest,
    write_manifest,
)
from review.queue import (
    AlreadyLabelledError,
    ClaimedError,
    NotLabelledError,
    NotYourLabelError,
    ReviewQueue,
    UnknownClassError,
    UnknownItemError,
)
from review.store import FolderStore, ReviewSourceError, S3Store, open_store
from testkit.review import CLASSES, put_review_records, queued_images, write_review_folder


@pytest.fixture
def folder(tmp_path):
    return write_review_folder(tmp_path / "bucket", queued_images(4))


def image_hash(folder, identifier: str) -> str:
    """The content hash the state machine recorded for the item's image."""
    return json.loads((folder / "review" / f"{identifier}.json").read_text())["content_sha256"]


def label_path(folder, identifier: str):
    """Where the item's label is: a label is for an image, `labels/<content hash>.jsonl`."""
    return folder / "labels" / f"{image_hash(folder, identifier)}.jsonl"


def test_a_ground_truth_line_is_the_image_classification_output_format():
    label = GroundTruthLabel("s3://b/test/x.png", "motorcycle", 1, "2026-11-24T07:00:00.000000")
    assert json.loads(label.as_line()) == {
        "source-ref": "s3://b/test/x.png",
        "vehicle-class": 1,
        "vehicle-class-metadata": {"class-name": "motorcycle", "confidence": 1.0, "human-annotated": "yes",
                                   "creation-date": "2026-11-24T07:00:00.000000",
                                   "type": "groundtruth/image-classification",
                                   "job-name": "labeling-job/scones-review"},
    }
    assert parse_ground_truth_line(label.as_line()) == label


def test_a_labelling_jobs_own_attribute_name_and_string_index_are_read():
    line = ('{"source-ref":"s3://AWSDOC-EXAMPLE-BUCKET/example_image.jpg","species":"0","species-metadata":'
            '{"class-name":"dog","confidence":0.00,"type":"groundtruth/image-classification","job-name":'
            '"identify-animal-species","human-annotated":"yes","creation-date":"2018-10-18T22:18:13.527256"}}')
    label = parse_ground_truth_line(line)
    assert (label.attribute, label.class_index, label.class_name, label.confidence) == ("species", 0, "dog", 0.0)


@pytest.mark.parametrize(("text", "message"), [
    ("not json", "labels.jsonl:2: not JSON (Expecting value)"),
    ('{"vehicle-class": 1}', 'labels.jsonl:2: a Ground Truth line needs a "source-ref" string'),
    ('{"source-ref": "s3://b/k", "x": 1, "x-metadata": {"type": "groundtruth/object-detection"}}',
     "labels.jsonl:2: expected one label attribute with 'groundtruth/image-classification' metadata, found 0"),
    ('{"source-ref": "s3://b/k", "x": "one", "x-metadata": {"type": "groundtruth/image-classification", '
     '"class-name": "a"}}', "labels.jsonl:2: 'x' is 'one', not a class index"),
])
def test_a_bad_manifest_line_is_refused_by_file_and_line(text, message):
    good = GroundTruthLabel("s3://b/k", "bicycle", 0).as_line()
    with pytest.raises(ArtefactError) as refused:
        parse_ground_truth_manifest(f"{good}\n{text}\n", "labels.jsonl")
    assert str(refused.value) == message


def test_the_dataset_manifest_becomes_ground_truth_for_the_staged_keys(tmp_path):
    write_manifest(tmp_path, [ManifestRow("test/b.png", "motorcycle", 1, "test", "s1"),
                              ManifestRow("train/a.png", "bicycle", 0, "train", "s2"),
                              ManifestRow("test/a.png", "bicycle", 0, "test", "s3")])
    labels = dataset_ground_truth(tmp_path, "test", "scones-offline")
    assert [(label.source_ref, label.class_name, label.class_index) for label in labels] == [
        ("s3://scones-offline/test/a.png", "bicycle", 0), ("s3://scones-offline/test/b.png", "motorcycle", 1)]
    with pytest.raises(ArtefactError, match="has no 'validation' images"):
        dataset_ground_truth(tmp_path, "validation", "b")


def test_labelled_items_leave_the_queue_and_the_line_names_the_image(folder):
    queue = ReviewQueue(FolderStore(folder), CLASSES)
    items = queue.view().items
    assert [item.id for item in items] == ["exec-000-00000", "exec-000-00001", "exec-000-00002", "exec-000-00003"]

    label = queue.label("exec-000-00001", "motorcycle")

    written = label_path(folder, "exec-000-00001").read_text()
    assert written == label.as_line() + "\n"
    line = json.loads(written)
    assert line["source-ref"] == "s3://scones-offline/test/photo_000_00001.png"
    assert (line["vehicle-class"], line["vehicle-class-metadata"]["class-name"]) == (1, "motorcycle")
    assert line["review"] == {"id": "exec-000-00001", "audit": False, "model-label": "motorcycle",
                              "model-confidence": 0.648, "content-sha256": image_hash(folder, "exec-000-00001")}
    view = queue.view()
    assert [item.id for item in view.items] == ["exec-000-00000", "exec-000-00002", "exec-000-00003"]
    assert view.labelled == 1


def test_a_second_label_is_refused_and_says_what_the_first_was(folder):
    first, second = ReviewQueue(FolderStore(folder), CLASSES), ReviewQueue(FolderStore(folder), CLASSES)
    first.label("exec-000-00000", "bicycle")
    with pytest.raises(AlreadyLabelledError) as refused:
        second.label("exec-000-00000", "motorcycle")
    assert str(refused.value) == "exec-000-00000 was already labelled as bicycle by another reviewer"
    assert len(list((folder / "labels").iterdir())) == 1  # no temporary file left behind


def test_two_reviewers_racing_on_one_folder_item_write_exactly_one_label(folder):
    for attempt in range(20):
        identifier = "exec-000-00002"
        queues = [ReviewQueue(FolderStore(folder), CLASSES) for _ in range(2)]
        barrier = threading.Barrier(2)
        results: list[str] = []

        def reviewer(queue: ReviewQueue, name: str) -> None:
            barrier.wait()
            try:
                queue.label(identifier, name)
                results.append(name)
            except AlreadyLabelledError:
                results.append("refused")

        threads = [threading.Thread(target=reviewer, args=(q, c)) for q, c in zip(queues, CLASSES, strict=True)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(results).count("refused") == 1, attempt
        winner = next(r for r in results if r != "refused")
        assert json.loads(label_path(folder, identifier).read_text())["vehicle-class-metadata"][
            "class-name"] == winner
        queues[0].undo(identifier)


def test_labels_survive_a_restart_and_undo_puts_the_item_back(folder):
    ReviewQueue(FolderStore(folder), CLASSES).label("exec-000-00003", "bicycle")
    restarted = ReviewQueue(FolderStore(folder), CLASSES)
    assert [item.id for item in restarted.view().items] == ["exec-000-00000", "exec-000-00001", "exec-000-00002"]
    restarted.undo("exec-000-00003")
    assert len(restarted.view().items) == 4
    with pytest.raises(NotLabelledError, match="exec-000-00003 has no label to undo"):
        restarted.undo("exec-000-00003")


def test_only_the_reviewer_who_wrote_a_label_can_undo_it(folder):
    queue = ReviewQueue(FolderStore(folder), CLASSES)
    queue.label("exec-000-00001", "motorcycle", reviewer="page-a")
    line = json.loads(label_path(folder, "exec-000-00001").read_text())
    assert line["review"]["reviewer"] == "page-a"
    for someone_else in ("page-b", None):
        with pytest.raises(NotYourLabelError) as refused:
            queue.undo("exec-000-00001", someone_else)
        assert str(refused.value) == ("exec-000-00001 was labelled as motorcycle by another reviewer: only they can "
                                      "undo it")
    assert label_path(folder, "exec-000-00001").exists()
    queue.undo("exec-000-00001", "page-a")
    assert not label_path(folder, "exec-000-00001").exists()


def test_console_execution_names_are_items_and_a_name_that_cannot_be_one_is_said_once(folder, caplog):
    record = {**json.loads((folder / "review" / "exec-000-00000.json").read_text()), "content_sha256": "0" * 64}
    (folder / "review" / "order+7=(retry)@eu!.json").write_text(json.dumps(record))  # another image
    (folder / "review" / "has a space.json").write_text(json.dumps(record))
    queue = ReviewQueue(FolderStore(folder), CLASSES, refresh_seconds=0)
    with caplog.at_level("WARNING", logger="review.queue"):
        ids = [item.id for item in queue.view().items]
        queue.view()
    assert "order+7=(retry)@eu!" in ids and len(ids) == 5
    assert [r.getMessage() for r in caplog.records] == [
        "skipping review/has a space.json: its name is not a review item id (letters, digits, ._-+=@!'())"]


def test_unknown_items_and_classes_are_refused_by_name(folder):
    queue = ReviewQueue(FolderStore(folder), CLASSES)
    with pytest.raises(UnknownClassError) as refused:
        queue.label("exec-000-00000", "tractor")
    assert str(refused.value) == "'tractor' is not a class; the classes are bicycle, motorcycle"
    with pytest.raises(UnknownItemError, match="no review item 'nope': there is no review/nope.json in"):
        queue.label("nope", "bicycle")
    with pytest.raises(UnknownItemError, match=r"no review item '\.\./x'"):
        queue.image("../x")
    assert not (folder / "labels").exists()


def test_a_claim_shows_an_item_to_one_reviewer_until_it_expires(folder):
    now = [0.0]
    queue = ReviewQueue(FolderStore(folder), CLASSES, claim_seconds=60, clock=lambda: now[0])
    queue.claim("exec-000-00000", "ann")
    assert [item.id for item in queue.view("bob").items][-1] == "exec-000-00000"  # last for Bob
    assert queue.view("bob").claimed_by_others == {"exec-000-00000"}
    assert queue.view("ann").items[0].id == "exec-000-00000"
    with pytest.raises(ClaimedError, match="another reviewer is looking at exec-000-00000"):
        queue.claim("exec-000-00000", "bob")
    queue.label("exec-000-00000", "bicycle", reviewer="bob")  # a claim is advice: a label is never refused by it
    queue.claim("exec-000-00001", "ann")
    now[0] = 61.0
    queue.claim("exec-000-00001", "bob")  # expired


def test_skipped_items_go_to_the_back_of_that_reviewers_queue(folder):
    queue = ReviewQueue(FolderStore(folder), CLASSES)
    queue.skip("exec-000-00000", "ann")
    assert [item.id for item in queue.view("ann").items][-1] == "exec-000-00000"
    assert queue.view("bob").items[0].id == "exec-000-00000"


def test_a_malformed_record_is_skipped_not_fatal(folder):
    (folder / "review" / "broken.json").write_text("{not json")
    (folder / "review" / "other.json").write_text('{"s3_key": "x"}')
    assert len(ReviewQueue(FolderStore(folder), CLASSES).view().items) == 4


def test_a_source_that_is_not_a_folder_is_refused(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ReviewSourceError, match="is not a folder"):
        open_store(str(tmp_path / "file"))
    with pytest.raises(ReviewSourceError, match="give the bucket alone"):
        open_store("s3://bucket/review/")


@pytest.fixture
def bucket():
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="review-bucket")
        put_review_records(s3, "review-bucket", queued_images(3, bucket="review-bucket"))
        yield s3


def test_on_s3_a_label_is_a_conditional_put_and_a_second_one_is_refused(bucket):
    sent: list[dict] = []
    bucket.meta.events.register("provide-client-params.s3.PutObject", lambda params, **_: sent.append(dict(params)))
    first, second = (ReviewQueue(S3Store(bucket, "review-bucket"), CLASSES) for _ in range(2))

    first.label("exec-000-00001", "bicycle")
    with pytest.raises(AlreadyLabelledError, match="already labelled as bicycle"):
        second.label("exec-000-00001", "motorcycle")

    key = f"labels/{queued_images(3, bucket='review-bucket')[1].content_sha256}.jsonl"
    assert [(call["Key"], call["IfNoneMatch"], call["ContentType"]) for call in sent] == [
        (key, "*", "application/jsonl")] * 2
    body = bucket.get_object(Bucket="review-bucket", Key=key)["Body"].read()
    assert json.loads(body)["source-ref"] == "s3://review-bucket/test/photo_000_00001.png"
    assert [item.id for item in second.view().items] == ["exec-000-00000", "exec-000-00002"]
    assert first.image("exec-000-00002") == queued_images(3, bucket="review-bucket")[2].image


def test_an_unreadable_bucket_is_refused_at_start(bucket):
    from review.store import ReviewSourceUnavailableError

    session = boto3.Session(region_name="us-east-1")
    with pytest.raises(ReviewSourceUnavailableError, match=r"s3://no-such-bucket cannot be read \(NoSuchBucket\)"):
        open_store("s3://no-such-bucket", session)


def test_another_servers_labels_show_within_the_refresh_time_and_cannot_be_claimed(folder):
    now = [0.0]
    mine = ReviewQueue(FolderStore(folder), CLASSES, refresh_seconds=1.0, clock=lambda: now[0])
    other = ReviewQueue(FolderStore(folder), CLASSES)
    assert len(mine.view().items) == 4
    other.label("exec-000-00000", "bicycle")
    assert len(mine.view().items) == 4  # listed under a second ago: S3 is not listed on every request
    now[0] = 1.0
    assert [item.id for item in mine.view().items] == ["exec-000-00001", "exec-000-00002", "exec-000-00003"]
    with pytest.raises(AlreadyLabelledError, match="exec-000-00000 is already labelled"):
        mine.claim("exec-000-00000", "ann")
    mine.label("exec-000-00001", "motorcycle")  # its own labels apply at once
    assert [item.id for item in mine.view().items] == ["exec-000-00002", "exec-000-00003"]
