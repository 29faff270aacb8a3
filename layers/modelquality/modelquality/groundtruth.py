"""Ground Truth labels: one JSON line per image, as a SageMaker Ground Truth image-classification job writes its
output manifest (https://docs.aws.amazon.com/sagemaker/latest/dg/sms-data-output.html), so the built-in
algorithm trains on it as an augmented manifest (AttributeNames ["source-ref", LABEL_ATTRIBUTE]):

    {"source-ref": "s3://bucket/key.png", "vehicle-class": 1,
     "vehicle-class-metadata": {"class-name": "motorcycle", "confidence": 1.0, "human-annotated": "yes",
        "creation-date": "2026-11-24T07:00:00.000000", "type": "groundtruth/image-classification",
        "job-name": "labeling-job/scones-review"}}

The review page adds a `"review"` attribute (the item, the reviewer, the image's content hash, whether it was a
blind audit, and for items people were asked about the model's answer); other attributes are kept as they are.
common.artefacts re-exports these names (its parser raises ArtefactError, the project's input error).
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from modelquality.errors import LabelFormatError

LABEL_ATTRIBUTE = "vehicle-class"  # Ground Truth's LabelAttributeName for our labels
GROUND_TRUTH_TYPE = "groundtruth/image-classification"
REVIEW_JOB_NAME = "labeling-job/scones-review"
LABEL_MANIFEST_SUFFIXES = (".jsonl", ".manifest")
REVIEW_ATTRIBUTE = "review"  # what the review page adds to each line (see the module docstring)


@dataclass(frozen=True)
class GroundTruthLabel:
    """One labelled image: where it is (`source-ref`), its class (name and index in the class order)."""

    source_ref: str
    class_name: str
    class_index: int
    creation_date: str = ""  # Ground Truth's format, UTC without a zone: 2018-10-18T22:18:13.527256
    job_name: str = REVIEW_JOB_NAME
    human_annotated: bool = True
    confidence: float = 1.0
    attribute: str = LABEL_ATTRIBUTE
    extra: dict[str, Any] = field(default_factory=dict, compare=False)  # other attributes of the line, kept

    @property
    def review(self) -> dict[str, Any]:
        """The review page's attribute of the line ({} for a line another tool wrote)."""
        value = self.extra.get(REVIEW_ATTRIBUTE)
        return value if isinstance(value, dict) else {}

    def as_line(self) -> str:
        """The manifest line (no newline)."""
        return json.dumps({
            "source-ref": self.source_ref,
            self.attribute: self.class_index,
            f"{self.attribute}-metadata": {
                "class-name": self.class_name,
                "confidence": self.confidence,
                "human-annotated": "yes" if self.human_annotated else "no",
                "creation-date": self.creation_date or ground_truth_now(),
                "type": GROUND_TRUTH_TYPE,
                "job-name": self.job_name,
            },
            **self.extra,
        })


def ground_truth_now() -> str:
    """The current time as Ground Truth writes `creation-date`."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def parse_ground_truth_line(text: str, where: str = "manifest") -> GroundTruthLabel:
    """One image-classification line; the label attribute is found by its `-metadata` type, whatever the
    labelling job called it. Anything else (multi-label, bounding boxes, no label) is refused by name."""
    try:
        line = json.loads(text)
    except json.JSONDecodeError as error:
        raise LabelFormatError(f"{where}: not JSON ({error.msg})") from error
    if not isinstance(line, dict) or not isinstance(line.get("source-ref"), str):
        raise LabelFormatError(f"{where}: a Ground Truth line needs a \"source-ref\" string")
    attributes = [key[: -len("-metadata")] for key, value in line.items()
                  if key.endswith("-metadata") and isinstance(value, dict) and value.get("type") == GROUND_TRUTH_TYPE
                  and key[: -len("-metadata")] in line]
    if len(attributes) != 1:
        raise LabelFormatError(f"{where}: expected one label attribute with {GROUND_TRUTH_TYPE!r} metadata, found "
                               f"{len(attributes)}")
    attribute = attributes[0]
    metadata = line[f"{attribute}-metadata"]
    try:
        class_index = int(line[attribute])  # Ground Truth writes it as a number or as its string
    except (TypeError, ValueError) as error:
        raise LabelFormatError(f"{where}: {attribute!r} is {line[attribute]!r}, not a class index") from error
    class_name = metadata.get("class-name")
    if not isinstance(class_name, str) or not class_name:
        raise LabelFormatError(f"{where}: {attribute}-metadata has no class-name")
    try:
        confidence = float(metadata.get("confidence", 1.0))
    except (TypeError, ValueError) as error:
        raise LabelFormatError(f"{where}: {attribute}-metadata's confidence is not a number") from error
    known = {"source-ref", attribute, f"{attribute}-metadata"}
    return GroundTruthLabel(
        source_ref=line["source-ref"], class_name=class_name, class_index=class_index,
        creation_date=str(metadata.get("creation-date", "")), job_name=str(metadata.get("job-name", "")),
        human_annotated=metadata.get("human-annotated", "yes") == "yes", confidence=confidence,
        attribute=attribute, extra={key: value for key, value in line.items() if key not in known},
    )


def is_label_manifest(name: str) -> bool:
    """A label file's name (`*.jsonl`, `*.manifest`), hidden files left out."""
    return name.endswith(LABEL_MANIFEST_SUFFIXES) and not posixpath.basename(name).startswith(".")
