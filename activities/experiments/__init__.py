"""Experiments: A/B splits in chains and broadcasts, with conversions measured per variant.

- `assignment`: the pure, stable hash that places a customer in a variant.
- `services`: exposures (the `split` processor), conversion goals and their attribution.
- `broadcasts`: a broadcast's A/B test: test slice, winner, rollout to the rest.
- `selectors` and `stats`: results per variant, with a two-proportion test.
"""

from . import tasks  # noqa: F401  (registers the Celery tasks with every worker)
