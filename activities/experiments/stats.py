"""The comparison of a variant with the control, by statsmodels (nothing hand-rolled here).

- p-value: two-sided two-proportion z-test with the pooled proportion
  (`statsmodels.stats.proportion.proportions_ztest`).
- uplift: the difference of conversion rates, variant minus control, with its 95% confidence
  interval by Newcomb's hybrid score method (`confint_proportions_2indep`, compare="diff"),
  which keeps its coverage for small rates where the Wald interval does not.
- each variant's own rate: 95% Wilson interval (`proportion_confint`), for the chart.

"Not enough data yet" until both the variant and the control have at least MIN_EXPOSURES
exposures and at least MIN_OUTCOMES conversions and MIN_OUTCOMES non-conversions: below that
the normal approximation behind the z-test is not to be trusted, and a p-value shown anyway
invites reading noise as a result.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import gettext as _

MIN_EXPOSURES = 100
MIN_OUTCOMES = 5
CONFIDENCE = 0.95


def rule() -> str:
    """The "enough data" rule, in the reader's language."""
    return _(
        "A variant is compared with the control once both have at least %(exposures)d "
        "exposures and at least %(outcomes)d conversions and %(outcomes)d non-conversions."
    ) % {"exposures": MIN_EXPOSURES, "outcomes": MIN_OUTCOMES}


@dataclass(frozen=True)
class Comparison:
    uplift: float
    relative_uplift: float | None
    ci_low: float
    ci_high: float
    p_value: float


def enough_data(*, conversions: int, exposures: int) -> bool:
    return (
        exposures >= MIN_EXPOSURES
        and conversions >= MIN_OUTCOMES
        and exposures - conversions >= MIN_OUTCOMES
    )


def rate_interval(*, conversions: int, exposures: int) -> tuple[float, float] | None:
    if exposures <= 0:
        return None
    # Imported here: statsmodels takes most of a second to import, and only results need it.
    from statsmodels.stats.proportion import proportion_confint

    low, high = proportion_confint(conversions, exposures, alpha=1 - CONFIDENCE, method="wilson")
    return float(low), float(high)


def compare(
    *, conversions: int, exposures: int, control_conversions: int, control_exposures: int
) -> Comparison | None:
    """The variant against the control, or None while there is not enough data."""
    if not (
        enough_data(conversions=conversions, exposures=exposures)
        and enough_data(conversions=control_conversions, exposures=control_exposures)
    ):
        return None
    # Imported here: statsmodels takes most of a second to import, and only results need it.
    from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

    _z, p_value = proportions_ztest(
        [conversions, control_conversions],
        [exposures, control_exposures],
        alternative="two-sided",
    )
    low, high = confint_proportions_2indep(
        conversions,
        exposures,
        control_conversions,
        control_exposures,
        compare="diff",
        method="newcomb",
        alpha=1 - CONFIDENCE,
    )
    rate = conversions / exposures
    control_rate = control_conversions / control_exposures
    return Comparison(
        uplift=rate - control_rate,
        relative_uplift=rate / control_rate - 1 if control_rate else None,
        ci_low=float(low),
        ci_high=float(high),
        p_value=float(p_value),
    )
