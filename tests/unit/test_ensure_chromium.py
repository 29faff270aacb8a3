"""`make test` on a fresh machine: the page tests' browser is installed when missing (as root), or the run stops at
once with the one command to run; CI never skips a page test.

The missing browser is a path that does not exist (CHROMIUM_BIN), root and non-root are a fake `id`, and apt-get
is a fake that records what it was asked: the real browser is never touched.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from common.settings import REPO_ROOT
from tests.support import HANG_GUARD_S

SCRIPT = REPO_ROOT / "tools" / "ensure_chromium.sh"
PACKAGES = "chromium chromium-driver fonts-dejavu-core"


def fake_bin(folder: Path, uid: int, installs: Path | None) -> Path:
    """`id -u` answers `uid`; `apt-get` logs its arguments and DEBIAN_FRONTEND, and its `install` creates
    `installs` (what the chromium package puts on disk)."""
    folder.mkdir()
    (folder / "id").write_text(f"#!/bin/sh\n[ \"$1\" = -u ] && echo {uid}\n")
    create = f"[ \"$1\" = install ] && printf '#!/bin/sh\\n' > {installs} && chmod +x {installs}\n" if installs else ""
    (folder / "apt-get").write_text(
        f"#!/bin/sh\necho \"$DEBIAN_FRONTEND|$*\" >> {folder / 'apt.log'}\n{create}exit 0\n")
    for tool in ("id", "apt-get"):
        (folder / tool).chmod(0o755)
    return folder


def ensure(tmp_path: Path, chromium: Path, uid: int, installs: Path | None = None):
    bin_dir = fake_bin(tmp_path / "bin", uid, installs)
    environment = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "CHROMIUM_BIN": str(chromium)}
    done = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, env=environment, timeout=HANG_GUARD_S)
    log = bin_dir / "apt.log"
    return done, (log.read_text().splitlines() if log.exists() else [])


def test_a_browser_that_is_there_installs_nothing(tmp_path):
    chromium = tmp_path / "chromium"
    chromium.write_text("#!/bin/sh\n")
    chromium.chmod(0o755)
    done, apt = ensure(tmp_path, chromium, uid=1000)
    assert (done.returncode, done.stderr, apt) == (0, "", [])


def test_root_installs_debians_chromium_when_it_is_missing(tmp_path):
    chromium = tmp_path / "usr-bin" / "chromium"
    chromium.parent.mkdir()
    done, apt = ensure(tmp_path, chromium, uid=0, installs=chromium)
    assert done.returncode == 0, done.stderr
    assert apt == ["noninteractive|update -qq", f"noninteractive|install -y -qq --no-install-recommends {PACKAGES}"]
    assert done.stderr == f"{chromium} is missing: installing Debian's {PACKAGES} (apt-get)\n"


def test_without_root_it_stops_at_once_with_the_one_command_to_run(tmp_path):
    chromium = tmp_path / "missing" / "chromium"
    done, apt = ensure(tmp_path, chromium, uid=1000)
    assert (done.returncode, done.stdout, apt) == (2, "", [])
    assert done.stderr.splitlines() == [
        f"the page tests need Debian's Chromium ({chromium} is missing); install it with:",
        f"  sudo sh -c 'apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "
        f"{PACKAGES}'"]


def test_an_install_that_leaves_the_browser_missing_is_an_error(tmp_path):
    chromium = tmp_path / "elsewhere" / "chromium"
    done, apt = ensure(tmp_path, chromium, uid=0)  # apt-get "installs", but not at CHROMIUM_BIN
    assert done.returncode == 2 and len(apt) == 2
    assert done.stderr.splitlines()[-1] == (f"apt-get installed {PACKAGES}, but {chromium} is still missing: set "
                                            "CHROMIUM_BIN to the browser's path")


def test_make_test_and_ci_share_the_one_install_step():
    makefile = (REPO_ROOT / "Makefile").read_text()
    test_recipe = makefile.split("\ntest:", 1)[1].split("\n\n", 1)[0]
    assert "tools/ensure_chromium.sh" in test_recipe
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    assert "tools/ensure_chromium.sh" in ci and "apt-get" not in ci  # one copy of the install, not two


@pytest.mark.parametrize("test", ["tests/unit/test_browser_harness.py"])
def test_a_page_test_without_its_browser_fails_never_skips(tmp_path, test):
    environment = {**os.environ, "CHROMIUM_BIN": str(tmp_path / "no-chromium")}
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly", "-q", test],
                          capture_output=True, text=True, env=environment, cwd=REPO_ROOT, timeout=300)
    assert done.returncode == 1, done.stdout
    assert f"BrowserMissingError: {tmp_path / 'no-chromium'} not found" in done.stdout
    assert "1 error" in done.stdout.splitlines()[-1] and "skipped" not in done.stdout
