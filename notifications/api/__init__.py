"""The broadcasts API, under /api/v1/."""
