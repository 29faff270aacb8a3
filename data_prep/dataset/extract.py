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

from common.progress import Progress
from data_prep.dataset.cifar import ChecksumError, verify_md5
from data_prep.errors import DataPrepError

CHUNK_SIZE = 1 << 16


class DownloadError(DataPrepError):
    """No URL produced a file with the expected checksum."""


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
) -> bool:
    """Make `destination` hold the verified file; return True if it had to be fetched, False if cached."""
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
    failures: list[str] = []
    for url in urls:
        started = time.monotonic()
        try:
            if url.startswith("file://"):
                _copy_local(url, part, progress)
            else:
                _stream_http(session, url, part, timeout, progress)
            verify_md5(part, md5)
        except (requests.RequestException, OSError, ChecksumError) as error:
            part.unlink(missing_ok=True)
            failures.append(f"{url}: {error}")
            log(f"failed after {time.monotonic() - started:.1f} s: {url}: {error}")
            continue
        shutil.move(part, destination)
        return True
    raise DownloadError(
        "could not get a valid copy from any URL:\n  " + "\n  ".join(failures)
        + f"\nIf you have the archive, pass it with --source /path/to/{destination.name}"
        " (or put it at " + str(destination) + ")."
    )
