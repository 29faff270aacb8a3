"""Blind audits in the review queue, and a label for an image rather than an execution (issue 18's item 7)."""

from __future__ import annotations

import json

import pytest

from review.queue import AlreadyLabelledError, ReviewQueue
from review.store import FolderStore
from testkit.review import CLASSES, queued_images, rerun, write_review_folder


def test_an_audit_is_blind_in_the_api_mixed_by_time_and_its_label_is_marked_as_an_audit(tmp_path):
    folder = write_review_folder(tmp_path / "bucket", queued_images(4, audits=frozenset({1, 3})))
    queue = ReviewQueue(FolderStore(folder), CLASSES)

    items = [item.as_api() for item in queue.view().items]

    assert [(item["id"], item["audit"]) for item in items] == [
        ("exec-000-00000", False), ("exec-000-00001", True), ("exec-000-00002", False), ("exec-000-00003", True)]
    assert items[1] == {"id": "exec-000-00001", "s3_key": "test/photo_000_00001.png", "audit": True,
                        "recorded_at": "2026-11-24T10:00:01.000Z"}  # no prediction, inferences or confidence
    assert set(items[0]) == {"id", "s3_key", "audit", "prediction", "inferences", "recorded_at"}

    queue.label("exec-000-00001", "bicycle", reviewer="ann")
    review = json.loads((folder / "labels" / f"{queued_images(4)[1].content_sha256}.jsonl").read_text())["review"]
    assert review == {"id": "exec-000-00001", "audit": True, "content-sha256": queued_images(4)[1].content_sha256,
                      "reviewer": "ann"}  # nothing of the model's answer, even in the stored line


def test_a_rerun_does_not_queue_an_image_already_labelled_nor_let_it_be_labelled_again(tmp_path):
    first = queued_images(3)
    folder = write_review_folder(tmp_path / "bucket", first)
    ReviewQueue(FolderStore(folder), CLASSES).label("exec-000-00001", "motorcycle")
    write_review_folder(folder, rerun(first, seed=7))  # the same three images, decided again by new executions

    queue = ReviewQueue(FolderStore(folder), CLASSES)
    view = queue.view()

    assert [item.id for item in view.items] == ["exec-000-00000", "exec-000-00002"]  # one item per image
    assert view.labelled == 2  # exec-000-00001 and its rerun exec-007-00001
    with pytest.raises(AlreadyLabelledError, match="exec-007-00001 is already labelled"):
        queue.claim("exec-007-00001", "bob")
    with pytest.raises(AlreadyLabelledError, match="was already labelled as motorcycle by another reviewer"):
        queue.label("exec-007-00001", "bicycle")
    assert len(list((folder / "labels").iterdir())) == 1


def test_a_label_written_before_content_hashes_still_covers_its_image_in_a_rerun(tmp_path):
    """The bug: after a rerun, images already labelled were queued again (the label was keyed by the old execution).
    An older record has no content hash: the queue hashes its image once, with the training de-duplication's hash."""
    old = queued_images(2, hashes=False)
    folder = write_review_folder(tmp_path / "bucket", old)
    (folder / "labels").mkdir()
    (folder / "labels" / "exec-000-00000.jsonl").write_text(json.dumps({
        "source-ref": "s3://scones-offline/test/photo_000_00000.png", "vehicle-class": 0,
        "vehicle-class-metadata": {"class-name": "bicycle", "type": "groundtruth/image-classification"}}) + "\n")
    write_review_folder(folder, rerun(queued_images(2), seed=7))  # today's records carry the hash

    queue = ReviewQueue(FolderStore(folder), CLASSES)

    assert [item.id for item in queue.view().items] == ["exec-000-00001"]
    assert queue.existing_label("exec-007-00000").class_name == "bicycle"


def test_two_unlabelled_executions_of_one_image_are_one_item_and_one_label_covers_both(tmp_path):
    first = queued_images(2)
    folder = write_review_folder(tmp_path / "bucket", [*first, *rerun(first[:1], seed=7)])
    queue = ReviewQueue(FolderStore(folder), CLASSES)
    assert [item.id for item in queue.view().items] == ["exec-000-00000", "exec-000-00001"]

    queue.label("exec-000-00000", "bicycle")

    assert [item.id for item in queue.view().items] == ["exec-000-00001"]
    assert queue.view().labelled == 2
    queue.undo("exec-007-00000")  # the label is the image's: undone from either of its items
    assert [item.id for item in queue.view().items] == ["exec-000-00000", "exec-000-00001"]
