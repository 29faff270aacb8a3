"""The monitoring report as a person sees it, in headless Chromium: the headline verdict, the variants side by side,
the drift table, every plot visible, no horizontal overflow at laptop and narrow widths."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from driftcheck.baseline import Baseline
from monitoring.baseline import build_baseline
from monitoring.report import image_identity, write_report
from testkit.browser import has_horizontal_overflow, page_errors
from testkit.capture import CLASSES, START, images, probabilities, write_capture

THRESHOLD = 0.93  # the synthetic confidences below are drawn around it, so the reports are given it
TARGET_PRECISION = 0.99  # the variants' labels are flipped to fall short of it
REVIEW_RATE_LIMIT = 0.3  # the variants send about a third to review (the challenger's soft answers), the others ~1%
CONFIDENT = 60.0  # Beta(60, 1) top confidences: about 1% below THRESHOLD


@pytest.fixture(scope="module")
def baseline() -> Baseline:
    return Baseline.from_dict(build_baseline(images(400, 20), probabilities(300, 20, sharpness=CONFIDENT), CLASSES))


@pytest.fixture(scope="module")
def reports(tmp_path_factory, baseline) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("reports")
    write_capture(root / "healthy", images(150, 21), probabilities(150, 21, sharpness=CONFIDENT))
    write_capture(root / "drifted", images(150, 22, brightness=0.8), probabilities(150, 22, sharpness=CONFIDENT))
    champion = (images(120, 24), probabilities(120, 24, sharpness=CONFIDENT))
    challenger = (images(80, 25), probabilities(80, 25, sharpness=4.0, motorcycle_share=0.8))
    write_capture(root / "variants", *champion, variant="champion")
    write_capture(root / "variants", *challenger, variant="challenger", start=START + timedelta(milliseconds=500))
    labels = {image_identity(image): CLASSES[int(np.argmax(p))] for image, p in zip(*champion, strict=True)}
    labels |= {image_identity(image): CLASSES[int(np.argmax(p))] if i % 4
               else CLASSES[(int(np.argmax(p)) + 1) % len(CLASSES)]  # another class than the answer
               for i, (image, p) in enumerate(zip(*challenger, strict=True))}
    return {
        "healthy": write_report(root / "healthy", root / "healthy-report", class_names=CLASSES, baseline=baseline,
                               threshold=THRESHOLD, review_rate_limit=REVIEW_RATE_LIMIT),
        "drifted": write_report(root / "drifted", root / "drifted-report", class_names=CLASSES, baseline=baseline,
                               threshold=THRESHOLD, review_rate_limit=REVIEW_RATE_LIMIT),
        "variants": write_report(root / "variants", root / "variants-report", class_names=CLASSES, labels=labels,
                                 threshold=THRESHOLD, target_precision=TARGET_PRECISION,
                                 review_rate_limit=REVIEW_RATE_LIMIT),
    }


def summary_of(page: Path) -> dict:
    return json.loads(page.with_name("summary.json").read_text())


def test_the_verdict_is_decided_by_drift_then_review_share_and_precision(reports):
    healthy, drifted, unsure = (summary_of(reports[name])["verdict"] for name in ("healthy", "drifted", "variants"))
    assert healthy["state"] == "healthy"
    assert healthy["reasons"][0] == ("no feature drifted over 150 inferences (a feature drifts when PSI ≥ 0.2 and "
                                     "p < 0.01)")
    assert drifted["state"] == "drift"
    assert [reason.split(" drifted:")[0] for reason in drifted["reasons"]] == [
        "Brightness", "Red channel mean", "Green channel mean", "Blue channel mean"]
    assert unsure["state"] == "degraded"
    summary = summary_of(reports["variants"])
    assert unsure["reasons"] == [
        f"{summary['below_threshold']:.1%} of inferences fell below the {THRESHOLD} confidence threshold (sent to "
        f"review); the limit is {REVIEW_RATE_LIMIT:.0%}, the template's LowConfidenceAlarmRate",
        f"{1 - summary['accuracy_of_passed']:.1%} of automatic decisions were wrong (accuracy of passed inferences "
        f"{summary['accuracy_of_passed']:.1%}, of {summary['labelled_passed']} labelled); the target precision is "
        f"{TARGET_PRECISION:.0%}, at most {1 - TARGET_PRECISION:.0%} wrong"]
    assert summary["below_threshold"] > REVIEW_RATE_LIMIT and summary["accuracy_of_passed"] < TARGET_PRECISION
    recommended = summary["recommended_threshold"]
    assert unsure["recommendation"] == (
        f"recommended threshold {recommended['threshold']} (the stack's is {THRESHOLD}): on the "
        f"{summary['labelled']} labelled inferences {recommended['coverage']:.1%} would be decided automatically, "
        f"{recommended['precision']:.1%} of them right (target precision {TARGET_PRECISION:.0%})")
    assert healthy["recommendation"] is None  # no labels: nothing to recommend from
    assert unsure["notes"] == ["No baseline given: drift was not checked (monitoring report --baseline, or "
                               "--model-dir)."]


def test_variants_are_compared_side_by_side(reports):
    summary = summary_of(reports["variants"])
    assert summary["variants"] == ["challenger", "champion"]
    champion, challenger = summary["per_variant"]["champion"], summary["per_variant"]["challenger"]
    assert (champion["inferences"], challenger["inferences"]) == (120, 80)
    assert (champion["accuracy"], challenger["accuracy"]) == (1.0, 0.75)  # every 4th challenger label is flipped
    assert champion["below_threshold"] < 0.05 < 0.5 < challenger["below_threshold"]
    assert challenger["class_mix"]["motorcycle"] > 0.65 > champion["class_mix"]["motorcycle"]
    assert summary["labelled"] == 200 and summary["accuracy"] == 0.9
    page = reports["variants"].read_text()
    assert "Production variants side by side" in page and page.count("confidence_by_variant") == 0
    assert (reports["variants"].parent / "confidence_by_variant.png").is_file()


def test_count_and_index_axes_have_integer_ticks_even_for_three_inferences(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    from monitoring.report import Traffic, plot_confidence_by_class, plot_confidence_over_time

    traffic = Traffic(confidence=np.array([0.95, 0.97, 0.6]), predicted=np.array([0, 1, 0]),
                      variants=["AllTraffic"] * 3, images=np.zeros((3, 32, 32, 3), np.uint8))
    ticks = {}
    original = plt.Figure.savefig

    def spy(figure, path, *args, **kwargs):
        axis = figure.axes[0]
        ticks[Path(path).stem] = (axis.get_xticks(), axis.get_yticks())
        return original(figure, path, *args, **kwargs)

    monkeypatch.setattr(plt.Figure, "savefig", spy)
    plot_confidence_by_class(traffic, CLASSES, 0.93, tmp_path / "counts.png")
    plot_confidence_over_time(traffic, 0.93, tmp_path / "over_time.png")
    for axis_ticks in (ticks["counts"][1], ticks["over_time"][0]):  # counts, and the inference index
        assert len(axis_ticks) >= 2 and np.all(axis_ticks == np.round(axis_ticks)), axis_ticks
    assert Image.open(tmp_path / "counts.png").size == (900, 400)


PLOTS_VISIBLE = """() => Array.from(document.images).map(img => {
  const box = img.getBoundingClientRect();
  return {alt: img.alt, complete: img.complete, natural: img.naturalWidth, width: box.width, height: box.height,
          left: box.left, right: box.right};
})"""


@pytest.mark.parametrize("width", [1280, 800])
@pytest.mark.parametrize("name,state", [("healthy", "healthy"), ("drifted", "drift"), ("variants", "degraded")])
def test_the_page_fits_the_viewport_and_shows_every_plot(browser, reports, width, name, state):
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    errors = page_errors(page)
    page.goto(reports[name].as_uri())
    assert page.get_attribute("#verdict", "data-verdict") == state
    assert page.inner_text("#verdict h2") == state.capitalize()
    assert page.is_visible("#verdict li")
    assert not has_horizontal_overflow(page)
    assert page.eval_on_selector_all(".scroll", "boxes => boxes.filter(b => b.scrollWidth > b.clientWidth).length") == 0
    plots = page.evaluate(PLOTS_VISIBLE)
    assert len(plots) == (7 if name == "variants" else 5)
    for plot in plots:
        assert plot["complete"] and plot["natural"] > 0 and plot["width"] > 0 and plot["height"] > 0, plot
        assert 0 <= plot["left"] and plot["right"] <= width, plot
    if width == 1280:
        assert len({round(plot["left"]) for plot in plots}) == 2  # two columns of plots on a laptop
    else:
        assert len({round(plot["left"]) for plot in plots}) == 1
    assert errors == []
    context.close()


def test_the_drift_table_marks_the_drifted_rows(browser, reports):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(reports["drifted"].as_uri())
    drifted = page.eval_on_selector_all("tr.drifted th", "cells => cells.map(c => c.textContent)")
    assert drifted == ["Brightness", "Red channel mean", "Green channel mean", "Blue channel mean"]
    summary = page.eval_on_selector_all("table", "tables => tables[0].innerText")
    assert f"Sent to review (top confidence below {THRESHOLD})" in summary and "_" not in summary.split("\n")[0]
    context.close()


def test_live_precision_is_shown_beside_drift_over_time(browser, tmp_path, baseline):
    from monitoring.quality import assess_source
    from tests.unit.test_model_quality import Mirror

    write_capture(tmp_path / "capture", images(150, 21), probabilities(150, 21, sharpness=CONFIDENT))
    mirror = Mirror(tmp_path / "bucket")
    for hour, wrong in ((9, 0), (10, 1), (11, 3)):  # a model going wrong, hour by hour
        for index in range(5):
            name = f"img-{hour}-{index}"
            mirror.decide(name, "bicycle", audit=True, hour=hour)
            mirror.label(name, "motorcycle" if index < wrong else "bicycle")
    live = assess_source(str(mirror.root), CLASSES, 0.99)
    page_path = write_report(tmp_path / "capture", tmp_path / "report", class_names=CLASSES, baseline=baseline,
                             live_quality=live)

    over_time = summary_of(page_path)["live_quality"]["over_time"]
    assert [(point["start"], point["audited"], point["precision"]) for point in over_time] == [
        ("2026-11-30T09:00:00+00:00", 5, 1.0), ("2026-11-30T10:00:00+00:00", 5, 0.8),
        ("2026-11-30T11:00:00+00:00", 5, 0.4)]
    assert summary_of(page_path)["live_quality"]["verdict"] == "degraded"
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors = page_errors(page)
    page.goto(page_path.as_uri())
    headings = page.eval_on_selector_all("h2", "hs => hs.map(h => h.textContent)")
    assert headings.index("Live precision (labelled audits)") == headings.index(
        "Drift against the training baseline") + 1
    assert page.get_attribute("#live-quality", "data-verdict") == "degraded"
    assert page.inner_text("#live-quality") == live.reason()
    plot = next(p for p in page.evaluate(PLOTS_VISIBLE) if p["alt"].startswith("Live precision"))
    assert plot["complete"] and plot["natural"] > 0 and plot["width"] > 0
    assert not has_horizontal_overflow(page) and errors == []
    context.close()
