"""A stand-in SageMaker endpoint with scripted answers, for tests and for running without a model.

It speaks the SageMaker runtime API (`POST /endpoints/{name}/invocations`) and the inference
container contract (`GET /ping`, `POST /invocations`), so boto3's `sagemaker-runtime` client reaches
it with only AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME set, exactly as it reaches the real model server.
Errors use the runtime API's shape: an `x-amzn-ErrorType` header and a `{"message"}` body.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from common import settings


def confident_body() -> bytes:
    """A confident answer for the template's classes and threshold: 0.97 for the first (the threshold itself when it is
    higher, so the answer stays confident whatever the template says), the rest shared by the others."""
    classes = len(settings.class_names())
    top = max(0.97, settings.confidence_threshold())
    return json.dumps([top, *[round((1 - top) / (classes - 1), 6)] * (classes - 1)]).encode()


@dataclass(frozen=True)
class Answer:
    """One scripted reply: a probability list, or an error the runtime API can return."""

    status: int = 200
    body: bytes = field(default_factory=confident_body)
    error_code: str | None = None

    @classmethod
    def probabilities(cls, *values: float) -> Answer:
        return cls(body=json.dumps(list(values)).encode())

    @classmethod
    def top(cls, index: int, confidence: float, classes: int) -> Answer:
        """One probability per class: `confidence` for class `index`, the rest shared evenly by the others."""
        rest = round((1 - confidence) / (classes - 1), 6)
        return cls.probabilities(*(confidence if i == index else rest for i in range(classes)))

    @classmethod
    def error(cls, status: int, code: str, message: str) -> Answer:
        return cls(status=status, body=json.dumps({"message": message}).encode(), error_code=code)

    @classmethod
    def throttled(cls) -> Answer:
        return cls.error(400, "ThrottlingException", "Rate exceeded")


@dataclass
class Invocation:
    endpoint_name: str
    content_type: str
    body: bytes


@dataclass
class ScriptedEndpoint:
    """Answers from `by_body` when the request body is there (so concurrent requests get their own answers),
    else from `script` in order, then `default` forever; records every request it receives."""

    script: deque[Answer] = field(default_factory=deque)
    default: Answer = field(default_factory=Answer)
    invocations: list[Invocation] = field(default_factory=list)
    by_body: dict[bytes, Answer] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def enqueue(self, answers: Iterable[Answer]) -> None:
        with self._lock:
            self.script.extend(answers)

    def next_answer(self, invocation: Invocation) -> Answer:
        with self._lock:
            self.invocations.append(invocation)
            if invocation.body in self.by_body:
                return self.by_body[invocation.body]
            return self.script.popleft() if self.script else self.default

    def app(self) -> Starlette:
        async def ping(request: Request) -> Response:
            return Response(status_code=200)

        async def invoke(request: Request) -> Response:
            invocation = Invocation(
                endpoint_name=request.path_params.get("endpoint_name", ""),
                content_type=request.headers.get("content-type", ""),
                body=await request.body(),
            )
            answer = self.next_answer(invocation)
            headers = {"x-amzn-ErrorType": answer.error_code} if answer.error_code else {}
            return Response(answer.body, status_code=answer.status, headers=headers, media_type="application/json")

        return Starlette(routes=[
            Route("/ping", ping, methods=["GET"]),
            Route("/invocations", invoke, methods=["POST"]),
            Route("/endpoints/{endpoint_name}/invocations", invoke, methods=["POST"]),
        ])
