"""Runnable scenario scripts built on the platform; each is importable and tested."""
