"""modelquality: the Wilson interval against exact values, the audits a verdict needs, the audit rate, and the join
of labels with decisions (precision, review rate, agreement, misrouted share, the verdict), bad input included."""

from __future__ import annotations

import hashlib
import json
import math
from datetime import UTC, datetime
from pathlib import Path

import pytest
from scipy.stats import binomtest

from modelquality.assess import assess, load
from modelquality.audit import image_fraction, parse_audit_rate
from modelquality.bucket import FolderBucket
from modelquality.errors import InvalidAuditRateError
from modelquality.groundtruth import GroundTruthLabel
from modelquality.stats import Z_95, audits_needed, wilson_interval

CLASSES = ["bicycle", "motorcycle"]
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("successes", "trials"), [(0, 1), (1, 1), (0, 10), (8, 10), (10, 10), (95, 100),
                                                    (380, 381), (1, 1000)])
def test_the_wilson_interval_is_scipys_to_the_last_digits(successes, trials):
    exact = binomtest(successes, trials).proportion_ci(confidence_level=0.95, method="wilson")
    low, high = wilson_interval(successes, trials)
    assert low == pytest.approx(exact.low, abs=1e-12) and high == pytest.approx(exact.high, abs=1e-12)


def test_the_wilson_interval_has_its_closed_forms_at_the_ends():
    z2 = Z_95 ** 2
    assert Z_95 == pytest.approx(1.959963984540054, abs=1e-15)
    assert wilson_interval(0, 10) == (0.0, pytest.approx(z2 / (10 + z2), abs=1e-15))
    assert wilson_interval(10, 10) == (pytest.approx(10 / (10 + z2), abs=1e-15), 1.0)
    assert wilson_interval(8, 10) == (pytest.approx(0.4901624715366418, abs=1e-15),
                                      pytest.approx(0.9433178485456247, abs=1e-15))
    for bad in ((1, 0), (-1, 5), (6, 5)):
        with pytest.raises(ValueError, match="0 <= successes <= trials"):
            wilson_interval(*bad)


@pytest.mark.parametrize(("target", "needed"), [(0.99, 381), (0.95, 73), (0.9, 35), (0.5, 4)])
def test_the_audits_a_verdict_needs_are_the_fewest_whose_flawless_interval_reaches_the_target(target, needed):
    assert audits_needed(target) == needed
    assert wilson_interval(needed, needed)[0] >= target > wilson_interval(needed - 1, needed - 1)[0]
    assert audits_needed(1.0) is None  # no sample shows a precision of 1


@pytest.mark.parametrize(("raw", "value"), [("0", 0.0), ("0.02", 0.02), ("1", 1.0), (0.5, 0.5)])
def test_good_audit_rates_are_parsed(raw, value):
    assert parse_audit_rate(raw) == value


@pytest.mark.parametrize("raw", ["-0.01", "1.01", "abc", "", "nan", None, True])
def test_bad_audit_rates_are_refused_by_name(raw):
    with pytest.raises(InvalidAuditRateError, match=f"the audit rate must be a number from 0 to 1, got {raw!r}"):
        parse_audit_rate(raw)


def test_the_audit_fraction_is_in_zero_to_one_and_uniform_enough():
    assert image_fraction("0" * 64) == 0.0 and image_fraction("f" * 64) < 1.0
    fractions = [image_fraction(hashlib.sha256(str(i).encode()).hexdigest()) for i in range(10_000)]
    assert sum(f < 0.02 for f in fractions) == 202  # 2.02% at a rate of 2%
    assert image_fraction("s3://b/k.png") == image_fraction(hashlib.sha256(b"s3://b/k.png").hexdigest())


# A bucket mirror with decisions and labels written as the state machine and the review page write them.


def digest(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


class Mirror:
    def __init__(self, root: Path, day: str = "2026-11-30") -> None:
        self.root = root
        self.day = day  # the decisions' date (recorded_at)
        self.count = 0

    def decide(self, image: str, predicted: str, *, audit: bool, rate: float = 0.02, hour: int = 10,
               hashed: bool = True) -> str:
        """Record one decision on `image` (a name: its content hash is that name's SHA-256); its execution's name."""
        self.count += 1
        identifier = f"exec-{self.count:04d}"
        confidence = 0.99 if audit else 0.6
        record = {"s3_bucket": "scones-offline", "s3_key": f"incoming/{image}.png", "inferences": [],
                  "prediction": {"label": predicted, "confidence": confidence},
                  "execution_arn": f"arn:aws:states:us-east-1:123456789012:execution:m:{identifier}",
                  "recorded_at": f"{self.day}T{hour:02d}:00:{self.count % 60:02d}.000Z"}
        if hashed:
            record["content_sha256"] = digest(image)
        if audit:
            record.update(audit=True, audit_rate=rate)
        folder = self.root / ("audit" if audit else "review")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{identifier}.json").write_text(json.dumps(record))
        (self.root / "incoming").mkdir(exist_ok=True)
        (self.root / "incoming" / f"{image}.png").write_bytes(b"an image")
        return identifier

    def label(self, image: str, truth: str, *, name: str | None = None, extra: dict | None = None) -> Path:
        """The review page's label of `image` (file `labels/<content hash>.jsonl`, or `name`)."""
        line = GroundTruthLabel(f"s3://scones-offline/incoming/{image}.png", truth, CLASSES.index(truth)
                                if truth in CLASSES else 9, "2026-11-30T13:00:00.000000", extra=extra or {})
        path = self.root / "labels" / f"{name or digest(image)}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as handle:
            handle.write(line.as_line() + "\n")
        return path

    def assess(self, target: float = 0.99, since: datetime | None = None):
        bucket = FolderBucket(self.root)
        return assess(load(bucket, since=since), CLASSES, target, now=NOW, since=since, holds=bucket.holds)


@pytest.fixture
def mirror(tmp_path) -> Mirror:
    return Mirror(tmp_path / "bucket")


def test_a_model_confidently_wrong_on_motorcycles_is_degraded_and_the_class_is_named(mirror):
    for index in range(20):
        mirror.decide(f"bike-{index}", "bicycle", audit=True)
        mirror.label(f"bike-{index}", "bicycle")
        mirror.decide(f"moto-{index}", "bicycle", audit=True)  # a motorcycle read as a bicycle at 0.99
        mirror.label(f"moto-{index}", "motorcycle")

    report = mirror.assess().as_dict()

    assert (report["verdict"], report["exit_status"], report["worst_class"]) == ("degraded", 1, "bicycle")
    assert (report["audited"], report["precision"]) == (40, 0.5)
    assert report["precision_interval"] == [round(x, 4) for x in wilson_interval(20, 40)]
    assert report["classes"]["bicycle"]["audited"] == 40 and report["classes"]["motorcycle"]["audited"] == 0
    assert report["most_misread"] == {"class": "motorcycle", "read_as": "bicycle", "count": 20}
    assert report["reason"] == ("degraded: precision 0.500 [0.352, 0.648] on 40 audited decisions is below the target "
                                "0.99; worst class: bicycle (0.500 on 40 audited); motorcycle read as bicycle 20 times")


def test_too_few_audits_say_how_many_more_and_enough_clean_ones_are_ok(mirror):
    for index in range(34):
        mirror.decide(f"img-{index}", CLASSES[index % 2], audit=True)
        mirror.label(f"img-{index}", CLASSES[index % 2])
    few = mirror.assess(target=0.9).as_dict()
    assert (few["verdict"], few["exit_status"], few["audits_needed"], few["more_audits_needed"]) == (
        "too few audits", 2, 35, 1)
    assert few["reason"] == ("too few audits to say: 34 audited decisions with a label; 1 more needed (35 for a "
                             "target of 0.9)")
    mirror.decide("img-34", "bicycle", audit=True)
    mirror.label("img-34", "bicycle")
    ok = mirror.assess(target=0.9).as_dict()
    assert (ok["verdict"], ok["exit_status"], ok["precision"], ok["more_audits_needed"]) == ("ok", 0, 1.0, None)
    assert mirror.assess(target=0.99).as_dict()["more_audits_needed"] == 381 - 35


def test_review_rate_agreement_and_misrouted_share_are_estimated_from_the_audit_rate(mirror):
    """2 audits drawn at 0.5 stand for 4 confident decisions; 4 low-confidence ones: half were sent to review."""
    mirror.decide("a", "bicycle", audit=True, rate=0.5)
    mirror.label("a", "bicycle")
    mirror.decide("b", "motorcycle", audit=True, rate=0.5)
    mirror.label("b", "bicycle")  # wrong
    for image, predicted, truth in (("c", "bicycle", "bicycle"), ("d", "bicycle", "motorcycle"),
                                    ("e", "motorcycle", None), ("f", "motorcycle", None)):
        mirror.decide(image, predicted, audit=False)
        if truth:
            mirror.label(image, truth, extra={"review": {"model-label": predicted}})

    report = mirror.assess().as_dict()

    assert (report["review_rate"], report["reviewer_agreement"], report["low_confidence_labelled"]) == (0.5, 0.5, 2)
    assert report["misrouted_share"] == 0.25  # (1 - 0.5 precision) x (1 - 0.5 review rate)
    low, high = wilson_interval(1, 2)
    assert report["misrouted_interval"] == [round((1 - high) * 0.5, 6), round((1 - low) * 0.5, 6)]
    assert report["classes"]["motorcycle"] | {} == {**report["classes"]["motorcycle"], "audited": 1, "precision": 0.0,
                                                    "review_rate": 0.5, "misrouted_share": 0.25}
    assert report["decisions"] == {"records": 6, "audits": 2, "low_confidence": 4, "audits_labelled": 2,
                                   "audits_unlabelled": 0, "audits_conflicting": 0, "audits_label_not_blind": 0,
                                   "low_confidence_labelled": 2,
                                   "estimated_confident_decisions": 4}


def test_since_judges_only_the_decisions_recorded_from_then_on(mirror):
    mirror.decide("old", "bicycle", audit=True, hour=8)
    mirror.label("old", "motorcycle")
    mirror.decide("new", "bicycle", audit=True, hour=11)
    mirror.label("new", "bicycle")
    assert mirror.assess().as_dict()["audited"] == 2
    report = mirror.assess(since=datetime(2026, 11, 30, 10, 0, tzinfo=UTC)).as_dict()
    assert (report["audited"], report["precision"], report["since"]) == (1, 1.0, "2026-11-30T10:00:00+00:00")


def test_a_label_is_for_an_image_every_decision_on_it_is_judged_and_an_unlabelled_audit_waits(mirror):
    mirror.decide("same", "bicycle", audit=True)
    mirror.decide("same", "bicycle", audit=True)  # a rerun: another execution, the same image
    mirror.label("same", "bicycle")
    mirror.decide("waiting", "bicycle", audit=True, hour=9)

    report = mirror.assess().as_dict()

    assert (report["audited"], report["correct"]) == (2, 2)
    assert report["backlog"] == {"unlabelled_audits": 1, "oldest_unlabelled_audit": "2026-11-30T09:00:03.000Z",
                                 "oldest_unlabelled_audit_hours": 3.0}


def test_older_labels_named_by_execution_and_ground_truth_manifests_join_by_record_and_source_ref(mirror):
    legacy = mirror.decide("legacy", "bicycle", audit=True, hashed=False)
    mirror.label("legacy", "motorcycle", name=legacy)  # labels/<execution>.jsonl from before content hashes
    mirror.decide("from-a-job", "motorcycle", audit=True)
    mirror.label("from-a-job", "motorcycle", name="ground-truth-job-output")  # a Ground Truth job's manifest

    report = mirror.assess().as_dict()

    assert (report["audited"], report["correct"]) == (2, 1)
    assert report["confusion"] == [{"class": "motorcycle", "read_as": "bicycle", "count": 1}]


def test_bad_input_is_counted_and_named_and_nothing_is_lost(mirror):
    mirror.decide("good", "bicycle", audit=True)
    mirror.label("good", "bicycle")
    mirror.decide("twice", "bicycle", audit=True)
    mirror.label("twice", "bicycle")
    mirror.label("twice", "bicycle", name="copy-of-twice")  # the same label again: a duplicate
    mirror.decide("disputed", "bicycle", audit=True)
    mirror.label("disputed", "bicycle")
    mirror.label("disputed", "motorcycle", name="second-reviewer")  # two reviewers disagree: a conflict
    mirror.label("nowhere", "bicycle")  # an image the bucket does not hold
    (mirror.root / "incoming" / "never-decided.png").write_bytes(b"an image")
    mirror.label("never-decided", "motorcycle", name="stray")  # held, but no decision on it
    mirror.decide("tractor", "bicycle", audit=True)
    mirror.label("tractor", "tractor")  # not a class
    (mirror.root / "labels" / "notes.jsonl").write_text("image,label\nincoming/x.png,bicycle\n")  # not Ground Truth
    (mirror.root / "labels" / "readme.txt").write_text("how we label")
    (mirror.root / "audit" / "exec-9999.json").write_text("{cut short")
    (mirror.root / "review" / "sub").mkdir(parents=True)
    (mirror.root / "review" / "sub" / "x.json").write_text("{}")

    report = mirror.assess().as_dict()

    assert report["problems"] == {
        "malformed_records": 1, "unexpected_keys": 1, "malformed_labels": 3, "unknown_class_labels": 1,
        "labels_for_images_not_in_bucket": 1, "labels_without_decision": 1, "conflicting_labels": 1,
        "duplicate_labels": 1, "records_not_read": 0, "labels_outside_window": 0}
    assert report["bad_inputs"] == 9  # every problem but the conflict
    examples = report["problem_examples"]
    assert [e["where"] for e in examples["malformed_labels"]] == ["labels/notes.jsonl:1", "labels/notes.jsonl:2",
                                                                  "labels/readme.txt"]
    assert examples["malformed_records"][0] == {"where": "audit/exec-9999.json",
                                                "detail": examples["malformed_records"][0]["detail"]}
    assert examples["malformed_records"][0]["detail"].startswith("not JSON")
    assert examples["conflicting_labels"][0]["detail"].startswith("labelled bicycle (labels/")
    assert "motorcycle (labels/second-reviewer.jsonl:1): left out" in examples["conflicting_labels"][0]["detail"]
    assert examples["labels_for_images_not_in_bucket"][0]["detail"] == (
        "s3://scones-offline/incoming/nowhere.png: the bucket does not hold this image")
    assert examples["labels_without_decision"][0]["where"] == "labels/stray.jsonl:1"
    # every audit is accounted for: judged, conflicting, or waiting for a usable label
    assert report["decisions"]["audits"] == 4
    assert (report["decisions"]["audits_labelled"], report["decisions"]["audits_conflicting"],
            report["decisions"]["audits_unlabelled"]) == (2, 1, 1)
    assert (report["audited"], report["correct"]) == (2, 2)


def test_an_empty_bucket_is_too_few_audits_and_says_it_is_empty(tmp_path):
    (tmp_path / "bucket").mkdir()
    report = Mirror(tmp_path / "bucket").assess().as_dict()
    assert (report["verdict"], report["exit_status"], report["audited"], report["precision"]) == (
        "too few audits", 2, 0, None)
    assert report["reason"] == (f"too few audits to say: 0 audited decisions with a label ({tmp_path / 'bucket'} holds "
                                "no review/ or audit/ records); 381 more needed (381 for a target of 0.99)")
    assert all(count == 0 for count in report["problems"].values())
    assert not math.isnan(report["target_precision"])


def one_class_degraded(mirror: Mirror) -> Mirror:
    """392 right bicycles and 8 motorcycle decisions of which 4 are wrong: overall 0.99 [0.9746, 0.9961] is consistent
    with 0.99, but motorcycle 0.5 [0.215, 0.785] is far below it."""
    for index in range(392):
        mirror.decide(f"bike-{index}", "bicycle", audit=True)
        mirror.label(f"bike-{index}", "bicycle")
    for index in range(8):
        mirror.decide(f"moto-{index}", "motorcycle", audit=True)
        mirror.label(f"moto-{index}", "motorcycle" if index % 2 else "bicycle")
    return mirror


def test_one_class_degraded_under_a_good_overall_figure_is_degraded_and_named(mirror):
    one_class_degraded(mirror)

    report = mirror.assess().as_dict()

    assert (report["precision"], report["precision_interval"]) == (0.99, [0.9746, 0.9961])
    assert report["classes"]["motorcycle"]["precision_interval"] == [0.2152, 0.7848]
    assert (report["verdict"], report["exit_status"], report["worst_class"]) == ("degraded", 1, "motorcycle")
    assert report["classes_below_target"] == ["motorcycle"]
    assert report["reason"] == ("degraded: motorcycle's precision 0.500 [0.215, 0.785] on 8 audited decisions is "
                                "below the target 0.99 (overall 0.990 [0.975, 0.996] on 400); bicycle read as "
                                "motorcycle 4 times")


def test_a_single_wrong_audit_of_a_class_with_few_audits_proves_nothing_by_itself(mirror):
    """At a precision of 0.99 one wrong answer among 8 audits happens 7.7% of the time: a class needs two wrong
    audits (and its upper bound below the target) to turn the verdict on its own; one is still counted overall."""
    for index in range(400):
        mirror.decide(f"bike-{index}", "bicycle", audit=True)
        mirror.label(f"bike-{index}", "bicycle")
    for index in range(8):
        mirror.decide(f"moto-{index}", "motorcycle", audit=True)
        mirror.label(f"moto-{index}", "bicycle" if index == 0 else "motorcycle")

    report = mirror.assess().as_dict()

    assert report["classes"]["motorcycle"]["precision_interval"][1] < 0.99  # Wilson alone would call it degraded
    assert (report["verdict"], report["classes_below_target"], report["worst_class"]) == ("ok", [], None)
    assert report["classes_unproven"] == ["motorcycle"]  # 8 clean audits could not show 0.99 either
    mirror.decide("moto-8", "motorcycle", audit=True)
    mirror.label("moto-8", "bicycle")  # a second wrong one: 7 of 9
    again = mirror.assess().as_dict()
    assert (again["verdict"], again["worst_class"], again["classes_below_target"]) == (
        "degraded", "motorcycle", ["motorcycle"])


def test_labels_that_judge_nothing_in_the_window_are_counted_by_name(mirror):
    mirror.decide("old", "bicycle", audit=True, hour=8)
    mirror.label("old", "motorcycle")
    mirror.decide("new", "bicycle", audit=True, hour=11)
    mirror.label("new", "bicycle")

    report = mirror.assess(since=datetime(2026, 11, 30, 10, 0, tzinfo=UTC)).as_dict()

    assert report["audited"] == 1
    assert report["problems"]["labels_outside_window"] == 1
    assert report["problem_examples"]["labels_outside_window"] == [
        {"where": f"labels/{digest('old')}.jsonl:1", "detail": "s3://scones-offline/incoming/old.png: no decision on "
                                                               "this image since 2026-11-30T10:00:00+00:00"}]
    assert report["bad_inputs"] == 0  # not bad input: the label judges a decision older than the window


def test_a_label_whose_class_index_disagrees_with_its_class_name_is_malformed(mirror):
    mirror.decide("a", "bicycle", audit=True)
    path = mirror.label("a", "bicycle")
    line = json.loads(path.read_text())
    line["vehicle-class"] = 1  # the index says motorcycle, the name bicycle
    path.write_text(json.dumps(line) + "\n")

    report = mirror.assess().as_dict()

    assert (report["audited"], report["problems"]["malformed_labels"]) == (0, 1)
    assert report["problem_examples"]["malformed_labels"] == [
        {"where": f"labels/{digest('a')}.jsonl:1",
         "detail": "class index 1 is motorcycle, but the class-name is 'bicycle' (training reads the index)"}]


def test_an_audit_is_judged_only_by_a_blind_label(mirror):
    """The same image sent to review earlier (its label written with the model's answer on screen) and audited now:
    that label does not judge the audit, which is counted as such, and is not a backlog either."""
    mirror.decide("seen", "bicycle", audit=False)
    mirror.label("seen", "bicycle", extra={"review": {"id": "exec-0001", "audit": False, "model-label": "bicycle"}})
    mirror.decide("seen", "bicycle", audit=True)
    mirror.decide("blind", "bicycle", audit=True)
    mirror.label("blind", "motorcycle", extra={"review": {"id": "exec-0003", "audit": True}})
    mirror.decide("job", "bicycle", audit=True)
    mirror.label("job", "bicycle")  # a Ground Truth job's line: no model answer shown

    report = mirror.assess().as_dict()

    assert (report["audited"], report["correct"]) == (2, 1)
    assert report["decisions"]["audits_label_not_blind"] == 1
    assert report["backlog"]["unlabelled_audits"] == 0
    assert report["low_confidence_labelled"] == 1  # the seen label still judges the low-confidence decision


@pytest.fixture
def s3_bucket():
    import boto3
    from moto import mock_aws

    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="data")
        yield s3


def test_a_missing_object_reads_as_file_not_found_on_s3_as_in_a_folder(s3_bucket, tmp_path):
    """An undo between the listing and the read removes a label: both readers say FileNotFoundError (load relies on
    it); a refusal is not an absence."""
    from botocore.exceptions import ClientError
    from botocore.stub import Stubber

    from modelquality.bucket import S3Bucket

    with pytest.raises(FileNotFoundError):
        S3Bucket(s3_bucket, "data").read("labels/gone.jsonl")
    with pytest.raises(FileNotFoundError):
        FolderBucket(tmp_path).read("labels/gone.jsonl")
    with Stubber(s3_bucket) as stub:
        stub.add_client_error("get_object", "AccessDenied", http_status_code=403)
        with pytest.raises(ClientError, match="AccessDenied"):
            S3Bucket(s3_bucket, "data").read("labels/secret.jsonl")


def test_console_folder_markers_are_not_records_nor_labels(s3_bucket):
    """The S3 console's "Create folder" writes an empty `review/`, `audit/` or `labels/` key: never bad input."""
    from modelquality.bucket import S3Bucket

    for marker in ("review/", "audit/", "labels/", "labels/2026/"):
        s3_bucket.put_object(Bucket="data", Key=marker, Body=b"")
    inputs = load(S3Bucket(s3_bucket, "data"))
    assert (inputs.problems, inputs.label_files) == ([], 0)
