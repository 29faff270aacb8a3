"""Run a model archive's own inference hooks on requests, as SageMaker's PyTorch inference container calls them.

Executed as a script by data_prep.serving.hooks_runner, in an isolated interpreter (`-I -S -B`): it imports
nothing of this repository; sys.path is the archive's code/ folder (what the container puts first) and the
third-party packages the runner names. `model_fn(model_dir)` once, then per request `input_fn(body,
content_type)`, `predict_fn(data, model)`, `output_fn(prediction, accept)`; one JSON line per answer, then one
naming the file the hooks were loaded from. A hook left out is refused: the container would fall back to its
TorchScript default, which is not what the archive's author wrote.

    python -I -S -B hooks_driver.py MODEL_DIR REQUESTS.jsonl SITE_DIR...
"""

import base64
import json
import sys
from pathlib import Path

HOOKS = ("model_fn", "input_fn", "predict_fn", "output_fn")


def main(model_dir: str, requests_file: str, *site: str) -> None:
    sys.path[:0] = [str(Path(model_dir) / "code"), *site]
    import inference  # the archive's code/inference.py

    missing = [name for name in HOOKS if not callable(getattr(inference, name, None))]
    if missing:
        raise SystemExit(f"code/inference.py defines no {', '.join(missing)}: SageMaker's container would use its "
                         "TorchScript default instead")
    model = inference.model_fn(model_dir)
    for line in Path(requests_file).read_text().splitlines():
        request = json.loads(line)
        data = inference.input_fn(base64.b64decode(request["body"]), request["content_type"])
        answer = inference.output_fn(inference.predict_fn(data, model), "application/json")
        body = answer[0] if isinstance(answer, tuple) else answer
        print(json.dumps({"body": body.decode() if isinstance(body, bytes | bytearray) else str(body)}), flush=True)
    print(json.dumps({"inference": inference.__file__}), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
