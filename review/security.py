"""What the review server refuses before any route runs: the requests a browser attack can send.

Labels retrain the model, so a page that can write one can steer it. A web page on any other origin can make
the reviewer's browser send requests to this server, and the model to follow is Jupyter Server's defence of its
local server (jupyter_server/base/handlers.py `check_host`, `check_origin`, `check_xsrf_cookie`;
jupyter_server/auth/identity.py `get_token`; serverapp.py `allow_remote_access`, `local_hostnames`):

- **Host allowlist** (DNS rebinding: a page whose own name now resolves to 127.0.0.1 is "same-origin" with
  this server in the browser's eyes, but it still sends its own name in `Host`). Allowed: the loopback names
  (`localhost`, 127.0.0.0/8, ::1), the address the server is bound to when that is a specific one, the
  machine's own names and addresses when it is bound to every address, and the names given with
  `--allowed-host`, each with the port the server listens on. Anything else: 403. With the token (required off
  loopback) a server is reached from other machines, through NAT and reverse proxies, so it also answers any IP
  address (a literal address involves no DNS, so nothing can rebind it) and its allowed names on any port; the
  loopback names keep the exact port, with or without a token.
- **State-changing requests** (every method but GET and HEAD) must say `Content-Type: application/json`:
  a cross-origin page can send text/plain, form-urlencoded or multipart bodies without asking (a "simple
  request", no CORS preflight; a form, or `fetch(..., {mode: "no-cors"})`), but application/json from
  another origin needs a preflight, which this server never grants. When the browser says where a request
  comes from, it must be this page's own origin: `Origin` equal to `http://<Host>` and `Sec-Fetch-Site`
  `same-origin`. A page on another local port is *same-site* (ports do not count) but not same-origin. With the
  token, the https origin of the Host and any origin whose name is an allowed host also count as the page's own
  (a reverse proxy that terminates TLS, or rewrites Host); never a loopback origin on another port.
- **API reads** that the browser marks cross-origin (`Sec-Fetch-Site` `same-site` or `cross-site`) are
  refused too (Jupyter's `check_referer`: no cross-site inclusion of the queue or the images).
- **A token off loopback.** Bound to a non-loopback address the server needs a per-start secret: printed in
  the page's URL at start (`/?token=...`), traded for an HttpOnly SameSite=Strict cookie on the first visit
  (then redirected to `/`, so the secret leaves the address bar), or sent by scripts as
  `Authorization: Bearer <token>`. Compared in constant time.

Every response also says `X-Frame-Options: DENY` (no framing: a page cannot trick clicks or keys into ours),
`X-Content-Type-Options: nosniff` and `Referrer-Policy: no-referrer`. Each refusal is logged once, as
Jupyter logs "Blocking Cross Origin API request".
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import re
import secrets
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, urlsplit

from common.errors import InputError

logger = logging.getLogger(__name__)

LOOPBACK_NAMES = frozenset({"localhost"})
SAFE_METHODS = frozenset({"GET", "HEAD"})
JSON_TYPE = "application/json"
COOKIE_PREFIX = "scones-review-token-"  # + the port: cookies are not kept apart by port, servers must be
SECURITY_HEADERS = [(b"x-frame-options", b"DENY"), (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"), (b"content-security-policy", b"frame-ancestors 'none'")]
_HOST_HEADER = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[^:\[\]]+)(?::(\d{1,5}))?$")
_HOST_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*\.?$")


class RemoteAccessError(InputError):
    """The server would serve the network without a token: refused at start."""


@dataclass(frozen=True)
class Refusal:
    status: int
    error: str
    message: str


def is_loopback_name(host: str) -> bool:
    """`localhost`, or an IP address on the loopback network (127.0.0.0/8, ::1)."""
    host = host.strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def binds_loopback_only(host: str) -> bool:
    """Whether listening on `host` serves this machine alone (a name counts only if all it resolves to is
    loopback, as Jupyter's `allow_remote_access` default decides)."""
    if is_loopback_name(host):
        return True
    try:
        ipaddress.ip_address(host.strip("[]"))
        return False  # an address that is not loopback: 0.0.0.0, ::, a LAN address
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, 0, socket.SOCK_STREAM)
    except OSError:
        return False
    return bool(infos) and all(is_loopback_name(str(info[4][0]).split("%")[0]) for info in infos)


def machine_names() -> set[str]:
    """The names and addresses other machines may reach this one by (for a server bound to every address): its host
    names, what they resolve to, and its interface addresses."""
    names = {socket.gethostname(), socket.getfqdn()}
    addresses = set(interface_addresses())
    for name in list(names):
        try:
            addresses |= {str(info[4][0]).split("%")[0] for info in socket.getaddrinfo(name, None)}
        except OSError:
            continue
    return {value.lower() for value in names | addresses if value}


@dataclass(frozen=True)
class AccessPolicy:
    """Who may reach the review server: host names (besides loopback) and the token, when there is one."""

    allowed_hosts: frozenset[str] = frozenset()
    token: str | None = None

    @classmethod
    def for_bind(cls, host: str, *, token: bool = False, allowed_hosts: Iterable[str] = ()) -> AccessPolicy:
        """The policy a server listening on `host` needs: refused (RemoteAccessError) off loopback without a
        token, as Jupyter refuses to serve the network unauthenticated."""
        names = {name.strip().lower().strip("[]") for name in allowed_hosts if name.strip()}
        for name in names:
            if not (_is_ip(name) or _HOST_NAME.match(name)):
                raise InputError(f"--allowed-host {name!r}: give a host name or an IP address, without a port")
        if not binds_loopback_only(host):
            if not token:
                raise RemoteAccessError(
                    f"--host {host} serves the review page to the network: add --token (a secret printed in "
                    "the page's URL at start; scripts send it as Authorization: Bearer <token>), or serve on "
                    "127.0.0.1")
            bare = host.strip("[]").lower()
            names |= machine_names() if _is_unspecified(bare) else {bare}
        return cls(frozenset(names), secrets.token_urlsafe(32) if token else None)

    def cookie_name(self, port: int) -> str:
        return f"{COOKIE_PREFIX}{port}"

    # The checks, each on the request's scope; None: let it through ---------------------------------------

    def host_refusal(self, headers: dict[str, str], port: int) -> Refusal | None:
        value = headers.get("host", "")
        match = _HOST_HEADER.match(value)
        name = match.group(1).strip("[]").lower() if match else ""
        stated = int(match.group(2)) if match and match.group(2) else 80
        if match and stated == port and (is_loopback_name(name) or name in self.allowed_hosts):
            return None
        if match and self.token is not None and not is_loopback_name(name) and (
                _is_ip(name) or name in self.allowed_hosts):
            return None  # with the token: an address (no DNS to rebind) or an allowed name, on any port
        return Refusal(403, "HostNotAllowedError",
                       f"Host {value!r} is not an address this server answers to (loopback names and port {port}"
                       + (", " + ", ".join(sorted(self.allowed_hosts)) if self.allowed_hosts else "")
                       + (", any IP address" if self.token is not None else "")
                       + "): no DNS rebinding; serve another name with --allowed-host NAME")

    def token_refusal(self, headers: dict[str, str], port: int) -> Refusal | None:
        if self.token is None:
            return None
        authorization = headers.get("authorization", "")
        scheme, _, given = authorization.partition(" ")
        if scheme.lower() == "bearer" and self.matches(given.strip()):
            return None
        cookie = SimpleCookie()
        try:
            cookie.load(headers.get("cookie", ""))
        except Exception:  # noqa: BLE001 - a malformed Cookie header carries no token
            return _NO_TOKEN
        held = cookie.get(self.cookie_name(port))
        return None if held is not None and self.matches(held.value) else _NO_TOKEN

    def matches(self, given: str) -> bool:
        return self.token is not None and hmac.compare_digest(given.encode(), self.token.encode())

    def own_origin(self, origin: str, host: str) -> bool:
        """Whether `origin` is this page's: `http://<Host>` exactly; with the token, also the https origin of the Host
        (a reverse proxy terminating TLS), or an http or https origin whose name is an allowed one (a proxy that
        rewrites Host). A loopback Host keeps the exact rule: another local port is another origin."""
        origin, host = origin.lower(), host.lower()
        if origin == f"http://{host}":
            return True
        if self.token is None:
            return False
        parsed = urlsplit(origin)
        if parsed.scheme not in {"http", "https"} or not parsed.hostname or parsed.path or parsed.query:
            return False
        name = parsed.hostname.strip("[]")
        if is_loopback_name(name):
            return False
        return (parsed.scheme == "https" and parsed.netloc == host) or name in self.allowed_hosts

    def origin_refusal(self, method: str, path: str, headers: dict[str, str]) -> Refusal | None:
        """A state-changing request must be JSON from this page's own origin; API reads must not be cross-origin."""
        fetch_site = headers.get("sec-fetch-site")
        if method in SAFE_METHODS:
            if path.startswith("/api/") and fetch_site in {"same-site", "cross-site"}:
                return Refusal(403, "CrossOriginRequestError",
                               f"a {fetch_site} read of {path} is refused: only this server's page may read its API")
            return None
        content_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if content_type != JSON_TYPE:
            return Refusal(415, "UnsupportedMediaTypeError",
                           f"{method} needs Content-Type: application/json (got {content_type or 'none'})")
        origin = headers.get("origin")
        if origin is not None and not self.own_origin(origin, headers.get("host", "")):
            return Refusal(403, "CrossOriginRequestError",
                           f"a {method} from {origin} is refused: only this server's page may change labels")
        if fetch_site is not None and fetch_site != "same-origin":
            return Refusal(403, "CrossOriginRequestError",
                           f"a {fetch_site} {method} is refused: only this server's page may change labels")
        return None


_NO_TOKEN = Refusal(401, "TokenRequiredError",
                    "this review server needs its token: open the URL it printed at start (…/?token=…), or send "
                    "Authorization: Bearer <token>")


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value.strip("[]"))
    except ValueError:
        return False
    return True


def _is_unspecified(value: str) -> bool:
    try:
        return ipaddress.ip_address(value).is_unspecified
    except ValueError:
        return False


class RequestGuard:
    """ASGI middleware: applies an AccessPolicy to every HTTP request before the app sees it."""

    def __init__(self, app: Any, policy: AccessPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        port = int((scope.get("server") or ("", 80))[1] or 80)
        method, path = scope["method"], scope["path"]
        refusal = self.policy.host_refusal(headers, port)
        if refusal is None and self.policy.token is not None and method == "GET" and path == "/":
            given = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token", [""])[0]
            if given and self.policy.matches(given):
                await self._login(send, port)
                return
        refusal = (refusal or self.policy.token_refusal(headers, port)
                   or self.policy.origin_refusal(method, path, headers))
        if refusal is not None:
            logger.warning("refused %s %s (Host %r, Origin %r, Sec-Fetch-Site %r): %s", method, path,
                           headers.get("host"), headers.get("origin"), headers.get("sec-fetch-site"), refusal.error)
            await _respond(send, refusal.status, json.dumps({"error": refusal.error, "message": refusal.message}))
            return

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *SECURITY_HEADERS]}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _login(self, send: Any, port: int) -> None:
        """The token from the URL becomes an HttpOnly cookie; the address bar loses the secret."""
        assert self.policy.token is not None
        cookie = (f"{self.policy.cookie_name(port)}={self.policy.token}; Path=/; HttpOnly; SameSite=Strict")
        await send({"type": "http.response.start", "status": 303,
                    "headers": [(b"location", b"/"), (b"set-cookie", cookie.encode()), (b"cache-control", b"no-store"),
                                (b"content-length", b"0"), *SECURITY_HEADERS]})
        await send({"type": "http.response.body", "body": b""})


async def _respond(send: Any, status: int, body: str) -> None:
    data = body.encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
                            *SECURITY_HEADERS]})
    await send({"type": "http.response.body", "body": data})


def interface_addresses() -> list[str]:
    """This machine's own addresses others reach it by: the source address of its default route (a UDP socket
    "connected" to a documentation address sends nothing), IPv4 then IPv6; none when there is no route."""
    found = []
    for family, probe in ((socket.AF_INET, "192.0.2.1"), (socket.AF_INET6, "2001:db8::1")):
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as udp:
                udp.connect((probe, 9))
                address = str(udp.getsockname()[0]).split("%")[0]
        except OSError:
            continue
        if not is_loopback_name(address) and not _is_unspecified(address):
            found.append(address)
    return found


def page_urls(host: str, port: int, policy: AccessPolicy, *, addresses: Iterable[str] | None = None) -> list[str]:
    """The URLs to open, the token in each: the bound address; for a server bound to every address, this machine's
    own addresses first (a name may not resolve on the reviewer's machine), then its host name."""
    bare = host.strip("[]")
    shown = ([*(interface_addresses() if addresses is None else addresses), socket.gethostname()]
             if _is_unspecified(bare) else [bare])
    token = f"?token={policy.token}" if policy.token else ""
    return [f"http://{f'[{name}]' if ':' in name else name}:{port}/{token}" for name in shown]
