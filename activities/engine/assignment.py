"""Stable variant assignment: a pure function of (experiment salt, customer id) and the weights.

A customer's position is the first 60 bits of sha256("<salt>:<customer id>"), an integer in
[0, 2**60) that is uniform for practical purposes. Each variant owns the slice of that range
given by the cumulative weights; the slice boundaries are computed with exact fractions, so
the same weights give the same boundaries on every worker and in SQL (PostgreSQL's `sha256`
gives the same 60 bits, see `position_sql`). Nothing here touches the database: the stored
assignment (activities.models.Assignment) is what keeps a customer on the variant they first
got when the weights change later.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from decimal import Decimal
from fractions import Fraction

BITS = 60
SPACE = 1 << BITS


def position(salt: str, customer_id: int) -> int:
    """The customer's place in [0, 2**60) for this experiment."""
    digest = hashlib.sha256(f"{salt}:{customer_id}".encode()).hexdigest()
    return int(digest[: BITS // 4], 16)


def position_sql(salt_param: str = "%s", customer_column: str = "c.id") -> str:
    """The same position computed by PostgreSQL (bind the salt to `salt_param`)."""
    text = f"{salt_param} || ':' || {customer_column}::text"
    return (
        f"('x' || substr(encode(sha256(convert_to({text}, 'UTF8')), 'hex'), 1, {BITS // 4}))"
        f"::bit({BITS})::bigint"
    )


def boundaries(weights: Sequence[float | int | Decimal | str]) -> list[int]:
    """Upper ends (exclusive) of each variant's slice; the last is always 2**60.

    A variant of weight 0 owns an empty slice: nobody new is assigned to it.
    """
    exact = [Fraction(str(weight)) for weight in weights]
    total = sum(exact, Fraction(0))
    if not exact or total <= 0 or any(weight < 0 for weight in exact):
        raise ValueError("Weights must be non-negative and add up to more than zero.")
    ends = []
    running = Fraction(0)
    for weight in exact:
        running += weight
        share = running / total
        ends.append((SPACE * share.numerator) // share.denominator)
    ends[-1] = SPACE
    return ends


def pick(point: int, ends: Sequence[int]) -> int:
    """Index of the slice `point` falls in."""
    for index, end in enumerate(ends):
        if point < end:
            return index
    return len(ends) - 1


def choose(salt: str, customer_id: int, weights: Sequence[float | int | Decimal | str]) -> int:
    """Index of the variant this customer gets under these weights (before any stored one)."""
    return pick(position(salt, customer_id), boundaries(weights))


def in_share(salt: str, customer_id: int, share: Fraction | Decimal | float | str) -> bool:
    """Whether the customer falls in the first `share` (0..1) of the range, on a hash
    independent of the variant's (so a test slice does not lean towards any variant)."""
    return position(f"{salt}:slice", customer_id) < share_end(share)


def share_end(share: Fraction | Decimal | float | str) -> int:
    exact = Fraction(str(share))
    if not 0 <= exact <= 1:
        raise ValueError("A share lies between 0 and 1.")
    return (SPACE * exact.numerator) // exact.denominator
