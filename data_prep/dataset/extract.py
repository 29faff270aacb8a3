"""Extract: download the CIFAR-100 archive once, verified, from the first mirror that answers.

The file is streamed to `<name>.part`, checked against its MD5 and only then renamed into place,
so a truncated or wrong download is never mistaken for the dataset. A cached file with the right
checksum is reused without touching the network; one with the wrong checksum is deleted.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from urllib.parse import unquote, urlparse

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from common.errors import ExitStatus
from common.progress import Progress
from data_prep.dataset.cifar import ChecksumError, verify_md5
from data_prep.errors import DataPrepError

CHUNK_SIZE = 1 << 16


class DownloadError(DataPrepError):
    """No URL produced a file with the expected checksum (the network or the mirrors: exit status 3)."""

    exit_status = ExitStatus.ENVIRONMENT


def describe_failure(error: Exception) -> str:
    """A failed fetch in a few words (requests' own messages run to 300 characters of pool internals)."""
    if isinstance(error, requests.ConnectionError):
        return "could not connect"
    if isinstance(error, requests.Timeout):
        return "timed out"
    if isinstance(error, requests.HTTPError) and error.response is not None:
        return f"HTTP {error.response.status_code}"
    if isinstance(error, requests.exceptions.RetryError):
        return "the server kept failing"
    return str(error)


def _session(retries: int, backoff: float) -> requests.Session:
    retry = Retry(
        total=retries, connect=retries, read=retries, status=retries, backoff_factor=backoff,
        status_forcelist=(429, 500, 502, 503, 504), allowed_methods=("GET",), raise_on_status=True,
    )
    session = requests.Session()
    session.mount("http://", HTTPAdapter(max_retries=retry))
    session.mount("https://", HTTPAdapter(max_retries=retry))
    return session


def _copy_local(url: str, part: Path, progress: Progress | None) -> None:
    source = Path(unquote(urlparse(url).path))
    if not source.is_file():
        raise FileNotFoundError(f"{source} does not exist")
    total = source.stat().st_size
    with source.open("rb") as reader, part.open("wb") as writer:
        done = 0
        while chunk := reader.read(CHUNK_SIZE):
            writer.write(chunk)
            done += len(chunk)
            if progress:
                progress(done, total)


def _stream_http(session: requests.Session, url: str, part: Path, timeout: float,
                 progress: Progress | None) -> None:
    with session.get(url, stream=True, timeout=timeout) as response:
        response.raise_for_status()
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        done = 0
        with part.open("wb") as writer:
            for chunk in response.iter_content(CHUNK_SIZE):
                writer.write(chunk)
                done += len(chunk)
                if progress:
                    progress(done, total)


def download(
    urls: Sequence[str],
    destination: Path,
    md5: str | None,
    *,
    retries: int = 3,
    backoff: float = 0.5,
    timeout: float = 30.0,
    progress: Progress | None = None,
    log: Callable[[str], None] = print,
    local_copy_hint: str = "--source /path/to/cifar-100-python.tar.gz",
) -> bool:
    """Make `destination` hold the verified file; return True if it had to be fetched, False if cached.

    A failed URL is logged when another follows; when none is left, one DownloadError line says what failed last
    and how to use a local copy (`local_copy_hint`: the calling command's option)."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    if destination.exists():
        try:
            verify_md5(destination, md5)
            return False
        except ChecksumError as error:
            log(f"cached file is not valid, deleting it: {error}")
            destination.unlink()
    part = destination.with_name(destination.name + ".part")
    session = _session(retries, backoff)
    last = ""
    for number, url in enumerate(urls, 1):
        started = time.monotonic()
        try:
            if url.startswith("file://"):
                _copy_local(url, part, progress)
            else:
                _stream_http(session, url, part, timeout, progress)
            verify_md5(part, md5)
        except (requests.RequestException, OSError, ChecksumError) as error:
            part.unlink(missing_ok=True)
            last = f"{url}: {describe_failure(error)}"
            if number < len(urls):
                log(f"failed after {time.monotonic() - started:.1f} s: {last}; trying the next URL")
            continue
        shutil.move(part, destination)
        return True
    tried = f"any of {len(urls)} URLs" if len(urls) > 1 else "its URL"
    raise DownloadError(f"could not download {destination.name} from {tried} (last: {last}): with a local copy, "
                        f"pass {local_copy_hint.replace('cifar-100-python.tar.gz', destination.name)} "
                        f"(or put it at {destination})")
