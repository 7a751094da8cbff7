"""The API reference pages in docs/api/, rendered from the OpenAPI documents of the orchestrator and the registry.

``python -m orchestrator.openapi --markdown`` (or ``python -m orchestrator.api_docs --markdown``) writes
docs/api/orchestrator.md and docs/api/registry.md; a test fails when the committed pages differ from these.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from orchestrator.openapi import orchestrator_document
from registry.openapi import BEARER, registry_document

__all__ = ["API_DOCS", "GENERATOR", "markdown", "api_pages", "write_api_docs", "main"]

GENERATOR = "python -m orchestrator.openapi --markdown"
API_DOCS = Path(__file__).resolve().parent.parent / "docs" / "api"


def _type_of(schema: dict[str, Any]) -> str:
    """A short readable type for a JSON schema (``AgentRecord``, ``array of AgentRecord``, ``string``)."""
    if "$ref" in schema:
        return "`" + schema["$ref"].rsplit("/", 1)[-1] + "`"
    if schema.get("type") == "array":
        return "array of " + _type_of(schema.get("items", {}))
    if "anyOf" in schema:
        return " or ".join(_type_of(s) for s in schema["anyOf"])
    if "enum" in schema:
        return " \\| ".join(f"`{v}`" for v in schema["enum"])
    if "const" in schema:
        return f"`{schema['const']}`"
    return str(schema.get("type", "any"))


def markdown(document: dict[str, Any], *, generator: str) -> str:
    """An API reference page for ``document``: each operation (scope, parameters, body, responses), then the
    schemas' fields. ``generator`` names the command that made it (the page says how to regenerate it)."""
    info = document["info"]
    lines = [
        f"# {info['title']} HTTP API",
        "",
        f"Generated from the OpenAPI document (`GET /openapi.json`) by `{generator}`; do not edit by hand.",
        "",
        info["description"],
        "",
        "Authentication: `Authorization: Bearer <JWT>` with the scope each operation names; a loopback server with "
        'no keys needs no token. Every error is `{"error": {"type": KIND, "message": MSG}}`.',
        "",
        "| method | path | scope | summary |",
        "|---|---|---|---|",
    ]
    for path, methods in document["paths"].items():
        for method, op in methods.items():
            lines.append(f"| {method.upper()} | `{path}` | {op['x-scope']} | {op['summary']} |")
    for path, methods in document["paths"].items():
        for method, op in methods.items():
            lines += ["", f"## {method.upper()} `{path}`", "", op["summary"] + ".", "", f"Scope: `{op['x-scope']}`."]
            if op.get("description"):
                lines += ["", op["description"]]
            params = op.get("parameters", [])
            if params:
                lines += ["", "| parameter | in | type | description |", "|---|---|---|---|"]
                for p in params:
                    text = (p.get("description") or "").replace("|", "\\|")
                    lines.append(f"| `{p['name']}` | {p['in']} | {_type_of(p['schema'])} | {text} |")
            body = op.get("requestBody")
            if body:
                media, content = next(iter(body["content"].items()))
                lines += ["", f"Body ({media}): {_type_of(content['schema'])}"]
            lines += ["", "| status | body | meaning |", "|---|---|---|"]
            for status, reply in op["responses"].items():
                content = reply.get("content")
                what = ""
                if content:
                    media, spec = next(iter(content.items()))
                    what = _type_of(spec["schema"]) + ("" if media == "application/json" else f" ({media})")
                lines.append(f"| {status} | {what} | {reply['description']} |")
    lines += ["", "## Schemas"]
    for name, schema in sorted(document["components"]["schemas"].items()):
        lines += ["", f"### {name}", ""]
        if schema.get("description"):
            lines += [" ".join(schema["description"].split()), ""]
        props = schema.get("properties")
        if not props:
            lines.append(f"Type: {_type_of(schema)}")
            continue
        required = set(schema.get("required", []))
        lines += ["| field | type | required | description |", "|---|---|---|---|"]
        for prop, spec in props.items():
            text = " ".join(str(spec.get("description", "")).split()).replace("|", "\\|")
            lines.append(f"| `{prop}` | {_type_of(spec)} | {'yes' if prop in required else ''} | {text} |")
    security = document["components"]["securitySchemes"][BEARER]
    lines += ["", "## Security", "", security["description"], ""]
    return "\n".join(lines)


def api_pages() -> dict[str, str]:
    """The docs/api/ pages by file name: orchestrator.md and registry.md."""
    return {
        "orchestrator.md": markdown(orchestrator_document(), generator=GENERATOR),
        "registry.md": markdown(registry_document(), generator=GENERATOR),
    }


def write_api_docs(folder: Path = API_DOCS) -> list[Path]:
    """Write the docs/api/ pages into ``folder``; the paths written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in api_pages().items():
        path = folder / name
        path.write_text(text)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    """``python -m orchestrator.openapi [--markdown [--out DIR]] [--registry]``: write the pages or print JSON."""
    parser = argparse.ArgumentParser(prog="python -m orchestrator.openapi", description=__doc__)
    parser.add_argument("--markdown", action="store_true", help="write docs/api/orchestrator.md and registry.md")
    parser.add_argument("--out", type=Path, default=API_DOCS, help="folder for --markdown (default docs/api)")
    parser.add_argument("--registry", action="store_true", help="print the registry's document instead")
    args = parser.parse_args(argv)
    if args.markdown:
        for path in write_api_docs(args.out):
            print(f"wrote {path}")
        return 0
    print(json.dumps(registry_document() if args.registry else orchestrator_document(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
