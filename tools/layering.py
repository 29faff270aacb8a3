"""The package layering rule, and a check of the code against it (`python -m tools.layering`).

Packages sit on numbered layers; a package may import packages on lower layers only (never one on
its own layer or above), and no module may take part in an import cycle. The Lambdas in functions/
may import, of ours, only what their SAM layers ship (`imaging`, `driftcheck`, `modelquality`). The layering
table of docs/architecture.md is this list; a test keeps the two the same.
"""

from __future__ import annotations

import sys
from pathlib import Path

from common.settings import REPO_ROOT
from common.source_tree import Import, imports_of, modules, resolve

__all__ = ["LAYERS", "Import", "cycles", "graph", "layer_of", "violations"]

# Bottom first. Each entry: the packages of one layer.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("imaging", "driftcheck", "modelquality"),  # the SAM layers' packages: ImagingLayer (Pillow), DriftCheckLayer
    # (numpy), ModelQualityLayer (the standard library)
    ("common",),
    ("monitoring",),
    ("data_prep",),
    ("workflow", "review"),  # the offline run and AWS operations; the review page
    ("testkit", "tools"),  # for tests, benchmarks and CI only: no product code may import them
    ("bench",),
)
LAMBDA_IMPORTABLE = ("imaging", "driftcheck", "modelquality")  # shipped by the ImagingLayer, DriftCheckLayer and
# ModelQualityLayer


def layer_of(package: str) -> int | None:
    return next((index for index, names in enumerate(LAYERS) if package in names), None)


TEST_TREE = "tests"  # may import anything; nothing may import it (shared helpers live in testkit)


def graph() -> tuple[dict[str, Path], list[Import]]:
    packages = [name for layer in LAYERS for name in layer] + ["functions"]
    files = {module: path for package in packages for module, path in modules(package)}
    known = set(files) | {module for module, _ in modules(TEST_TREE)}  # a target, never scanned as a source
    edges = []
    for module, path in files.items():
        for item in imports_of(module, path):
            target = resolve(item.target, known)
            if target is not None and target != module:
                edges.append(Import(module, target, item.line))
    return files, edges


def cycles(files: dict[str, Path], edges: list[Import]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    successors: dict[str, set[str]] = {module: set() for module in files}
    for edge in edges:
        successors[edge.source].add(edge.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(successors.get(node, ())):  # a test-tree target has no edges here
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(files)))
    for module in sorted(files):
        if module not in index:
            visit(module)
    return found


def violations() -> list[str]:
    """Every import that breaks the rule, and every cycle, as `file:line: why` lines."""
    files, edges = graph()
    problems = []
    for edge in edges:
        source_package, target_package = edge.source.split(".")[0], edge.target.split(".")[0]
        where = f"{files[edge.source].relative_to(REPO_ROOT)}:{edge.line}"
        if source_package == "functions":
            function = edge.source.split(".")[1] if "." in edge.source else ""
            same_function = edge.target.split(".")[:2] == ["functions", function]
            if target_package not in LAMBDA_IMPORTABLE and not same_function:
                problems.append(f"{where}: a Lambda imports {edge.target}; only its layers' packages "
                                f"({', '.join(LAMBDA_IMPORTABLE)}) reach it on AWS")
            continue
        if source_package == target_package:
            continue
        if target_package == TEST_TREE:
            problems.append(f"{where}: {source_package} imports {edge.target}: nothing outside tests/ may import "
                            "the test tree (shared helpers belong in testkit)")
            continue
        source_layer, target_layer = layer_of(source_package), layer_of(target_package)
        if target_package == "functions" or source_layer is None or target_layer is None \
                or target_layer >= source_layer:
            problems.append(f"{where}: {source_package} (layer {source_layer}) imports {edge.target} "
                            f"({target_package}, layer {target_layer}): only lower layers may be imported")
    problems += [f"import cycle: {' -> '.join(cycle)}" for cycle in cycles(files, edges)]
    return problems


def main() -> None:
    problems = violations()
    for problem in problems:
        print(problem)
    print(f"{len(problems)} layering problem(s)" if problems else "layering: every import runs down, no cycles")
    raise SystemExit(1 if problems else 0)


if __name__ == "__main__":
    main()
