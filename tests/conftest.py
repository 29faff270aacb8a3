"""Shared fixtures: fake AWS credentials, a Lambda context, sample events and test images."""

from __future__ import annotations

import os

# Set before any boto3 client or Powertools object is created (the Lambda modules create them on import).
os.environ.update({
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_SERVICE_NAME": "image-classification",
    "POWERTOOLS_METRICS_NAMESPACE": "SconesUnlimited/ImageClassification",
    "SAGEMAKER_SUPPRESS_V2_WARNING": "1",
})
for _variable in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_LAMBDA",
                  "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"):
    os.environ.pop(_variable, None)

from common.settings import TEMPLATE_PATH  # noqa: E402
from common.template import SamTemplate  # noqa: E402

# The Lambda modules read their configuration at import, from the environment template.yaml gives them
# (THRESHOLD, ENDPOINT_NAME, CLASS_NAMES, MAX_IMAGE_BYTES, ...): the unit tests import them with that environment.
for _function in SamTemplate(TEMPLATE_PATH).functions().values():
    os.environ.update(_function.environment)

import moto  # noqa: E402,F401 - imported before boto3 clients exist, so moto can intercept them
import pytest  # noqa: E402

from tests.support import LambdaContextStub  # noqa: E402


@pytest.fixture
def lambda_context() -> LambdaContextStub:
    return LambdaContextStub()


from tests.model_fixture import tiny_model  # noqa: E402,F401 - shared session fixture


@pytest.fixture(scope="session")
def browser():
    """Headless Debian Chromium (Playwright), one per session; the page tests open their own contexts."""
    from testkit.browser import chromium

    with chromium() as launched:
        yield launched
