"""The built-in processors, one module each; importing this package registers them."""

from . import (  # noqa: F401
    build_result,
    call_webhook,
    emit_event,
    grant_benefit,
    lottery_draw,
    notify,
    participation_limit,
    query_assets,
    rule_check,
    set_context,
    split,
)
