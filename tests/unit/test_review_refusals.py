"""The review queue on S3 never reads a refusal as an absence: access denied is not "no label" (which would let anyone
undo another reviewer's label), and an object that is really gone is skipped, not an error."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from botocore.exceptions import ClientError

from review.queue import ReviewQueue
from review.store import S3Store
from testkit.review import CLASSES, review_bucket_on_moto

BUCKET = "review-bucket"


@pytest.fixture
def s3():
    with review_bucket_on_moto(BUCKET) as client:
        yield client


def refuse(client, operation: str, key_prefix: str) -> None:
    """Answer `operation` on keys under `key_prefix` with S3's AccessDenied, as botocore parses it."""

    def denied(params, **_):  # `params`: the request as serialized (its url_path holds the key)
        if f"/{key_prefix}" in params["url_path"]:
            error = {"Error": {"Code": "AccessDenied", "Message": "Access Denied"},
                     "ResponseMetadata": {"HTTPStatusCode": 403}}
            return SimpleNamespace(status_code=403, headers={}), error
        return None

    client.meta.events.register(f"before-call.s3.{operation}", denied)


def test_a_refused_label_read_never_lets_someone_else_undo_a_label(s3):
    queue = ReviewQueue(S3Store(s3, BUCKET), CLASSES)
    queue.label("exec-000-00000", "bicycle", reviewer="ann")
    refuse(s3, "GetObject", "labels/")
    with pytest.raises(ClientError, match="AccessDenied"):
        queue.undo("exec-000-00000", reviewer="bob")
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix="labels/")["KeyCount"] == 1  # ann's label is still there


def test_a_refused_head_is_not_no_label_to_undo(s3):
    queue = ReviewQueue(S3Store(s3, BUCKET), CLASSES)
    queue.label("exec-000-00000", "bicycle")
    assert S3Store(s3, BUCKET).delete_label("exec-000-00001") is False  # no label there: said as such
    refuse(s3, "HeadObject", "labels/")
    with pytest.raises(ClientError, match="AccessDenied"):
        S3Store(s3, BUCKET).delete_label("exec-000-00000")
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix="labels/")["KeyCount"] == 1


def test_a_record_gone_between_the_listing_and_the_read_is_skipped(s3):
    store = S3Store(s3, BUCKET)
    keys = store.review_keys()
    s3.delete_object(Bucket=BUCKET, Key=keys[0])
    store.review_keys = lambda: keys  # type: ignore[method-assign] - the listing made just before the delete
    assert [item.id for item in ReviewQueue(store, CLASSES).view().items] == ["exec-000-00001"]
