"""Wire formats only: pydantic models and codecs for A2A 1.0 and negotiation messages.

This package imports nothing else of scaleout; every other package builds on it.
"""
