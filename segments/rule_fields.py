"""The customer fields a rule may read (`customer.<name>`), shared by chains and segments.

Chains resolve these on the Customer row (`customer.tags` is the list of tag codes);
segments compile them to SQL (`segments.rules`). Order aggregates are segment-only: a chain
sees one event, a segment sees the order history.
"""

from segments.models import PROFILE_FIELDS

CUSTOMER_FIELDS = frozenset({*PROFILE_FIELDS, "created_at", "tags"})
# `customer.attributes.<key>` reads a free attribute the storefront synced.
CUSTOMER_ATTRIBUTE_PREFIX = "attributes."

# `customer.orders.<aggregate>`, segments only. Aggregates count paid orders (paid, shipped,
# completed); "days" are calendar days in the customer's own timezone.
ORDER_AGGREGATE_PREFIX = "orders."
ORDER_AGGREGATES = {
    "paid_count": "paid orders, ever",
    "paid_last_<N>d": "paid orders paid today or in the N-1 days before (1 <= N <= 3650)",
    "total_spent": "sum of the amounts of paid orders",
    "days_since_last": "days since the last paid order (0 = today; none without orders)",
}
