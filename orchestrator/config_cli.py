"""``scaleout config``: each effective setting (database, orchestrator and registry URLs, token file) and where
it came from (default, a config file, an environment variable); see docs/configuration.md."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from protocol.settings import ConfigError, config_files, data_dir, effective_settings

__all__ = ["add_parser", "show_config"]


def add_parser(subparsers: Any) -> None:
    """Register ``config`` on the top-level ``scaleout`` parser."""
    config = subparsers.add_parser(
        "config",
        help="show each effective setting and where it came from",
        epilog="examples:\n  scaleout config\n  SCALEOUT_HOME=/srv/scaleout scaleout config --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    config.add_argument("--json", action="store_true", help="print the settings as JSON")
    config.set_defaults(func=show_config)


def show_config(args: argparse.Namespace) -> int:
    """Print the data directory, the config files read, and each setting with its source (exit 2: a bad file)."""
    try:
        settings = effective_settings()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        document: dict[str, Any] = {"data_dir": str(data_dir()), "config_files": [str(p) for p in config_files()]}
        document["settings"] = {name: {"value": _redact(s.value), "source": s.source} for name, s in settings.items()}
        print(json.dumps(document, indent=2))
        return 0
    print(f"data directory  {data_dir()}  ($SCALEOUT_HOME, else ~/.local/share/scaleout)")
    print(f"config files    {', '.join(str(p) for p in config_files()) or '(none: ./scaleout.toml, DATA/config.toml)'}")
    width = max(len(name) for name in settings)
    for name, chosen in settings.items():
        print(f"{name:<{width}}  {_redact(chosen.value):<50}  from {chosen.source}")
    return 0


def _redact(url: str) -> str:
    """A URL without its password (a database URL may hold one)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@", 1)
    return url
