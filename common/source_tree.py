"""This repository's Python source as files and imports: where each package lives, what each module imports.

Two readers: the layering check (`python -m tools.layering`) and packaging (`data_prep package`, the SageMaker
training source), which ships a module together with every module of ours it imports, at any depth, copied
from here: one implementation, never a hand-kept copy.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Container, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from common.settings import REPO_ROOT

# The packages the SAM layers ship live under layers/; every other package at the repository's root.
PACKAGE_ROOTS = {"imaging": REPO_ROOT / "layers" / "imaging" / "imaging",
                 "driftcheck": REPO_ROOT / "layers" / "driftcheck" / "driftcheck",
                 "modelquality": REPO_ROOT / "layers" / "modelquality" / "modelquality"}
FIRST_PARTY = ("imaging", "driftcheck", "modelquality", "common", "monitoring", "data_prep", "workflow", "review",
               "functions", "testkit", "tools", "bench")


@dataclass(frozen=True)
class Import:
    source: str  # importing module, dotted
    target: str  # imported module (or package), dotted
    line: int


def package_dir(package: str) -> Path:
    return PACKAGE_ROOTS.get(package, REPO_ROOT / package)


def modules(package: str) -> Iterator[tuple[str, Path]]:
    root = package_dir(package)
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join([package, *parts]), path


def imports_of(module: str, path: Path) -> Iterator[Import]:
    """Every import statement in the file, at any depth (a function-level import is still a dependency)."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".") if is_package else module.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                yield Import(module, f"{base}.{alias.name}", node.lineno)


def resolve(target: str, known: Container[str]) -> str | None:
    """The longest known module that `target` names (`a.b.c` may be module a.b's attribute c)."""
    parts = target.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in known:
            return candidate
    return None


@dataclass(frozen=True)
class Closure:
    """What a set of modules needs: our modules (dotted name -> file) and the other top-level modules imported."""

    files: dict[str, Path]
    external: frozenset[str]  # third-party and standard-library top-level names

    @property
    def third_party(self) -> frozenset[str]:
        return frozenset(name for name in self.external if name not in sys.stdlib_module_names)

    def archive_names(self) -> dict[str, Path]:
        """Each file's path inside a folder that is put on sys.path (`data_prep/serving/predictor.py`)."""
        names = {}
        for module, path in self.files.items():
            parts = module.split(".")
            names["/".join(parts) + ("/__init__.py" if path.name == "__init__.py" else ".py")] = path
        return names


def closure(roots: Iterable[str], *, leave_out: Iterable[str] = ()) -> Closure:
    """Every module of ours that `roots` import, at any depth, with the packages (`__init__.py`) above each.

    `leave_out` names modules not followed (imports of them are left to the caller to provide)."""
    known = {module: path for package in FIRST_PARTY for module, path in modules(package)}
    skipped = set(leave_out)
    files: dict[str, Path] = {}
    external: set[str] = set()
    pending = list(roots)
    while pending:
        module = pending.pop()
        if module in files or module in skipped:
            continue
        files[module] = known[module]
        parts = module.split(".")
        pending += [".".join(parts[:end]) for end in range(1, len(parts))]  # the packages above it
        for item in imports_of(module, known[module]):
            top = item.target.split(".")[0]
            if top not in FIRST_PARTY:
                external.add(top)
                continue
            target = resolve(item.target, known)
            if target is not None:
                pending.append(target)
    return Closure(dict(sorted(files.items())), frozenset(external - {"__future__"}))
