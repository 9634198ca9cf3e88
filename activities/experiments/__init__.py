"""Experiments: the operator's side of A/B tests, on top of the engine and of notifications.

- `services`: an activity experiment's record and every experiment's conversion goals.
- `broadcasts`: a broadcast's A/B test: test slice, winner, rollout to the rest.
- `selectors` and `stats`: results per variant, with a two-proportion test.
- `tasks`: the broadcast tests' clock and their launches and rollouts.

The engine's part of a split lives below, where the engine imports it: the stable hash in
`activities.engine.assignment`, exposures in `activities.services.exposures`, conversions in
`activities.services.conversions` (docs/decisions/0007-experiments-layering.md).
"""
