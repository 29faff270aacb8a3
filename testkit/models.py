"""Served models for scenarios: a copy of a trained model that is confidently wrong on one class.

The copy's ONNX graph ends in one more node: its probabilities times a class-by-class matrix that moves 99% of
the `wrong_on` class's probability to `read_as` (the rest stays). A `wrong_on` image the original recognises
(p = 0.95) is then read as `read_as` at about 0.95 x 0.99 + 0.05 = 0.99: confidently wrong, past any threshold;
every other class is unchanged (and a little more certain). What a new e-bike that the model reads as
"bicycle" at 0.99 looks like from the outside: nothing in the confidence gives it away.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from common.artefacts import (
    BASELINE_FILE,
    model_class_names,
    read_baseline,
    read_model_metadata,
    write_model_metadata,
)
from common.model_archive import SHA256_KEY, bind_baseline, sha256_file

MOVED = 0.99


def confidently_wrong(model_dir: Path, out: Path, *, wrong_on: str, read_as: str) -> Path:
    """A copy of `model_dir` in `out` whose answers for `wrong_on` images are `read_as` (see the module docstring)."""
    import onnx
    from onnx import helper, numpy_helper

    names = model_class_names(model_dir)
    moving, into = names.index(wrong_on), names.index(read_as)
    matrix = np.eye(len(names), dtype=np.float32)
    matrix[moving, moving], matrix[moving, into] = 1 - MOVED, MOVED
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(model_dir, out)
    metadata = read_model_metadata(out)
    path = out / str(metadata.get("model_file", "model.onnx"))
    model = onnx.load(str(path))
    graph = model.graph
    original = graph.output[0].name
    graph.output[0].name = f"{original}_before_{wrong_on}_read_as_{read_as}"
    for node in graph.node:
        node.output[:] = [graph.output[0].name if name == original else name for name in node.output]
    graph.initializer.append(numpy_helper.from_array(matrix, name="confidently_wrong_matrix"))
    graph.node.append(helper.make_node("MatMul", [graph.output[0].name, "confidently_wrong_matrix"], [original]))
    graph.output[0].name = original
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    metadata = {**metadata, SHA256_KEY: sha256_file(path),  # the bytes it now is
                "scenario": f"confidently wrong: {wrong_on} read as {read_as} ({MOVED:.0%} of its probability moved)"}
    write_model_metadata(out, bind_baseline(out, read_baseline(out / BASELINE_FILE), metadata))  # its baseline now
    return out
