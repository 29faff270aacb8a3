"""`make test-stress` (tools/stress.py): N runs under a CPU burner per core, any failure fails, the burners always
stopped; and the suite's own order is random, its seed printed (pytest-randomly), as CI runs it."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from common.settings import REPO_ROOT
from tests.support import HANG_GUARD_S, wait_until

# The command under stress: records its siblings (the burners: the stress tool's other children), then exits with
# the status the test scripted for this run.
RUN = """
import json, os, sys
from pathlib import Path
log, statuses = Path(sys.argv[1]), json.loads(sys.argv[2])
parent, me = os.getppid(), os.getpid()
siblings = [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) != me
            and Path(f"/proc/{p}/stat").exists() and Path(f"/proc/{p}/stat").read_text().split()[3] == str(parent)]
runs = json.loads(log.read_text()) if log.exists() else []
runs.append(siblings)
log.write_text(json.dumps(runs))
if statuses[len(runs) - 1] == "wait":
    Path(sys.argv[3]).write_text("running")
    import time
    while True:
        time.sleep(1)
sys.exit(statuses[len(runs) - 1])
"""


def stress(tmp_path: Path, statuses: list, runs: int, burners: int = 2) -> subprocess.Popen[str]:
    command = [sys.executable, "-c", RUN, str(tmp_path / "runs.json"), json.dumps(statuses), str(tmp_path / "ready")]
    return subprocess.Popen([sys.executable, "-m", "tools.stress", "--runs", str(runs), "--burners", str(burners),
                             "--", *command], cwd=REPO_ROOT, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)


def alive(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().split()[2] != "Z"
    except OSError:
        return False


def test_every_run_goes_under_load_and_one_failure_fails_the_whole(tmp_path):
    process = stress(tmp_path, [0, 1, 0], runs=3)
    output, _ = process.communicate(timeout=HANG_GUARD_S)
    assert process.returncode == 1, output
    runs = json.loads((tmp_path / "runs.json").read_text())
    assert len(runs) == 3 and all(len(siblings) == 2 for siblings in runs)  # both burners, in every run
    assert runs[0] == runs[1] == runs[2]  # the same burners from the first run to the last
    assert not any(alive(pid) for pid in runs[0])  # stopped at the end
    assert output.splitlines()[-1] == "stress: 2 of 3 runs passed under load (exit statuses [0, 1, 0])"


def test_all_runs_passing_passes(tmp_path):
    process = stress(tmp_path, [0, 0], runs=2, burners=1)
    output, _ = process.communicate(timeout=HANG_GUARD_S)
    assert (process.returncode, output.splitlines()[-1]) == (0, "stress: 2 of 2 runs passed under load")


def test_sigterm_stops_the_burners_too(tmp_path):
    process = stress(tmp_path, ["wait"], runs=1)
    wait_until(lambda: (tmp_path / "ready").exists(), "the run under stress to start")
    (burners,) = json.loads((tmp_path / "runs.json").read_text())
    assert len(burners) == 2 and all(alive(pid) for pid in burners)
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=HANG_GUARD_S)
    assert process.returncode == 128 + signal.SIGTERM
    assert not any(alive(pid) for pid in burners)


def test_the_suite_runs_in_a_random_order_and_prints_its_seed(tmp_path):
    (tmp_path / "test_order.py").write_text("".join(f"def test_{i}():\n    print('ran {i}')\n\n" for i in range(12)))

    def order(seed: int) -> tuple[str, list[str]]:
        done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-s",
                               f"--randomly-seed={seed}", str(tmp_path / "test_order.py")], cwd=tmp_path,
                              capture_output=True, text=True, timeout=HANG_GUARD_S,
                              env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
        return done.stdout, re.findall(r"ran (\d+)", done.stdout)

    header, first = order(1)
    _, second = order(2)
    assert "Using --randomly-seed=1" in header  # the seed that repeats this order
    assert sorted(first, key=int) == sorted(second, key=int) == [str(i) for i in range(12)]
    assert first != second  # two seeds, two orders
    addopts = (REPO_ROOT / "pyproject.toml").read_text().split("addopts = ", 1)[1].splitlines()[0]
    assert "randomly" not in addopts and "-q" not in addopts  # the suite's own runs: random, the header shown
