from .customer import Customer, CustomerTag, Tag
from .order import ORDER_TRANSITIONS, PAID_STATES, Order, OrderState
from .segment import Segment, SegmentMember, SegmentSnapshot

__all__ = [
    "ORDER_TRANSITIONS",
    "PAID_STATES",
    "Customer",
    "CustomerTag",
    "Order",
    "OrderState",
    "Segment",
    "SegmentMember",
    "SegmentSnapshot",
    "Tag",
]
