"""A model archive's answers computed by its own code/ hooks, the way SageMaker's container would compute them.

The gate scores an archive with `data_prep serve`'s Predictor only when the archive's code/ is byte for byte what
this repository's `package` writes (then the hooks are the Predictor). Any other archive is scored here, through
its own `inference.py` (hooks_driver.py), in an interpreter that sees only the standard library, the archive's code/
and this environment's third-party packages (never this repository's modules), so an edited hook that answers
[0.5, 0.5] is judged on those answers. Each image goes in as a PNG (lossless), as a client would send it.
"""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from common.artefacts import model_class_names
from common.errors import InputError

DRIVER = Path(__file__).with_name("hooks_driver.py")
CONTENT_TYPE = "image/png"


class HooksFailedError(InputError):
    """The archive's own hooks did not answer (an import, a hook or its answer failed): exit 2."""


def site_dirs() -> list[str]:
    """This environment's third-party packages: the folders, without their .pth files (this repository's editable
    install is one), so only what pip installed is importable."""
    paths = sysconfig.get_paths()
    return list(dict.fromkeys([paths["purelib"], paths["platlib"]]))


def png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8), "RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def hook_answers(model_dir: Path, bodies: Sequence[bytes], content_type: str = CONTENT_TYPE) -> list[list[float]]:
    """Each body's answer from the archive's hooks (model_dir: the unpacked archive, code/ inside)."""
    with tempfile.TemporaryDirectory(prefix="scones-hooks-") as scratch:
        requests = Path(scratch) / "requests.jsonl"
        requests.write_text("".join(json.dumps({"content_type": content_type,
                                                "body": base64.b64encode(body).decode()}) + "\n" for body in bodies))
        done = subprocess.run([sys.executable, "-I", "-S", "-B", str(DRIVER), str(model_dir), str(requests),
                               *site_dirs()], capture_output=True, text=True, check=False, cwd=scratch,
                              env={"PATH": "", "HOME": scratch})  # noqa: S603 - our driver, the archive's code
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        raise HooksFailedError(f"{model_dir}: the archive's code/inference.py hooks failed: {last}")
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    answers, loaded = lines[:-1], lines[-1:] or [{}]
    if Path(loaded[0].get("inference", "")).resolve() != (model_dir / "code" / "inference.py").resolve():
        raise HooksFailedError(f"{model_dir}: the hooks were not loaded from its code/inference.py")
    try:
        probabilities = [[float(value) for value in json.loads(answer["body"])] for answer in answers]
    except (ValueError, TypeError) as error:
        raise HooksFailedError(f"{model_dir}: its hooks answered something other than a JSON list of "
                               f"probabilities ({error})") from error
    if len(probabilities) != len(bodies):
        raise HooksFailedError(f"{model_dir}: its hooks answered {len(probabilities)} of {len(bodies)} requests")
    return probabilities


def hook_probabilities(model_dir: Path, images: np.ndarray, class_names: Sequence[str]) -> np.ndarray:
    """The archive's hooks' probabilities on `images` ((N, 32, 32, 3) uint8), columns in `class_names` order."""
    own = model_class_names(model_dir)
    answers = hook_answers(model_dir, [png(image) for image in images]) if len(images) else []
    if any(len(answer) != len(own) for answer in answers):
        raise HooksFailedError(f"{model_dir}: its hooks answered lists that are not one probability per class "
                               f"({len(own)})")
    probabilities = np.array(answers, dtype=np.float64).reshape(len(answers), len(own))
    return probabilities[:, [own.index(name) for name in class_names]]
