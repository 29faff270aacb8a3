"""The review queue: what is left to label, who is looking at what, and the labels themselves.

The queue is derived from the store (decision records whose image has no label object), so it is the same
for every reviewer and every server, and a restart changes nothing. Two kinds of item are mixed in it,
oldest first: low-confidence decisions (`review/<id>.json`: the page shows the model's tentative answer)
and blind audits (`audit/<id>.json`, a confident decision drawn at AuditRate: the API and the page carry
`"audit": true` and nothing of the model's answer, since a reviewer who sees it tends to agree with it).

A label is for an image, not an execution: it is written to `labels/<content hash>.jsonl`, and an item
whose image is already labelled (by an earlier execution, a rerun, the same photo under another key) is
not asked again. A record written before content hashes has its image's hash computed once from the
image itself (imaging.preprocess.content_hash, the training de-duplication's hash), and its older label,
`labels/<id>.jsonl`, still counts for that image. The store is listed at most every
`refresh_seconds` (listing S3 costs a request per 1,000 keys), and this server's own labels and undos
apply at once; another server's labels show within that time. Claims and skips are advice kept in
memory, not state: a page claims the item it shows (for `claim_seconds`), so two reviewers on one
server are shown different images, and an image this server saw labelled cannot be claimed again. A
claim never stops a label: the store's create-if-absent is what guarantees one label per image.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from common.artefacts import (
    REVIEW_JOB_NAME,
    ArtefactError,
    GroundTruthLabel,
    S3Location,
    ground_truth_now,
    parse_ground_truth_line,
)
from common.errors import InputError
from imaging.preprocess import content_hash, to_model_input
from modelquality.audit import SHA256_HEX
from modelquality.records import AUDIT, REVIEW, Decision, parse_decision
from review.store import AUDIT_PREFIX, ITEM_ID, ImageMissingError, Store, item_id, label_key

logger = logging.getLogger(__name__)

CLAIM_SECONDS = 120.0
REFRESH_SECONDS = 1.0


class UnknownItemError(InputError):
    """No review record has this id (HTTP 404)."""

    status = 404


class UnknownClassError(InputError):
    """The label is not one of the classes (HTTP 400)."""

    status = 400


class AlreadyLabelledError(InputError):
    """Someone labelled the image first (HTTP 409); the message says with what."""

    status = 409


class ClaimedError(InputError):
    """Another reviewer is looking at the image (HTTP 409)."""

    status = 409


class NotLabelledError(InputError):
    """Undo of an image that has no label (HTTP 404)."""

    status = 404


class NotYourLabelError(InputError):
    """Undo of a label another reviewer wrote (HTTP 409): only its author may take it back."""

    status = 409


@dataclass(frozen=True)
class ReviewItem:
    id: str
    s3_bucket: str
    s3_key: str
    prediction: dict[str, Any]  # the model's guess: label, confidence
    inferences: list[float]
    recorded_at: str
    audit: bool = False  # a blind audit of a confident decision: the model's answer is never shown
    content_sha256: str | None = None  # the image's content hash (None: an older record whose image is unreadable)

    @classmethod
    def from_decision(cls, decision: Decision, content_sha256: str | None = None) -> ReviewItem:
        return cls(decision.id, decision.s3_bucket, decision.s3_key,
                   {"label": decision.predicted, "confidence": decision.confidence}, list(decision.inferences),
                   decision.recorded_at, decision.audit, decision.content_sha256 or content_sha256)

    @property
    def label_name(self) -> str:
        """Its label's name, `labels/<name>.jsonl`: the image's content hash (the item's id without one)."""
        return self.content_sha256 or self.id

    def as_api(self) -> dict[str, Any]:
        if self.audit:  # blind: nothing of the model's answer
            return {"id": self.id, "s3_key": self.s3_key, "audit": True, "recorded_at": self.recorded_at}
        return {"id": self.id, "s3_key": self.s3_key, "audit": False, "prediction": self.prediction,
                "inferences": self.inferences, "recorded_at": self.recorded_at}


@dataclass(frozen=True)
class QueueView:
    items: list[ReviewItem]  # unlabelled, oldest first (one per image); claimed by others and skipped last
    labelled: int  # items whose image has a label
    claimed_by_others: set[str]


class ReviewQueue:
    def __init__(self, store: Store, class_names: Sequence[str], *, claim_seconds: float = CLAIM_SECONDS,
                 refresh_seconds: float = REFRESH_SECONDS, job_name: str = REVIEW_JOB_NAME,
                 clock: Callable[[], float] = time.monotonic, identity: str | None = None) -> None:
        """`identity`: who labels through this queue, recorded on each label as its reviewer (the server's
        --reviewer, OS user or AWS principal); the `reviewer` the methods take is then the page's session."""
        if not class_names:
            raise InputError("the review needs at least one class name")
        self.store = store
        self.class_names = list(class_names)
        self.claim_seconds = claim_seconds
        self.refresh_seconds = refresh_seconds
        self.job_name = job_name
        self._clock = clock
        self.identity = identity
        self._lock = threading.Lock()
        self._records: dict[str, ReviewItem] = {}  # records never change once written: read each once
        self._malformed: set[str] = set()
        self._claims: dict[str, tuple[str, float]] = {}  # id -> (reviewer, expiry)
        self._skipped: dict[str, set[str]] = {}  # reviewer -> ids
        self._listed_at: float | None = None
        self._review_keys: dict[str, str] = {}  # id -> key, as last listed
        self._label_ids: set[str] = set()  # as last listed, with this server's own labels and undos applied
        self._unlisted: set[str] = set()  # review/ keys skipped for their names, each said once

    def _listing(self, force: bool = False) -> tuple[dict[str, str], set[str]]:
        now = self._clock()
        if force or self._listed_at is None or now - self._listed_at >= self.refresh_seconds:
            keys: dict[str, str] = {}
            for key in [*self.store.review_keys(), *self.store.audit_keys()]:
                identifier = item_id(key)
                if identifier is None:
                    if key.endswith(".json") and key not in self._unlisted:
                        self._unlisted.add(key)
                        logger.warning("skipping %s: its name is not a review item id (letters, digits, ._-+=@!'())",
                                       key)
                    continue
                if identifier in keys:  # one execution is one decision: a review and an audit cannot share a name
                    logger.warning("skipping %s: %s also has %s", key, identifier, keys[identifier])
                    continue
                keys[identifier] = key
            labelled = self.store.label_ids()
            with self._lock:
                self._review_keys, self._label_ids, self._listed_at = keys, labelled, now
        with self._lock:
            return dict(self._review_keys), set(self._label_ids)

    # Reading ---------------------------------------------------------------------------------------------

    def items(self, force: bool = False) -> dict[str, ReviewItem]:
        """Every review record (labelled or not), by id."""
        keys, _ = self._listing(force)
        return self._records_of(keys)

    def _records_of(self, keys: dict[str, str]) -> dict[str, ReviewItem]:
        """The records of a listing, each read once (a record never changes) and kept."""
        for identifier, key in keys.items():
            if identifier in self._records or key in self._malformed:
                continue
            try:
                decision = parse_decision(identifier, self.store.read(key),
                                          AUDIT if key.startswith(AUDIT_PREFIX) else REVIEW)
            except ValueError as error:
                logger.warning("skipping review record %s: not a review record (%s)", key, error)
                self._malformed.add(key)
                continue
            except FileNotFoundError:
                continue  # removed between the listing and the read
            digest = decision.content_sha256 or self._image_hash(decision)
            self._records[identifier] = ReviewItem.from_decision(decision, digest)
        return {identifier: self._records[identifier] for identifier in keys if identifier in self._records}

    def _image_hash(self, decision: Decision) -> str | None:
        """An older record's image's content hash, from the image itself; None when it cannot be read."""
        try:
            return content_hash(to_model_input(self.store.image(decision.s3_bucket, decision.s3_key)))
        except (ImageMissingError, OSError, ValueError) as error:
            logger.warning("review record %s: its image's content hash is unknown (%s): its label is keyed by the "
                           "item", decision.id, error)
            return None

    @staticmethod
    def _labelled_images(items: dict[str, ReviewItem], names: set[str]) -> set[str]:
        """The label names that say an image is labelled: content hashes, and the images of older id-named labels."""
        return {name for name in names if SHA256_HEX.match(name)} | {items[name].label_name for name in names
                                                                      if name in items}

    def _is_labelled(self, item: ReviewItem, names: set[str], images: set[str]) -> bool:
        return item.label_name in images or item.id in names

    def view(self, reviewer: str | None = None) -> QueueView:
        keys, names = self._listing()  # one listing: the items and their labels as of the same moment
        items = self._records_of(keys)
        images = self._labelled_images(items, names)
        now = self._clock()
        with self._lock:
            others = {identifier for identifier, (who, expiry) in self._claims.items()
                      if expiry > now and who != reviewer}
            skipped = self._skipped.get(reviewer or "", set())
        unlabelled = sorted((item for item in items.values() if not self._is_labelled(item, names, images)),
                            key=lambda item: (item.recorded_at, item.id))
        seen: set[str] = set()
        left = []
        for item in unlabelled:  # one item per image: its oldest decision
            if item.label_name not in seen:
                seen.add(item.label_name)
                left.append(item)
        left.sort(key=lambda item: (item.id in others, item.id in skipped, item.recorded_at, item.id))
        labelled = sum(1 for item in items.values() if self._is_labelled(item, names, images))
        return QueueView(left, labelled, others & {i.id for i in left})

    def item(self, identifier: str) -> ReviewItem:
        if not ITEM_ID.match(identifier):
            raise UnknownItemError(f"no review item {identifier!r}")
        found = self._records.get(identifier) or self.items(force=True).get(identifier)
        if found is None:
            raise UnknownItemError(f"no review item {identifier!r}: there is no review/{identifier}.json in "
                                   f"{self.store.description}")
        return found

    def image(self, identifier: str) -> bytes:
        item = self.item(identifier)
        return self.store.image(item.s3_bucket, item.s3_key)

    def label_key_of(self, identifier: str) -> str:
        """Where the item's label is (or goes): `labels/<the image's content hash>.jsonl`."""
        return label_key(self.item(identifier).label_name)

    def _label_names_of(self, identifier: str) -> list[str]:
        """The names a label of the item's image can have: its content hash, then (older labels) the item's id."""
        item = self.item(identifier)
        return list(dict.fromkeys([item.label_name, item.id]))

    def _labelled_name(self, identifier: str) -> str | None:
        """The name of the label the item's image has, read from the store; None without one."""
        _, names = self._listing()
        item = self.item(identifier)
        if item.label_name in names or item.id in names:
            return item.label_name if item.label_name in names else item.id
        older = [name for name in names if name in self._records and self._records[name].label_name == item.label_name]
        return older[0] if older else None

    def existing_label(self, identifier: str) -> GroundTruthLabel | None:
        name = self._labelled_name(identifier)
        if name is None:
            return None
        try:
            return parse_ground_truth_line(self.store.read(label_key(name)).decode(), label_key(name))
        except (FileNotFoundError, ArtefactError, UnicodeDecodeError):
            return None  # gone, or not a label of ours; a store that refuses to answer raises (not "no label")

    # Writing ---------------------------------------------------------------------------------------------

    def claim(self, identifier: str, reviewer: str) -> None:
        """Show `identifier` to `reviewer` alone for a while; refused while someone else's claim lasts."""
        item = self.item(identifier)
        now = self._clock()
        with self._lock:
            names = set(self._label_ids)
        if self._is_labelled(item, names, self._labelled_images(dict(self._records), names)):
            raise AlreadyLabelledError(f"{identifier} is already labelled")
        with self._lock:
            holder = self._claims.get(identifier)
            if holder and holder[0] != reviewer and holder[1] > now:
                raise ClaimedError(f"another reviewer is looking at {identifier} (for up to "
                                   f"{holder[1] - now:.0f} s more)")
            self._claims = {key: value for key, value in self._claims.items() if value[0] != reviewer}
            self._claims[identifier] = (reviewer, now + self.claim_seconds)

    def label(self, identifier: str, class_name: str, reviewer: str | None = None) -> GroundTruthLabel:
        """Write the label (durably, once): refused for an unknown class or item, or one already labelled."""
        if class_name not in self.class_names:
            raise UnknownClassError(f"{class_name!r} is not a class; the classes are {', '.join(self.class_names)}")
        item = self.item(identifier)
        earlier_name = self._labelled_name(identifier)
        if earlier_name is not None and earlier_name != item.label_name:  # the image, labelled as another item
            earlier = self.existing_label(identifier)
            with self._lock:
                self._label_ids.add(earlier_name)
            self._release(identifier)
            raise AlreadyLabelledError(f"{identifier} shows an image already labelled" + (
                f" as {earlier.class_name}" if earlier else "") + f" ({label_key(earlier_name)})")
        answer = {} if item.audit else {"model-label": item.prediction.get("label"),
                                        "model-confidence": item.prediction.get("confidence")}
        label = GroundTruthLabel(
            source_ref=S3Location(item.s3_bucket, item.s3_key).uri, class_name=class_name,
            class_index=self.class_names.index(class_name), creation_date=ground_truth_now(), job_name=self.job_name,
            extra={"review": {"id": item.id, "audit": item.audit, **answer,
                              **({"content-sha256": item.content_sha256} if item.content_sha256 else {}),
                              **self._author(reviewer)}},
        )
        written = self.store.create_label(item.label_name, (label.as_line() + "\n").encode())
        with self._lock:
            self._label_ids.add(item.label_name)
        self._release(identifier)
        if not written:
            earlier = self.existing_label(identifier)
            raise AlreadyLabelledError(f"{identifier} was already labelled" +
                                       (f" as {earlier.class_name}" if earlier else "") + " by another reviewer")
        return label

    def skip(self, identifier: str, reviewer: str | None) -> None:
        """Not now: the item goes to the back of this reviewer's queue and is free for others."""
        self.item(identifier)
        self._release(identifier)
        if reviewer:
            with self._lock:
                self._skipped.setdefault(reviewer, set()).add(identifier)

    def undo(self, identifier: str, reviewer: str | None = None) -> None:
        """Remove the label: the image returns to the queue. A label written with a reviewer's name is theirs:
        anyone else's undo (or one without a name) is refused, so a second reviewer cannot erase the first's work."""
        self.item(identifier)
        name = self._labelled_name(identifier)
        earlier = self.existing_label(identifier)
        if earlier is not None and not self._written_by(earlier.extra.get("review") or {}, reviewer):
            raise NotYourLabelError(f"{identifier} was labelled as {earlier.class_name} by another reviewer: only "
                                    "they can undo it")
        deleted = name is not None and self.store.delete_label(name)
        with self._lock:
            self._label_ids.discard(name or "")
        if not deleted:
            raise NotLabelledError(f"{identifier} has no label to undo")

    def _author(self, session: str | None) -> dict[str, str]:
        """Who a label is recorded as written by: this queue's identity (the server's side), and the page's
        session; without an identity (a library caller), the session alone, as the reviewer."""
        if self.identity is None:
            return {"reviewer": session} if session else {}
        return {"reviewer": self.identity, **({"session": session} if session else {})}

    def _written_by(self, review: dict[str, Any], session: str | None) -> bool:
        """Whether this queue, for this session, wrote the label (a label with no reviewer is anyone's)."""
        author = self._author(session)
        return not review.get("reviewer") or (review.get("reviewer") == author.get("reviewer")
                                              and review.get("session") in (None, author.get("session")))

    def _release(self, identifier: str) -> None:
        with self._lock:
            self._claims.pop(identifier, None)
