"""The orchestrator's web console: static pages at /ui that read the orchestrator API with the user's token."""

from orchestrator.console.routes import CONSOLE_RULES, CSP, console_routes

__all__ = ["CONSOLE_RULES", "CSP", "console_routes"]
