"""Join people's labels with the decisions they judge, and say what they show about the served model.

What is judged (`assess`):
- **precision** of automatic decisions: the audits (confident decisions drawn at AuditRate by the image's content
  hash, labelled blind) with a label, right when the label is the model's; overall and per predicted class, with
  the 95% Wilson interval;
- the **review rate**: low-confidence decisions over all decisions, each audit standing for the 1/AuditRate
  confident decisions it was drawn from (an estimate: the confident ones are not recorded one by one);
- the **agreement of reviewers** with the model's tentative answer on the low-confidence items they labelled;
- the estimated share of drivers **misrouted**: wrong automatic decisions over all decisions, (1 - precision) x
  (1 - review rate).

The verdict on a target precision T: **degraded** when the interval's upper bound is below T, overall or for
one class (the worst class named: the predicted class with the lowest upper bound); **ok** when it is not and
there are at least stats.audits_needed(T) audits overall; **too few audits** otherwise (how many more are needed
is said).

Per class, the evidence can only ever show a shortfall. A class's audits are few (a class the model rarely
predicts gets a share of the audits), and a handful of audits cannot show that a class meets the target: with
every audit right, it takes audits_needed(T) of them (381 at 0.99). So the count that decides "too few" is the
overall one, and a class with fewer audits is listed as unproven (`classes_unproven`), never a reason to withhold
"ok": the target is about all confident decisions, and requiring 381 audits of the rarest class would leave the
check silent for months. Nor can a few audits show a shortfall from one mistake: at a precision of 0.99 one
wrong answer among 8 audits happens 7.7% of the time, and with fewer than 20 audits one wrong answer is enough to
put the Wilson upper bound below 0.99. A class turns the verdict on its own when its upper bound is below T
**and** at least MIN_WRONG_PER_CLASS (2) of its audits are wrong (at 0.99, two wrong among fewer than 20 audits
happens at most 1.5% of the time); its mistakes always count in the overall figure.

Labels are for images: a label joins every decision on the same image (its content hash; the S3 URI for records
written before hashes). A label line is resolved to its image by, in order: its file name when that is a content
hash (`labels/<hash>.jsonl`, the review page's), the `content-sha256` its review attribute carries, the decision
its file name names (older `labels/<execution>.jsonl`), or its `source-ref` (a Ground Truth job's manifest).

An audit is judged only by a blind label: one written without the model's answer on screen (the review page's
audit items, marked `"audit": true`, or a line another tool wrote, such as a Ground Truth job's). A label the
review page wrote for a low-confidence item showed the model's answer; it still judges the low-confidence
decisions on its image, but an audit of the same image is counted as `audits_label_not_blind`, neither judged
nor waiting (the image has its one label).

Bad input is counted and named, never fatal, and nothing is dropped unseen: a record or label line that does not
parse, a label whose class index and class name disagree (training reads the index, this check the name), a
label of an unknown class, a label for an image the bucket does not hold, a label for an image with no
decision, two labels that disagree on one image (a conflict: the image is left out of the judging, listed), the
same label twice (a duplicate: used once, listed).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from modelquality.audit import SHA256_HEX
from modelquality.bucket import Bucket, StoredObject
from modelquality.errors import LabelFormatError, RecordFormatError
from modelquality.groundtruth import GroundTruthLabel, is_label_manifest, parse_ground_truth_line
from modelquality.records import (
    AUDIT,
    AUDIT_PREFIX,
    LABELS_PREFIX,
    REVIEW,
    REVIEW_PREFIX,
    Decision,
    label_name,
    parse_decision,
    record_id,
)
from modelquality.stats import Z_95, audits_needed, wilson_interval

OK, DEGRADED, TOO_FEW = "ok", "degraded", "too few audits"
EXIT_STATUS = {OK: 0, DEGRADED: 1, TOO_FEW: 2}
EXAMPLES = 20  # problems listed by name per kind (all are counted)
Progress = Callable[[int, int | None, str], None]

# The kinds of bad input, as counted and named.
MALFORMED_RECORD = "malformed_records"
UNEXPECTED_KEY = "unexpected_keys"
MALFORMED_LABEL = "malformed_labels"
UNKNOWN_CLASS = "unknown_class_labels"
MISSING_IMAGE = "labels_for_images_not_in_bucket"
NO_DECISION = "labels_without_decision"
CONFLICT = "conflicting_labels"
DUPLICATE = "duplicate_labels"
NOT_READ = "records_not_read"
OUTSIDE_WINDOW = "labels_outside_window"
PROBLEM_KINDS = (MALFORMED_RECORD, UNEXPECTED_KEY, MALFORMED_LABEL, UNKNOWN_CLASS, MISSING_IMAGE, NO_DECISION,
                 CONFLICT, DUPLICATE, NOT_READ, OUTSIDE_WINDOW)
NOT_BAD_INPUT = frozenset({CONFLICT, OUTSIDE_WINDOW})  # counted and named, but people disagreeing or a window
MIN_WRONG_PER_CLASS = 2  # wrong audits a class needs before its interval alone can call the model degraded


@dataclass(frozen=True)
class Problem:
    kind: str
    where: str  # a key, key:line, or an image
    detail: str


@dataclass(frozen=True)
class LabelLine:
    where: str  # labels/<file>:<line>
    file_name: str | None  # labels/<name>.jsonl's name
    label: GroundTruthLabel


@dataclass
class Inputs:
    """What was read from the bucket: the decisions in the window, every label line read, and what did not parse."""

    source: str
    decisions: list[Decision] = field(default_factory=list)
    labels: list[LabelLine] = field(default_factory=list)
    label_files: int = 0
    problems: list[Problem] = field(default_factory=list)
    listed: int = 0  # keys listed under review/, audit/ and labels/


def _window(objects: Sequence[StoredObject], since: datetime | None, limit: int | None) -> tuple[list[StoredObject],
                                                                                                   int]:
    """The objects that may hold decisions of the window (S3's LastModified is never before the decision), the most
    recent first, at most `limit`; and how many were left out for the limit."""
    kept = [o for o in objects if since is None or o.modified is None or o.modified >= since]
    kept.sort(key=lambda o: (o.modified is not None, o.modified or datetime.min, o.key), reverse=True)
    if limit is None or len(kept) <= limit:
        return kept, 0
    return kept[:limit], len(kept) - limit


def load(bucket: Bucket, *, since: datetime | None = None, max_records: int | None = None,
         all_labels: bool = True, progress: Progress | None = None, workers: int = 1) -> Inputs:
    """Read the decision records of the window (review/ and audit/), and the labels (labels/): every label file
    with `all_labels`, else only those that can judge a decision read (a content-hash name among the decisions'
    images, or any other name, which could name any image). Records are read by `workers` threads (S3 answers
    each GetObject in tens of milliseconds: the scheduled check reads thousands); only the window's listing is
    kept in memory."""
    inputs = Inputs(bucket.description)
    for prefix, kind in ((REVIEW_PREFIX, REVIEW), (AUDIT_PREFIX, AUDIT)):
        named = []
        for item in bucket.objects(prefix):
            inputs.listed += 1
            if record_id(item.key, prefix) is None:
                inputs.problems.append(Problem(UNEXPECTED_KEY, item.key, f"not a {prefix}<execution>.json record"))
            elif since is None or item.modified is None or item.modified >= since:
                named.append(item)
        chosen, left_out = _window(named, since, max_records)
        if left_out:
            inputs.problems.append(Problem(NOT_READ, prefix, f"{left_out} older records past the limit of "
                                                             f"{max_records} were not read"))

        def read(item: StoredObject) -> bytes | FileNotFoundError:
            try:
                return bucket.read(item.key)
            except FileNotFoundError as error:
                return error

        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            bodies = pool.map(read, chosen) if workers > 1 else map(read, chosen)
            for done, (item, body) in enumerate(zip(chosen, bodies, strict=True), start=1):
                identifier = record_id(item.key, prefix) or ""
                try:
                    if isinstance(body, FileNotFoundError):
                        raise body
                    decision = parse_decision(identifier, body, kind)
                except (RecordFormatError, FileNotFoundError) as error:
                    inputs.problems.append(Problem(MALFORMED_RECORD, item.key, str(error)))
                    continue
                if since is not None and (decision.time is None or decision.time < since):
                    if decision.time is None:
                        inputs.problems.append(Problem(MALFORMED_RECORD, item.key,
                                                       f"recorded_at {decision.recorded_at!r} is not a time"))
                    continue
                inputs.decisions.append(decision)
                if progress:
                    progress(done, len(chosen), prefix)
    images = {d.content_sha256 for d in inputs.decisions if d.content_sha256}
    for item in bucket.objects(LABELS_PREFIX):
        inputs.listed += 1
        if not is_label_manifest(item.key):
            inputs.problems.append(Problem(MALFORMED_LABEL, item.key, "not a label file (*.jsonl or *.manifest)"))
            continue
        name = label_name(item.key)
        if not all_labels and name is not None and SHA256_HEX.match(name) and name not in images:
            continue
        inputs.label_files += 1
        try:
            text = bucket.read(item.key).decode()
        except UnicodeDecodeError as error:
            inputs.problems.append(Problem(MALFORMED_LABEL, item.key, f"not text ({error.reason})"))
            continue
        except FileNotFoundError:
            continue  # removed (an undo) between the listing and the read
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            where = f"{item.key}:{number}"
            try:
                inputs.labels.append(LabelLine(where, name, parse_ground_truth_line(line, where)))
            except LabelFormatError as error:
                inputs.problems.append(Problem(MALFORMED_LABEL, where, str(error).removeprefix(f"{where}: ")))
    return inputs


@dataclass(frozen=True)
class Proportion:
    """k of n with its Wilson interval (None without any n)."""

    successes: int
    trials: int

    @property
    def value(self) -> float | None:
        return self.successes / self.trials if self.trials else None

    @property
    def interval(self) -> tuple[float, float] | None:
        return wilson_interval(self.successes, self.trials, Z_95) if self.trials else None


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def _interval(interval: tuple[float, float] | None) -> list[float] | None:
    return None if interval is None else [round(interval[0], 4), round(interval[1], 4)]


@dataclass
class Figures:
    """The figures of one slice of decisions (all of them, or those the model gave one class)."""

    precision: Proportion
    agreement: Proportion
    low_confidence: int  # low-confidence decisions
    confident_estimate: float | None  # confident decisions the audits stand for (sum of 1/audit rate)
    all_estimate: float | None  # every decision: low confidence + confident_estimate, over the whole population

    @property
    def review_rate(self) -> float | None:
        if self.confident_estimate is None:
            return None
        total = self.low_confidence + self.confident_estimate
        return self.low_confidence / total if total else None

    def misrouted(self, bound: float | None) -> float | None:
        """Wrong automatic decisions of this slice over all decisions, at a precision of `bound`."""
        if bound is None or self.confident_estimate is None or not self.all_estimate:
            return None
        return (1 - bound) * self.confident_estimate / self.all_estimate

    def as_dict(self) -> dict[str, Any]:
        interval = self.precision.interval
        fewest, most = (self.misrouted(interval[1]), self.misrouted(interval[0])) if interval else (None, None)
        return {
            "audited": self.precision.trials,
            "correct": self.precision.successes,
            "precision": _round(self.precision.value),
            "precision_interval": _interval(interval),
            "review_rate": _round(self.review_rate),
            "low_confidence": self.low_confidence,
            "low_confidence_labelled": self.agreement.trials,
            "reviewer_agreement": _round(self.agreement.value),
            "reviewer_agreement_interval": _interval(self.agreement.interval),
            "misrouted_share": _round(self.misrouted(self.precision.value), 6),
            "misrouted_interval": None if fewest is None or most is None else [round(fewest, 6), round(most, 6)],
        }


@dataclass
class Assessment:
    source: str
    target: float
    since: datetime | None
    now: datetime
    class_names: list[str]
    overall: Figures
    classes: dict[str, Figures]
    confusion: Counter[tuple[str, str]]  # (true, predicted) of wrong audits
    counts: dict[str, int]
    backlog: list[Decision]  # audits without a label, oldest first
    problems: list[Problem]
    label_files: int
    judged: list[tuple[datetime | None, bool]] = field(default_factory=list)  # (time, right) of each labelled audit
    listed: int = 0  # keys listed under review/, audit/ and labels/ (what the scheduled check's time grows with)

    @property
    def needed(self) -> int | None:
        return audits_needed(self.target)

    @property
    def classes_below_target(self) -> list[str]:
        """The classes whose own audits show them below the target: the upper bound of their interval is below it,
        and at least MIN_WRONG_PER_CLASS of them are wrong (the module docstring says why), lowest bound first."""
        below = [(interval[1], name) for name, figures in self.classes.items()
                 if (interval := figures.precision.interval) is not None and interval[1] < self.target
                 and figures.precision.trials - figures.precision.successes >= MIN_WRONG_PER_CLASS]
        return [name for _, name in sorted(below)]

    @property
    def worst_class_upper_bound(self) -> float | None:
        """The lowest upper bound among the classes with at least MIN_WRONG_PER_CLASS wrong audits (those that can
        show a shortfall on their own); None when no class has that many. Below the target: degraded."""
        bounds = [interval[1] for figures in self.classes.values()
                  if (interval := figures.precision.interval) is not None
                  and figures.precision.trials - figures.precision.successes >= MIN_WRONG_PER_CLASS]
        return min(bounds) if bounds else None

    @property
    def classes_unproven(self) -> list[str]:
        """The classes with labelled audits, none shown below the target, but too few to show it met on their own."""
        below = set(self.classes_below_target)
        return [name for name, figures in self.classes.items() if figures.precision.trials and name not in below
                and (self.needed is None or figures.precision.trials < self.needed)]

    @property
    def verdict(self) -> str:
        interval = self.overall.precision.interval
        if (interval is not None and interval[1] < self.target) or self.classes_below_target:
            return DEGRADED
        if interval is None or self.needed is None or self.overall.precision.trials < self.needed:
            return TOO_FEW
        return OK

    @property
    def bad_inputs(self) -> int:
        """Problems that are bad input (not people disagreeing, nor labels of decisions older than the window)."""
        return sum(1 for problem in self.problems if problem.kind not in NOT_BAD_INPUT)

    @property
    def exit_status(self) -> int:
        return EXIT_STATUS[self.verdict]

    @property
    def worst_class(self) -> str | None:
        """The predicted class whose precision's upper bound is lowest (ties: the lower precision), among the classes
        below the target when there are any."""
        below = set(self.classes_below_target)
        judged = [(figures.precision.interval[1], figures.precision.value or 0.0, name)
                  for name, figures in self.classes.items() if figures.precision.interval is not None
                  and (not below or name in below)]
        return min(judged)[2] if judged else None

    @property
    def most_misread(self) -> tuple[str, str, int] | None:
        """(true class, what it was read as, how often): the most frequent wrong automatic decision."""
        if not self.confusion:
            return None
        (true, predicted), count = min(self.confusion.items(), key=lambda item: (-item[1], item[0]))
        return true, predicted, count

    @property
    def more_needed(self) -> int | None:
        if self.verdict != TOO_FEW or self.needed is None:
            return None
        return max(self.needed - self.overall.precision.trials, 0)

    def oldest_unlabelled_hours(self) -> float | None:
        times = [d.time for d in self.backlog if d.time is not None]
        return round((self.now - min(times)).total_seconds() / 3600, 2) if times else None

    def reason(self) -> str:
        """The verdict in one line (the CLI's stderr line and the function's log)."""
        figures = self.overall.precision
        if self.verdict == DEGRADED:
            low, high = figures.interval or (0.0, 0.0)
            worst = self.worst_class
            if high < self.target:
                line = (f"degraded: precision {figures.value:.3f} [{low:.3f}, {high:.3f}] on {figures.trials} audited "
                        f"decisions is below the target {self.target}")
                if worst is not None:
                    cls = self.classes[worst].precision
                    line += f"; worst class: {worst} ({cls.value:.3f} on {cls.trials} audited)"
            else:
                assert worst is not None  # a class below the target made it degraded
                cls = self.classes[worst].precision
                cls_low, cls_high = cls.interval or (0.0, 0.0)
                line = (f"degraded: {worst}'s precision {cls.value:.3f} [{cls_low:.3f}, {cls_high:.3f}] on "
                        f"{cls.trials} audited decisions is below the target {self.target} (overall "
                        f"{figures.value:.3f} [{low:.3f}, {high:.3f}] on {figures.trials})")
            others = [name for name in self.classes_below_target if name != worst]
            if others:
                line += f"; also below the target: {', '.join(others)}"
            misread = self.most_misread
            if misread is not None:
                line += f"; {misread[0]} read as {misread[1]} {misread[2]} times"
            return line
        if self.verdict == TOO_FEW:
            if self.needed is None:
                return (f"too few audits to say: {figures.trials} audited decisions, and no sample can show a target "
                        f"precision of {self.target}")
            empty = "" if self.counts["records"] else f" ({self.source} holds no review/ or audit/ records)"
            return (f"too few audits to say: {figures.trials} audited decisions with a label{empty}; "
                    f"{self.more_needed} more needed ({self.needed} for a target of {self.target})")
        low, high = figures.interval or (0.0, 0.0)
        return (f"ok: precision {figures.value:.3f} [{low:.3f}, {high:.3f}] on {figures.trials} audited decisions is "
                f"consistent with the target {self.target}")

    def as_dict(self) -> dict[str, Any]:
        problem_counts = Counter(problem.kind for problem in self.problems)
        examples: dict[str, list[dict[str, str]]] = defaultdict(list)
        for problem in self.problems:
            if len(examples[problem.kind]) < EXAMPLES:
                examples[problem.kind].append({"where": problem.where, "detail": problem.detail})
        misread = self.most_misread
        return {
            "source": self.source,
            "since": self.since.isoformat() if self.since else None,
            "assessed_at": self.now.isoformat(),
            "target_precision": self.target,
            "verdict": self.verdict,
            "exit_status": self.exit_status,
            "reason": self.reason(),
            "worst_class": self.worst_class if self.verdict == DEGRADED else None,
            "classes_below_target": self.classes_below_target,
            "classes_unproven": self.classes_unproven,
            "most_misread": {"class": misread[0], "read_as": misread[1], "count": misread[2]} if misread else None,
            "audits_needed": self.needed,
            "more_audits_needed": self.more_needed,
            **self.overall.as_dict(),
            "classes": {name: figures.as_dict() for name, figures in self.classes.items()},
            "confusion": [{"class": true, "read_as": predicted, "count": count}
                          for (true, predicted), count in sorted(self.confusion.items())],
            "decisions": dict(self.counts),
            "backlog": {"unlabelled_audits": len(self.backlog),
                        "oldest_unlabelled_audit": self.backlog[0].recorded_at if self.backlog else None,
                        "oldest_unlabelled_audit_hours": self.oldest_unlabelled_hours()},
            "label_files": self.label_files,
            "listed_keys": self.listed,
            "problems": {kind: problem_counts.get(kind, 0) for kind in PROBLEM_KINDS},
            "bad_inputs": self.bad_inputs,
            "problem_examples": dict(examples),
        }


def _label_images(line: LabelLine, by_id: dict[str, Decision], by_ref: dict[str, set[str]]) -> set[str]:
    """The images (content hashes, or S3 URIs of old records) a label line is for; empty when none is known."""
    if line.file_name and SHA256_HEX.match(line.file_name):
        return {line.file_name}
    carried = line.label.review.get("content-sha256")
    if isinstance(carried, str) and SHA256_HEX.match(carried):
        return {carried}
    if line.file_name and line.file_name in by_id:
        return {by_id[line.file_name].image}
    return set(by_ref.get(line.label.source_ref, set()))


def _split_ref(uri: str) -> tuple[str, str] | None:
    if not uri.startswith("s3://"):
        return None
    bucket, _, key = uri[len("s3://"):].partition("/")
    return (bucket, key) if bucket and key else None


def shows_the_models_answer(label: GroundTruthLabel) -> bool:
    """Whether the person labelling saw the model's answer: a review-page label of a low-confidence item (its review
    attribute, not marked as an audit). A blind audit's label, or a line another tool wrote, did not."""
    review = label.review
    return bool(review) and review.get("audit") is not True


@dataclass
class ImageLabels:
    """The one label of each labelled image (image -> class name), which of them are blind, and the problems met."""

    classes: dict[str, str]
    blind: set[str]
    problems: list[Problem]


def image_labels(inputs: Inputs, class_names: Sequence[str], decisions: Iterable[Decision],
                 holds: Callable[[str, str], bool] | None = None, since: datetime | None = None,
                 report_unjoined: bool = True) -> ImageLabels:
    """The one label of each labelled image and the problems met: class indexes that disagree with their names,
    unknown classes, labels for no image decided (with a window, `since`, counted as outside it: they may judge an
    older decision; without `report_unjoined`, not counted), conflicts (left out) and duplicates (used once). An
    image's label is blind when any of its (agreeing) lines is."""
    decisions = list(decisions)
    decided = {d.image for d in decisions}
    by_id = {d.id: d for d in decisions}
    by_ref: dict[str, set[str]] = defaultdict(set)
    for decision in decisions:
        by_ref[decision.source_ref].add(decision.image)
    problems: list[Problem] = []
    votes: dict[str, list[tuple[str, str, bool]]] = defaultdict(list)  # image -> [(class, where, blind)]
    for line in inputs.labels:
        label = line.label
        if label.class_name not in class_names:
            problems.append(Problem(UNKNOWN_CLASS, line.where, f"{label.class_name!r} is not one of "
                                                               f"{list(class_names)}"))
            continue
        if label.class_index != list(class_names).index(label.class_name):
            named = (f" is {class_names[label.class_index]}" if 0 <= label.class_index < len(class_names)
                     else " is no class")
            problems.append(Problem(MALFORMED_LABEL, line.where, f"class index {label.class_index}{named}, but the "
                                                                 f"class-name is {label.class_name!r} (training "
                                                                 "reads the index)"))
            continue
        images = _label_images(line, by_id, by_ref) & decided
        if not images and not report_unjoined:
            continue
        if not images:
            location = _split_ref(label.source_ref)
            if since is not None:
                problems.append(Problem(OUTSIDE_WINDOW, line.where, f"{label.source_ref}: no decision on this image "
                                                                    f"since {since.isoformat()}"))
            elif location is not None and holds is None:
                problems.append(Problem(NO_DECISION, line.where, f"{label.source_ref}: no decision read on this "
                                                                 "image (whether the bucket holds it is not checked)"))
            elif location is not None and holds is not None and holds(*location):
                problems.append(Problem(NO_DECISION, line.where,
                                        f"{label.source_ref}: no decision recorded on this image"))
            else:
                problems.append(Problem(MISSING_IMAGE, line.where,
                                        f"{label.source_ref}: the bucket does not hold this image"))
            continue
        for image in images:
            votes[image].append((label.class_name, line.where, not shows_the_models_answer(label)))
    chosen: dict[str, str] = {}
    blind: set[str] = set()
    for image, cast in votes.items():
        classes = sorted({name for name, _, _ in cast})
        if len(classes) > 1:
            problems.append(Problem(CONFLICT, image, "labelled " + ", ".join(f"{name} ({where})" for name, where, _ in
                                                                             cast) + ": left out"))
            continue
        chosen[image] = classes[0]
        if any(is_blind for _, _, is_blind in cast):
            blind.add(image)
        if len(cast) > 1:
            problems.append(Problem(DUPLICATE, image, f"labelled {classes[0]} {len(cast)} times (" +
                                    ", ".join(where for _, where, _ in cast) + "): used once"))
    return ImageLabels(chosen, blind, problems)


def assess(inputs: Inputs, class_names: Sequence[str], target: float, *, now: datetime,
           since: datetime | None = None, holds: Callable[[str, str], bool] | None = None) -> Assessment:
    """The figures and the verdict (see the module docstring)."""
    found = image_labels(inputs, class_names, inputs.decisions, holds, since=since)
    labels, label_problems = found.classes, found.problems
    conflicted = {p.where for p in label_problems if p.kind == CONFLICT}
    names = list(class_names) + sorted({d.predicted for d in inputs.decisions
                                        if d.predicted and d.predicted not in class_names})
    right: Counter[str] = Counter()
    judged: Counter[str] = Counter()
    agreed: Counter[str] = Counter()
    asked: Counter[str] = Counter()
    low: Counter[str] = Counter()
    weight: defaultdict[str, float] = defaultdict(float)
    confusion: Counter[tuple[str, str]] = Counter()
    backlog: list[Decision] = []
    outcomes: list[tuple[datetime | None, bool]] = []
    counts = Counter({"records": len(inputs.decisions), "audits": 0, "low_confidence": 0, "audits_labelled": 0,
                      "audits_unlabelled": 0, "audits_conflicting": 0, "audits_label_not_blind": 0,
                      "low_confidence_labelled": 0})
    for decision in inputs.decisions:
        predicted = decision.predicted or "(none)"
        truth = labels.get(decision.image)
        if decision.kind == AUDIT:
            counts["audits"] += 1
            weight[predicted] += 1 / (decision.audit_rate or 1.0)
            if decision.image in conflicted:
                counts["audits_conflicting"] += 1
            elif truth is None:
                counts["audits_unlabelled"] += 1
                backlog.append(decision)
            elif decision.image not in found.blind:
                counts["audits_label_not_blind"] += 1
            else:
                counts["audits_labelled"] += 1
                judged[predicted] += 1
                right[predicted] += int(truth == decision.predicted)
                outcomes.append((decision.time, truth == decision.predicted))
                if truth != decision.predicted:
                    confusion[(truth, predicted)] += 1
        else:
            counts["low_confidence"] += 1
            low[predicted] += 1
            if truth is not None:
                counts["low_confidence_labelled"] += 1
                asked[predicted] += 1
                agreed[predicted] += int(truth == decision.predicted)
    audits = counts["audits"]
    total_estimate = (sum(low.values()) + sum(weight.values())) if audits else None

    def figures(keys: Sequence[str]) -> Figures:
        confident = sum(weight[k] for k in keys) if audits else None
        return Figures(Proportion(sum(right[k] for k in keys), sum(judged[k] for k in keys)),
                       Proportion(sum(agreed[k] for k in keys), sum(asked[k] for k in keys)),
                       sum(low[k] for k in keys), confident, total_estimate)

    all_keys = [*names, "(none)"]
    counts["estimated_confident_decisions"] = round(sum(weight.values())) if audits else 0
    backlog.sort(key=lambda d: (d.time is None, d.time or now, d.id))
    return Assessment(inputs.source, target, since, now, list(class_names), figures(all_keys),
                      {name: figures([name]) for name in names}, confusion, dict(counts), backlog,
                      [*inputs.problems, *label_problems], inputs.label_files, outcomes, inputs.listed)


@dataclass(frozen=True)
class JudgedDecision:
    """A decision with the label of its image and the share of traffic it stands for."""

    decision: Decision
    truth: str
    weight: float


@dataclass(frozen=True)
class TrafficSample:
    """Labelled decisions weighted to stand for all the traffic they were drawn from (the gate judges on them)."""

    judged: list[JudgedDecision]
    counts: dict[str, int]
    weights: dict[str, list[float]]  # the distinct weights of each stratum
    problems: list[Problem]


def traffic_sample(inputs: Inputs, class_names: Sequence[str], *,
                   excluded: Callable[[Decision], bool] | None = None) -> TrafficSample:
    """The labelled decisions as a weighted sample of all traffic, for judging a candidate model on it.

    Two strata: confident decisions, sampled by the audits (each audit stands for 1/audit rate of them: an unbiased
    sample, whatever the model got right), and low-confidence decisions, sampled by those people labelled (each
    stands for low-confidence decisions / labelled ones, `excluded` ones, such as those a candidate trained on,
    left out of both counts). Without the audits, a candidate would be judged only on the hard cases people were
    asked about."""
    found = image_labels(inputs, class_names, inputs.decisions, report_unjoined=False)
    labels, problems = found.classes, found.problems
    judged: list[JudgedDecision] = []
    audits = [d for d in inputs.decisions if d.kind == AUDIT]
    lows = [d for d in inputs.decisions if d.kind != AUDIT and not (excluded and excluded(d))]
    for decision in audits:
        if decision.image in labels and decision.image in found.blind:  # an audit is judged by a blind label only
            judged.append(JudgedDecision(decision, labels[decision.image], 1 / (decision.audit_rate or 1.0)))
    labelled_lows = [d for d in lows if d.image in labels]
    low_weight = len(lows) / len(labelled_lows) if labelled_lows else 0.0
    judged += [JudgedDecision(d, labels[d.image], low_weight) for d in labelled_lows]
    counts = {"audits": len(audits), "audits_labelled": sum(1 for j in judged if j.decision.kind == AUDIT),
              "low_confidence": len(lows), "low_confidence_labelled": len(labelled_lows),
              "low_confidence_excluded": sum(1 for d in inputs.decisions if d.kind != AUDIT) - len(lows)}
    weights = {kind: sorted({round(j.weight, 6) for j in judged if (j.decision.kind == AUDIT) == (kind == AUDIT)})
               for kind in (AUDIT, "low_confidence")}
    return TrafficSample(judged, counts, weights, problems)
