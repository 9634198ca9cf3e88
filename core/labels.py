"""What operators read for the rule operators and the built-in processors' settings: one table,
used by the builders in the admin, the schema error messages and the chain rules."""

from django.utils.translation import gettext_lazy as _

OPERATOR_LABELS = {
    "eq": _("equals"),
    "ne": _("does not equal"),
    "gt": _("greater than"),
    "gte": _("at least"),
    "lt": _("less than"),
    "lte": _("at most"),
    "in": _("is one of"),
    "not_in": _("is none of"),
    "contains": _("contains"),
    "exists": _("is present"),
    "between": _("is between"),
}


# Labels for the properties and enum values of the built-in processors' schemas.
PROPERTY_LABELS = {
    "benefit": _("benefit code"),
    "benefits": _("benefit codes"),
    "quantity": _("quantity"),
    "key": _("counter name"),
    "per": _("counted"),
    "limit": _("limit"),
    "reason": _("reason shown when refused"),
    "cost": _("cost of one draw"),
    "prizes": _("prizes"),
    "weight": _("weight"),
    "fallback": _("fallback benefit"),
    "values": _("values"),
    "persist": _("keep on the participation"),
    "channel": _("channel"),
    "payload": _("payload"),
    "fields": _("result fields"),
    "message": _("message"),
    "url": _("URL"),
    "only_with_grants": _("only when something was granted"),
}
ENUM_LABELS = {
    "day": _("per customer per day"),
    "customer": _("per customer over the activity"),
    "activity": _("for all customers together"),
}
