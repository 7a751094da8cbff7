"""Declared dependencies match what the code imports: a module-level import of a third-party package must be a core
dependency; an import inside a function (loaded on demand) may come from an extra instead."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("protocol", "agents", "registry", "orchestrator", "scenarios")


def _name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    assert match, requirement
    return match.group(0).lower().replace("_", "-")


def _declared() -> tuple[set[str], set[str]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = {_name(r) for r in project["dependencies"]}
    extras = {_name(r) for group in project["optional-dependencies"].values() for r in group}
    return core, extras


def _imports() -> dict[str, set[tuple[str, bool]]]:
    """Top-level module name -> {(file, at module level)} for every absolute import in our packages."""
    found: dict[str, set[tuple[str, bool]]] = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            tree = ast.parse(path.read_text(), str(path))
            top_level = {id(node) for node in tree.body}
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                place = (str(path.relative_to(ROOT)), id(node) in top_level)
                for name in names:
                    found.setdefault(name.split(".")[0], set()).add(place)
    return found


def test_every_imported_distribution_is_declared() -> None:
    core, extras = _declared()
    owners = packages_distributions()
    problems = []
    for module, places in sorted(_imports().items()):
        if module in sys.stdlib_module_names or module in PACKAGES or module == "__future__":
            continue
        distributions = {d.lower().replace("_", "-") for d in owners.get(module, [])}
        assert distributions, f"{module} is imported ({sorted(places)[0][0]}) but no installed distribution provides it"
        at_module_level = any(top for _, top in places)
        allowed = core if at_module_level else core | extras
        if not distributions & allowed:
            where = sorted(p for p, top in places if top or not at_module_level)[0]
            kind = "core dependencies" if at_module_level else "dependencies or extras"
            problems.append(f"{module} ({'/'.join(sorted(distributions))}, imported in {where}) is not in the {kind}")
    assert not problems, "\n".join(problems)


def test_license_is_an_spdx_expression_and_shipped() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0"  # not the deprecated {text = ...} table
    assert project["license-files"] == ["LICENSE"]
    assert (ROOT / "LICENSE").read_text().lstrip().startswith("Apache License")
