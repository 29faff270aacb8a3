"""The README is a front door a person reads in minutes, and the docs/ site builds strictly: every page in the nav,
every link (README's included) to a page and an anchor that exist."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import markdown

from common.settings import REPO_ROOT

README = REPO_ROOT / "README.md"
LINK = re.compile(r"\]\(([^)\s]+)\)")


def mkdocs_build(root: Path, site: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(root / "mkdocs.yml"),
               "--site-dir", str(site)]
    return subprocess.run(command, capture_output=True, text=True, cwd=root,
                          env={"PATH": "/usr/bin:/bin", "NO_MKDOCS_2_WARNING": "1"})


def anchors(page: Path) -> set[str]:
    """The heading ids MkDocs gives a page (the same toc extension and slugify)."""
    md = markdown.Markdown(extensions=["toc", "tables", "attr_list"])
    md.convert(page.read_text())

    def walk(tokens):
        for token in tokens:
            yield token["id"]
            yield from walk(token["children"])

    return set(walk(md.toc_tokens))  # type: ignore[attr-defined]


def test_the_readme_is_short_and_starts_with_the_two_commands():
    lines = README.read_text().splitlines()
    assert len(lines) <= 200
    assert lines[2] == "```bash" and lines[5] == "```"
    assert lines[3].startswith("make workflow   # fresh machine: set up .venv, then run the whole workflow offline")
    assert lines[4].startswith("make test       # fresh machine: set up .venv, then run the test suite")


def test_every_link_in_the_readme_reaches_a_file_and_its_anchor():
    links = [link for link in LINK.findall(README.read_text()) if "://" not in link]
    assert any(link.startswith("docs/") for link in links)
    for link in links:
        path, _, anchor = link.partition("#")
        target = REPO_ROOT / path
        assert target.is_file(), f"README.md links to {link}: no such file"
        if anchor:
            assert anchor in anchors(target), f"README.md links to {link}: {path} has no such heading"


def test_the_site_builds_strictly(tmp_path):
    built = mkdocs_build(REPO_ROOT, tmp_path / "site")
    assert built.returncode == 0, built.stderr
    assert (tmp_path / "site" / "runbook" / "index.html").is_file()


def test_an_orphan_page_or_a_broken_link_fails_the_build(tmp_path):
    root = tmp_path / "repo"
    root.mkdir()
    for name in ("mkdocs.yml", "README.md"):  # the Architecture page includes the README's picture
        shutil.copy(REPO_ROOT / name, root)
    shutil.copytree(REPO_ROOT / "docs", root / "docs")
    (root / "docs" / "orphan.md").write_text("# In no nav\n")
    quickstart = root / "docs" / "quickstart.md"
    quickstart.write_text(quickstart.read_text() + "\n[Gone](gone.md), [Monitoring](monitoring.md#nope).\n")
    built = mkdocs_build(root, tmp_path / "site")
    said = built.stdout + built.stderr
    assert built.returncode == 1
    assert "not included in the \"nav\" configuration:\n  - orphan.md" in said
    assert "contains a link 'gone.md', but the target is not found among documentation files" in said
    assert "contains a link 'monitoring.md#nope', but the doc 'monitoring.md' does not contain an anchor" in said
    assert "Aborted with 3 warnings in strict mode!" in said

