"""Values have one home: with template.yaml's ClassNames set to three names and ConfidenceThreshold changed, and
nothing else touched, the whole offline workflow runs on a folder of those classes (dataset, training, the state
machine, the report, the scheduled drift check, the closed loop and its gate), the demo's stand-in endpoint answers
one probability per class, the review page offers a key per class, and the threshold reaches the filter function,
the review records, the report and the gate.

Each check runs in a copy of the source tree whose template is changed, as a developer would change it.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from testkit.images import labelled_folder
from tests.support import HANG_GUARD_S, copy_environment, repo_copy

CLASSES = ["bicycle", "motorcycle", "tractor"]
THRESHOLD = "0.99"  # not the default: each place that uses it must read it from the template


@pytest.fixture(scope="module")
def three_classes(tmp_path_factory):
    root = tmp_path_factory.mktemp("three-classes")
    repo = repo_copy(root / "repo", {"ClassNames": ",".join(CLASSES), "ConfidenceThreshold": THRESHOLD})
    labelled_folder(root / "photos", per_class=90, classes=CLASSES)  # about 55 test images: enough for a drift verdict
    environment = copy_environment(repo, root / "home")
    run = subprocess.run([sys.executable, "-m", "workflow", "run", "--source", "../photos", "--members", "1",
                          "--epochs", "2", "--loop-demo-labels", "--json"], cwd=repo, env=environment,
                         capture_output=True, text=True, timeout=600)
    return repo, environment, run


def test_the_whole_offline_workflow_runs_with_three_classes(three_classes):
    repo, _, run = three_classes
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    out = repo / "out"
    assert json.loads((out / "dataset" / "dataset.json").read_text())["class_names"] == CLASSES
    assert json.loads((out / "model" / "metadata.json").read_text())["class_names"] == CLASSES
    assert summary["executions"] >= 50 and summary["failed"] == summary["aborted"] == 0
    assert summary["succeeded"] + summary["review"] == summary["executions"]
    assert summary["review"] > 0  # what the loop retrains on

    records = [json.loads(path.read_text()) for path in sorted((out / "bucket" / "review").glob("*.json"))]
    assert len(records) == summary["review"]
    assert all(len(record["inferences"]) == 3 and record["prediction"]["label"] in CLASSES for record in records)

    report = json.loads((out / "report" / "summary.json").read_text())
    assert sorted(report["class_mix"]) == CLASSES and report["inferences"] == summary["executions"]

    drift = summary["drift_check"]  # the template's CheckDriftFunction, with the stack's three ClassNames
    assert drift["verdict"] in ("no drift", "drift") and drift["samples"] == summary["executions"]
    (mix,) = [check for check in drift["checks"] if check["feature"] == "class_mix"]
    assert all(name in mix["baseline"] for name in CLASSES)

    loop = summary["loop"]
    gate = json.loads((out / "loop" / "gate.json").read_text())
    assert loop["decision"] == gate["verdict"] in ("promote", "hold") and loop["used_for_training"] > 0
    assert json.loads((out / "loop" / "model" / "metadata.json").read_text())["class_names"] == CLASSES


def test_a_changed_threshold_reaches_the_filter_the_review_records_the_report_and_the_gate(three_classes):
    repo, _, run = three_classes
    out = repo / "out"
    records = [json.loads(path.read_text()) for path in sorted((out / "bucket" / "review").glob("*.json"))]
    assert records
    for record in records:  # written by the filter function, with the THRESHOLD the template gave it
        assert record["error"]["errorMessage"].endswith(f"is below the threshold {THRESHOLD}")
        assert record["prediction"]["confidence"] < float(THRESHOLD)
    assert json.loads((out / "report" / "summary.json").read_text())["threshold"] == float(THRESHOLD)
    assert json.loads((out / "loop" / "gate.json").read_text())["threshold"] == float(THRESHOLD)


def test_the_demo_answers_one_probability_per_configured_class(three_classes, tmp_path):
    repo, environment, _ = three_classes
    demo = subprocess.run([sys.executable, "-m", "workflow", "demo", "--out", str(tmp_path)], cwd=repo,
                          env=environment, capture_output=True, text=True, timeout=300)
    assert demo.returncode == 0, demo.stderr
    flat = " ".join(demo.stdout.split())
    assert "SUCCEEDED" in flat and "LowConfidenceError" in flat
    (inferences,) = re.findall(r"review record s3://\S+: \S+ (\[[^\]]*\])", flat)
    assert len(json.loads(inferences)) == 3


def test_the_review_page_offers_a_key_per_class(three_classes, browser):
    repo, environment, _ = three_classes
    server = subprocess.Popen([sys.executable, "-m", "review", "serve", "--source", "out/bucket", "--port", "0"],
                              cwd=repo, env=environment, stderr=subprocess.PIPE, text=True)
    try:
        assert server.stderr is not None
        url = next(match.group(0) for line in server.stderr
                   if (match := re.search(r"http://127\.0\.0\.1:\d+/", line)))
        page = browser.new_page()
        page.goto(url)
        page.wait_for_function("document.querySelectorAll('button.class').length === 3")
        assert [b.text_content() for b in page.locator("button.class").all()] == [
            "1Bbicycle", "2Mmotorcycle", "3Ttractor"]
        assert page.text_content("h1") == "Bicycle, motorcycle or tractor?"
        shown = page.text_content("#key")
        page.keyboard.press("3")
        page.wait_for_function(f"document.getElementById('key').textContent !== {json.dumps(shown)}")
        page.close()
    finally:
        server.terminate()
        server.wait(timeout=HANG_GUARD_S)
    (line,) = [json.loads(path.read_text()) for path in (repo / "out" / "bucket" / "labels").glob("*.jsonl")]
    assert (line["vehicle-class"], line["vehicle-class-metadata"]["class-name"]) == (2, "tractor")
