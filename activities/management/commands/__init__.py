"""Operator commands: import/export activity definitions, API keys, the demo."""
