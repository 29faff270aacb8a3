"""API Gateway's mapping templates (Velocity), evaluated offline with `airspeed`.

API Gateway evaluates a REST API's request and response mapping templates with Velocity and its own
variables: `$input` (the body: `body`, `json(path)`, `path(path)`, `params()`), `$util`
(`escapeJavaScript`, `parseJson`, `base64Encode`, `base64Decode`, `urlEncode`, `urlDecode`) and
`$context` (the request's id, identity, stage...; `responseOverride.status` set by a response template
replaces the status code). This module gives the same names to airspeed, a Python implementation of
Velocity, so the templates in template.yaml run unchanged offline.

Where Velocity (Java) and Python differ, the Java behaviour is reproduced: a backslash in a string
literal is a plain character, as in Velocity (airspeed would unescape it, which turns the documented
`.replaceAll("\\'", "'")` into a no-op), escapeJavaScript follows
Apache Commons Lang's (it escapes ' and / and writes non-ASCII as \\uXXXX UTF-16 units), strings have
Java's methods (replaceAll, startsWith, contains...: airspeed's own), and a JSON body that does not
parse makes `$input.json`/`$input.path` fail as API Gateway does ("Could not parse request body into
json"). Numbers from parseJson render as Python writes them (0.97, 1e-05), which is still JSON.
"""

from __future__ import annotations

import base64
import json
import re
import urllib.parse
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import airspeed
from jsonpath_ng import parse as parse_jsonpath

# Velocity keeps backslashes in string literals ("\\'" is three characters); airspeed unescapes them unless told not to.
_NEVER = re.compile(r"(?!)")
airspeed.StringLiteral.ESCAPED_CHAR = _NEVER
airspeed.InterpolatedStringLiteral.ESCAPED_CHAR = _NEVER

_SHORT_ESCAPES = {"'": "\\'", '"': '\\"', "\\": "\\\\", "/": "\\/", "\b": "\\b", "\f": "\\f", "\n": "\\n",
                  "\r": "\\r", "\t": "\\t"}


class BodyNotJsonError(Exception):
    """$input.json / $input.path on a body that is not JSON (API Gateway answers 400)."""


def escape_javascript(value: Any) -> str:
    """Apache Commons Lang 2 StringEscapeUtils.escapeJavaScript, which API Gateway's $util uses."""
    if value is None:
        return ""
    out = []
    for unit in _utf16_units(str(value)):
        char = chr(unit)
        if char in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[char])
        elif unit < 32 or unit > 0x7F:
            out.append(f"\\u{unit:04X}")
        else:
            out.append(char)
    return "".join(out)


def _utf16_units(text: str) -> list[int]:
    data = text.encode("utf-16-be", "surrogatepass")
    return [int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2)]


class Util:
    """`$util` of API Gateway."""

    @staticmethod
    def escapeJavaScript(value: Any) -> str:  # noqa: N802 - the Velocity name
        return escape_javascript(value)

    @staticmethod
    def parseJson(value: str) -> Any:  # noqa: N802
        return json.loads(value)

    @staticmethod
    def base64Encode(value: str) -> str:  # noqa: N802
        return base64.b64encode(str(value).encode()).decode()

    @staticmethod
    def base64Decode(value: str) -> str:  # noqa: N802
        return base64.b64decode(str(value)).decode()

    @staticmethod
    def urlEncode(value: str) -> str:  # noqa: N802
        return urllib.parse.quote_plus(str(value))

    @staticmethod
    def urlDecode(value: str) -> str:  # noqa: N802
        return urllib.parse.unquote_plus(str(value))


@lru_cache(maxsize=256)
def _compiled_path(path: str) -> Any:
    return parse_jsonpath(path)


class Input:
    """`$input`: the payload the template maps (request body, or the integration's response body)."""

    def __init__(self, body: str, params: dict[str, dict[str, str]] | None = None) -> None:
        self.body = body
        self._params = params or {"path": {}, "querystring": {}, "header": {}}
        self._parsed: Any = None
        self._parsed_done = False

    def _document(self) -> Any:
        if not self._parsed_done:
            try:
                self._parsed = json.loads(self.body) if self.body.strip() else {}
            except json.JSONDecodeError as error:
                raise BodyNotJsonError(f"Could not parse request body into json: {error}") from error
            self._parsed_done = True
        return self._parsed

    def path(self, path: str) -> Any:
        matches = _compiled_path(path).find(self._document())
        return matches[0].value if matches else None

    def json(self, path: str) -> str:
        return json.dumps(self.path(path))

    def params(self, name: str | None = None) -> Any:
        if name is None:
            return self._params
        for kind in ("path", "querystring", "header"):
            if name in self._params.get(kind, {}):
                return self._params[kind][name]
        return None


@dataclass
class Rendered:
    body: str
    status_override: int | None
    header_overrides: dict[str, str] = field(default_factory=dict)


@lru_cache(maxsize=64)
def _template(text: str) -> airspeed.Template:
    return airspeed.Template(text)


def render(template: str, payload: Input, context: dict[str, Any]) -> Rendered:
    """Evaluate one mapping template; `context` is `$context` (responseOverride is added and read back)."""
    context = {**context, "responseOverride": {"status": None, "header": {}}}
    try:
        body = _template(template).merge({"input": payload, "util": Util(), "context": context})
    except airspeed.TemplateExecutionError as error:
        cause = error.__cause__ or error.__context__
        if isinstance(cause, BodyNotJsonError):
            raise cause from error
        raise
    override = context["responseOverride"]
    status = override.get("status")
    return Rendered(body, int(status) if status not in (None, "") else None, dict(override.get("header") or {}))
