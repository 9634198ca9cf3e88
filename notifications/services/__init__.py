"""Writes: planning, sending, lifecycle, templates."""
