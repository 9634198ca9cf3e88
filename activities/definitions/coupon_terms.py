"""A coupon benefit's code settings and fixed validity in a definition document.

    coupon: {codes: pool}                                   # codes uploaded after import
    coupon: {prefix: SPRING-, length: 10, days: 30}         # generated codes, N days
    coupon: {first_day: "2026-12-01", last_day: "2026-12-31"}

Fixed validity is written as days in the document's zone, as the admin shows it: usable from
the start of the first day until the local midnight that ends the last one. Defaults are left
out (generated codes, no prefix, 12 characters, no validity), and a coupon at every default
has no `coupon` key. A pool's codes are not part of a definition (a code exists once in
Gambit), so a pool benefit carries no stock: its stock is what an upload adds.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils.translation import gettext as _

from activities.engine.errors import ConfigError
from activities.models import Benefit, BenefitKind, CodeSource
from activities.services import coupon_codes

DEFAULT_LENGTH = Benefit._meta.get_field("code_length").default
DAY = {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}$"}


def coupon_schema(max_int: int) -> dict[str, Any]:
    return {
        "type": "object",
        "description": "Coupons only: where the codes come from and how long a coupon is "
        "usable. Days are in the document's timezone.",
        "properties": {
            "codes": {"enum": list(CodeSource.values), "default": CodeSource.GENERATED.value},
            "prefix": {"type": "string", "pattern": r"^[A-Z0-9-]{1,16}$"},
            "length": {"type": "integer", "minimum": 8, "maximum": 32, "default": DEFAULT_LENGTH},
            "first_day": {**DAY, "description": "Usable from the start of this day."},
            "last_day": {**DAY, "description": "Usable until the midnight that ends this day."},
            "days": {
                "type": "integer",
                "minimum": 1,
                "maximum": max_int,
                "description": "Usable for this many days counting the day of issue; with "
                "last_day too, the earlier end wins.",
            },
        },
        "additionalProperties": False,
    }


def export_coupon(benefit: Benefit, timezone_name: str) -> dict[str, Any]:
    """The benefit's `coupon` entry; empty when every setting is at its default."""
    entry: dict[str, Any] = {}
    if benefit.code_source == CodeSource.POOL:
        entry["codes"] = CodeSource.POOL.value
    else:
        if benefit.code_prefix:
            entry["prefix"] = benefit.code_prefix
        if benefit.code_length != DEFAULT_LENGTH:
            entry["length"] = benefit.code_length
    first, last = coupon_codes.first_and_last_day(
        valid_from=benefit.valid_from, valid_until=benefit.valid_until, timezone_name=timezone_name
    )
    if first is not None:
        entry["first_day"] = first.isoformat()
    if last is not None:
        entry["last_day"] = last.isoformat()
    if benefit.valid_days is not None:
        entry["days"] = benefit.valid_days
    return entry


def _day(entry: dict[str, Any], key: str, path: str, errors: list[ConfigError]) -> dt.date | None:
    if key not in entry:
        return None
    try:
        return dt.date.fromisoformat(entry[key])
    except ValueError:
        errors.append(
            ConfigError(
                f"{path}.{key}",
                _("%(value)s is not a date.") % {"value": entry[key]},
                "invalid_date",
            )
        )
        return None


def check_coupon(
    item: dict[str, Any], path: str, timezone_name: str | None, errors: list[ConfigError]
) -> dict[str, Any]:
    """The Benefit fields (`COUPON_TERMS`) the item's `coupon` entry sets, with its problems
    added to `errors`; `timezone_name` is None when the document's zone is not valid."""
    entry = item.get("coupon")
    if entry is None:
        return {}
    if item["kind"] != BenefitKind.COUPON:
        errors.append(
            ConfigError(
                f"{path}.coupon",
                _("Only a coupon benefit has coupon settings."),
                "not_a_coupon",
            )
        )
        return {}
    pool = entry.get("codes") == CodeSource.POOL
    if pool and ("prefix" in entry or "length" in entry):
        errors.append(
            ConfigError(
                f"{path}.coupon",
                _("A pool hands out uploaded codes: prefix and length are for generated codes."),
                "pool_code_settings",
            )
        )
    if pool and "stock" in item:
        errors.append(
            ConfigError(
                f"{path}.stock",
                _("A pool's stock is the codes uploaded to it after import; leave stock out."),
                "pool_stock",
            )
        )
    first = _day(entry, "first_day", f"{path}.coupon", errors)
    last = _day(entry, "last_day", f"{path}.coupon", errors)
    if first is not None and last is not None and last < first:
        errors.append(
            ConfigError(
                f"{path}.coupon.last_day",
                _("The last valid day is before the first."),
                "invalid_validity",
            )
        )
    terms: dict[str, Any] = {
        "code_source": CodeSource.POOL if pool else CodeSource.GENERATED,
        "code_prefix": entry.get("prefix", ""),
        "code_length": entry.get("length", DEFAULT_LENGTH),
        "valid_days": entry.get("days"),
    }
    if timezone_name is not None:
        terms["valid_from"] = (
            coupon_codes.local_midnight(first, timezone_name) if first is not None else None
        )
        terms["valid_until"] = (
            coupon_codes.local_midnight(last + dt.timedelta(days=1), timezone_name)
            if last is not None
            else None
        )
    return terms
