from .customer import PROFILE_FIELDS, SYNCED_FIELDS, Customer, CustomerTag, Tag
from .order import ORDER_TRANSITIONS, PAID_STATES, Order, OrderState
from .segment import Segment, SegmentMember, SegmentSnapshot

__all__ = [
    "ORDER_TRANSITIONS",
    "PAID_STATES",
    "PROFILE_FIELDS",
    "SYNCED_FIELDS",
    "Customer",
    "CustomerTag",
    "Order",
    "OrderState",
    "Segment",
    "SegmentMember",
    "SegmentSnapshot",
    "Tag",
]
