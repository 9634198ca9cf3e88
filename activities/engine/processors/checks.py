"""Pieces of configuration that several processors share."""

from activities.engine.cache import BenefitConfig
from activities.engine.context import RunContext
from activities.engine.errors import StepFailed

benefit_schema = {"type": "string", "pattern": "^[a-z0-9]+(-[a-z0-9]+)*$", "maxLength": 100}


def require_benefit(ctx: RunContext, code: str) -> BenefitConfig:
    # Scheduling refuses an activity that lacks a benefit its template names; this guards a
    # benefit deleted while the activity runs.
    benefit = ctx.activity.benefits.get(code)
    if benefit is None:
        raise StepFailed(
            "unknown_benefit", f"Activity {ctx.activity.code} has no benefit {code!r}."
        )
    return benefit
