"""Writes. Every change to activities' data goes through a function here (keyword-only, typed)."""
