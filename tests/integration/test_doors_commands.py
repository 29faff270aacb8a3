"""`classify-prefix --offline` and `serve-api` over a trained model: the real endpoint, staging, summaries."""

from __future__ import annotations

import csv
import json
import shutil
from collections import Counter

import pytest
from click.testing import CliRunner

from common.artefacts import model_class_names
from common.settings import confidence_threshold
from testkit.api_client import ApiClient
from testkit.images import png_bytes
from tests.support import run_main
from workflow.cli import cli, main
from workflow.offline_doors import serve_api


@pytest.fixture
def folder(tmp_path):
    images = tmp_path / "to-classify"
    (images / "more").mkdir(parents=True)
    for i in range(3):
        (images / f"photo_{i}.png").write_bytes(png_bytes(seed=70 + i))
    (images / "more" / "photo_3.png").write_bytes(png_bytes(120, 80, seed=73))
    (images / "readme.txt").write_text("not an image")
    (images / ".DS_Store").write_bytes(b"hidden files are not staged")
    return images


def test_classify_prefix_offline_accounts_for_every_file_and_writes_the_summary(tiny_model, folder, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["classify-prefix", "--offline", "--model-dir", str(tiny_model),
                                      "--prefix", str(folder), "--out", str(out), "--max-concurrency", "4"])

    assert result.exit_code == 1, result.output  # readme.txt failed: not review, an unexpected failure
    summary = json.loads((out / "batch_summary.json").read_text())
    files = ("photo_0.png", "photo_1.png", "photo_2.png", "more/photo_3.png", "readme.txt")
    keys = {f"batch/to-classify/{name}" for name in files}
    grouped = [*summary["classified"]["keys"], *summary["review"]["keys"], *summary["failed"]["keys"]]
    assert sorted(grouped) == sorted(keys) and summary["objects"] == 5
    assert summary["failed"]["keys"] == {"batch/to-classify/readme.txt": "NotAnImageError"}
    assert summary["events"] == {"VehicleClassified": summary["classified"]["count"],
                                 "VehicleNeedsReview": summary["review"]["count"]}
    assert "failed batch/to-classify/readme.txt: NotAnImageError" in result.output
    failed = "FAILED: 1 of 5 objects failed unexpectedly (NotAnImageError 1)"
    assert (summary["unexpected"], summary["verdict"]) == (1, failed) and failed in result.output.splitlines()
    assert list((out / "data_capture").rglob("*.jsonl"))  # the endpoint captured the batch's requests
    # the bucket is left on disk, as `workflow run` leaves it: the review page finds the batch's review records
    staged = sorted(p.relative_to(out / "bucket").as_posix() for p in (out / "bucket" / "batch").rglob("*"))
    assert staged == sorted(["batch/to-classify", "batch/to-classify/more", *keys])
    records = sorted((out / "bucket" / "review").glob("*.json"))
    assert len(records) == summary["review"]["count"] == summary["events"]["VehicleNeedsReview"]
    assert summary["bucket_dir"] == str(out / "bucket")
    # which file got which label: one row per object, named as the user's file (its path under --prefix), next to
    # the summary, its path printed
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [list(row) for row in rows[:1]] == [["key", "label", "confidence", "outcome", "error"]]
    assert sorted(row["key"] for row in rows) == sorted(files)
    by_outcome = {name: sorted(f"batch/to-classify/{row['key']}" for row in rows if row["outcome"] == name)
                  for name in ("classified", "review", "failed")}
    assert by_outcome == {"classified": summary["classified"]["keys"], "review": summary["review"]["keys"],
                          "failed": list(summary["failed"]["keys"])}
    for row in rows:
        if row["outcome"] == "classified":
            assert row["label"] in model_class_names(tiny_model) and float(row["confidence"]) >= confidence_threshold()
            assert row["error"] == ""
    assert Counter(row["label"] for row in rows if row["outcome"] == "classified") == Counter(
        summary["classified"]["labels"])
    assert {row["key"]: row["error"] for row in rows if row["outcome"] == "failed"} == {"readme.txt": "NotAnImageError"}
    assert summary["results_file"] == str(out / "results.csv")
    assert f"results: {out / 'results.csv'} (key,label,confidence,outcome,error" in " ".join(result.output.split())


def test_classify_prefix_offline_serves_out_model_by_default(tiny_model, folder, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copytree(tiny_model, tmp_path / "out" / "model")
    (folder / "readme.txt").unlink()  # images only: nothing fails, exit 0
    result = CliRunner().invoke(cli, ["classify-prefix", "--offline", "--prefix", str(folder), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["objects"] == 4 and summary["results_file"] == "out/batch/results.csv"
    assert (summary["unexpected"], summary["verdict"]) == (0, f"OK: none of the 4 objects failed ("
                                                              f"{summary['classified']['count']} classified, "
                                                              f"{summary['review']['count']} sent to review)")


def test_classify_prefix_offline_without_a_model_says_what_to_do_before_anything_starts(tmp_path, monkeypatch,
                                                                                          capsys):
    monkeypatch.chdir(tmp_path)
    result = run_main(main, ["classify-prefix", "--offline", "--prefix", "."], monkeypatch=monkeypatch, capsys=capsys)
    assert (result.status, result.stdout) == (2, "")
    assert result.stderr_lines == ["ArtefactError: out/model/metadata.json does not exist: train a model with "
                                          "`.venv/bin/python -m data_prep train local`"]
    assert not (tmp_path / "out").exists()


def test_serve_api_answers_signed_requests_over_a_trained_model(tiny_model, tmp_path):
    answers = []

    def ready(running):
        client = ApiClient(running.runtime.api_url)
        answers.append(client.post("/classifications", png_bytes(seed=80), "image/png"))
        answers.append(client.post("/classifications", png_bytes(seed=80), "image/png", signed=False))
        client.close()

    serve_api(tiny_model, tmp_path, 0, ready)

    answered, refused = answers
    assert answered.status in (200, 202)
    # the bucket is left on disk: the uploaded image, and its review record when the answer was 202
    assert len(list((tmp_path / "bucket" / "uploads").iterdir())) == 1
    assert len(list((tmp_path / "bucket").glob("review/*.json"))) == (answered.status == 202)
    assert answered.body["label"] in model_class_names(tiny_model)
    assert abs(sum(answered.body["inferences"]) - 1) < 1e-3
    assert refused.status == 403
