"""Renderers: the same report as terminal text, JSON or HTML."""
