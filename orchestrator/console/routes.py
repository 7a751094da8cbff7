"""The console's routes: ``GET /ui`` (the page) and ``GET /ui/{path}`` (its scripts and styles; a path without a
file suffix is a deep link and gets the page too), both public.

The assets ship in the package (``static/``) and are read once; nothing is fetched from elsewhere, and the
Content-Security-Policy header lets the page load scripts, styles and data from this server only. Every data call
the page makes goes to the orchestrator API with the user's bearer token, so the shell itself holds nothing secret.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from protocol.access import PUBLIC, Rule

__all__ = ["CONSOLE_RULES", "CSP", "STATIC_DIR", "console_routes", "load_assets"]

STATIC_DIR = Path(__file__).parent / "static"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
"""No remote script, style, image, font or connection; no inline script; no framing by other sites."""

CONSOLE_RULES: list[Rule] = [Rule.of("GET", "/ui", PUBLIC), Rule.of("GET", "/ui/{path:path}", PUBLIC)]
"""The console's shell is public: it holds no data (data calls need the API's scopes)."""

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def load_assets(folder: Path = STATIC_DIR) -> dict[str, tuple[bytes, str]]:
    """Every servable file of ``folder`` by its name: (content, media type)."""
    return {
        path.name: (path.read_bytes(), _TYPES[path.suffix])
        for path in sorted(folder.iterdir())
        if path.is_file() and path.suffix in _TYPES
    }


def console_routes() -> list[BaseRoute]:
    """The console's routes (read the assets now: a missing file fails at start, not at the first visit)."""
    assets = load_assets()
    if "index.html" not in assets:
        raise RuntimeError(f"the console's index.html is missing from {STATIC_DIR}; reinstall scaleout")

    async def page(_: Request) -> Response:
        body, media = assets["index.html"]
        return Response(body, media_type=media, headers=_HEADERS)

    async def asset(request: Request) -> Response:
        name = request.path_params["path"]
        if "." not in name.rsplit("/", 1)[-1]:  # a deep link (/ui/runs/ID): the page, which routes by itself
            return await page(request)
        found = assets.get(name)
        if found is None:
            return JSONResponse(
                {"error": {"type": "NotFound", "message": f"no console asset {name[:100]!r}; open /ui"}},
                status_code=404,
                headers=_HEADERS,
            )
        return Response(found[0], media_type=found[1], headers=_HEADERS)

    return [Route("/ui", page, methods=["GET"]), Route("/ui/{path:path}", asset, methods=["GET"])]
