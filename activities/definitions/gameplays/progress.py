"""One customer's progress in one activity, as the storefront reads it: the balances every
activity has, plus the sections its gameplay contributes (`Gameplay.progress`)."""

from __future__ import annotations

from typing import Any

from activities import selectors
from activities.models import Activity
from segments.models import Customer

from .base import get


def customer_progress(*, activity: Activity, external_id: str) -> dict[str, Any]:
    # A customer the storefront never sent has no progress yet; an unsaved customer reads as
    # nothing done, so the storefront can show the empty state without a 404.
    customer = Customer.objects.filter(external_id=external_id).first() or Customer(
        external_id=external_id
    )
    gameplay = get(activity.template.gameplay) if activity.template.gameplay else None
    progress: dict[str, Any] = {
        "activity": activity.code,
        "customer": external_id,
        "gameplay": gameplay.code if gameplay else None,
        "balances": selectors.customer_progress_base(activity=activity, customer_id=customer.pk)
        if customer.pk
        else {code: 0 for code in activity.benefits.values_list("code", flat=True)},
    }
    if gameplay is not None:
        progress.update(gameplay.section(activity=activity, customer=customer))
    return progress
