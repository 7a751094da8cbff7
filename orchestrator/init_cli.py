"""``scaleout init NAME``: scaffold an agent package (module, passing test, README, pyproject) in a new folder."""

from __future__ import annotations

import argparse
import keyword
import re
import sys
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any

__all__ = ["add_parser", "scaffold", "ScaffoldError"]

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,62}")
_OURS = {"protocol", "agents", "registry", "orchestrator", "scenarios", "tests", "test"}
_EXAMPLE = "example: scaleout init triage-agent && cd triage-agent && pytest"


class ScaffoldError(ValueError):
    """A name or folder ``scaleout init`` cannot use; the message says which and what to do."""


def add_parser(subparsers: Any) -> None:
    """Register ``init`` on the top-level ``scaleout`` parser."""
    init = subparsers.add_parser(
        "init",
        help="scaffold an agent package in a new folder (module, test, README, pyproject)",
        description="Create NAME/ with NAME's module (an Agent with one typed skill), a test with a Scripted "
        "brain that passes, a README and a pyproject.toml depending on scaleout.",
        epilog=_EXAMPLE,
    )
    init.add_argument("name", help="the agent's name: letters, digits, '-' or '_' (the module is NAME with '_')")
    init.add_argument("--dir", default=".", help="folder to create NAME/ in (default: the current one)")
    init.set_defaults(func=_init)


def scaffold(name: str, parent: Path) -> list[Path]:
    """Write the agent package ``parent/name``; the files written. Raises ``ScaffoldError`` on a bad name or an
    existing folder (nothing is overwritten)."""
    module = _module_name(name)
    target = Path(parent) / name
    if target.exists():
        raise ScaffoldError(f"{target} already exists; pick another NAME or --dir (nothing was overwritten)")
    if not Path(parent).is_dir():
        raise ScaffoldError(f"--dir {parent} is not a folder; create it first")
    templates = resources.files("orchestrator") / "templates" / "agent"
    files = {
        f"{module}.py": "agent.py.tmpl",
        f"test_{module}.py": "test_agent.py.tmpl",
        "README.md": "README.md.tmpl",
        "pyproject.toml": "pyproject.toml.tmpl",
    }
    target.mkdir()
    written = []
    for filename, template in files.items():
        text = Template((templates / template).read_text(encoding="utf-8")).substitute(name=name, module=module)
        path = target / filename
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def _module_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ScaffoldError(
            f"{name!r} is not a usable agent name: start with a letter, then letters, digits, '-' or '_' "
            "(63 characters at most), e.g. triage-agent"
        )
    module = name.replace("-", "_").lower()
    if keyword.iskeyword(module) or module in _OURS or module in sys.stdlib_module_names:
        raise ScaffoldError(f"{name!r} would make a module {module!r} that hides another one; pick another name")
    return module


def _init(args: argparse.Namespace) -> int:
    try:
        written = scaffold(args.name, Path(args.dir))
    except ScaffoldError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    folder = written[0].parent
    print(f"created {folder}/: " + ", ".join(p.name for p in written))
    print(f"next: cd {folder} && pytest && scaleout agent serve {written[0].stem}:agent --port 8000")
    return 0
