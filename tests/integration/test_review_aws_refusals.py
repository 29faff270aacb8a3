"""An AWS refusal while the review page is served (a role without s3:GetObject on review/, or s3:PutObject on
labels/) is a named JSON error the page shows, saying what was refused as the CLI's line does, never a bare 500."""

from __future__ import annotations

import pytest

from common.servers import BackgroundServer
from review.app import create_app
from review.queue import ReviewQueue
from review.store import S3Store
from testkit.review import CLASSES, review_bucket_on_moto
from tests.integration.test_review_security import label_body, send
from tests.unit.test_review_refusals import BUCKET, refuse


@pytest.fixture
def s3():
    with review_bucket_on_moto(BUCKET) as client:
        yield client


def served(s3, *requests):
    server = BackgroundServer(create_app(ReviewQueue(S3Store(s3, BUCKET), CLASSES, identity="ann"))).start()
    try:
        return [send(server.port, *request, **headers)[:2] for *request, headers in requests]
    finally:
        server.stop()


def denied(operation: str) -> dict[str, str]:
    return {"error": "AWSRefusedError", "message": f"access denied (AccessDenied in {operation}): Access Denied. "
                                                   "Ask for that permission or use another profile"}


def test_a_refused_read_of_the_queue_is_a_named_error(s3):
    refuse(s3, "GetObject", "review/")
    assert served(s3, ("GET", "/api/queue", {})) == [(502, denied("GetObject"))]


def test_a_refused_label_write_is_a_named_error_and_writes_nothing(s3):
    refuse(s3, "PutObject", "labels/")
    answers = served(s3, ("GET", "/api/queue", {}), ("POST", "/api/items/exec-000-00000/label", label_body(),
                                                     {"Content_Type": "application/json"}))
    assert answers[0][0] == 200 and answers[1] == (502, denied("PutObject"))
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix="labels/")["KeyCount"] == 0
