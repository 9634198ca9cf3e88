"""Which context fields a chain rule may name; unknown ones are refused at save and import."""

from core.rules import RuleError
from segments.rule_fields import CUSTOMER_ATTRIBUTE_PREFIX, CUSTOMER_FIELDS

ROOTS = ("customer", "event", "participation", "activities", "vars", "wait", "subject", "now")


def check_chain_field(field: str) -> None:
    root, _, rest = field.partition(".")
    if root not in ROOTS:
        raise RuleError(
            "",
            f"Unknown field {field!r}; a field starts with one of {', '.join(ROOTS)}.",
            "unknown_field",
        )
    if root == "now":
        if rest:
            raise RuleError("", "now has no sub-fields.", "unknown_field")
        return
    if not rest:
        raise RuleError(
            "", f"Name a field inside {root}, such as {root}.something.", "unknown_field"
        )
    if root == "customer":
        if rest.startswith(CUSTOMER_ATTRIBUTE_PREFIX) and len(rest) > len(
            CUSTOMER_ATTRIBUTE_PREFIX
        ):
            return
        if rest not in CUSTOMER_FIELDS:
            raise RuleError(
                "",
                f"Unknown customer field {rest!r}; use one of {', '.join(sorted(CUSTOMER_FIELDS))}"
                " or attributes.<key>.",
                "unknown_field",
            )
    if root == "activities" and "." not in rest:
        raise RuleError("", "Use activities.<activity code>.<key>.", "unknown_field")
