"""After the soak: what the storefront was told against what the database and the sink hold.

Each check returns violations (human-readable, empty when the promise held):
- every accepted event ran exactly once per bound activity, and finished;
- every order transition the server confirmed raised its event once, and order.paid paid
  points exactly once per paid order;
- every check-in stamped exactly once; coupons at most one per customer;
- for every benefit with stock: granted + remaining == initial; the same for budgets;
- every planned delivery was sent, and reached the sink (which, like any receiver keyed on
  the delivery's idempotency key, counts each delivery once: resends are reported apart);
- every grant of an activity whose chain calls a webhook has exactly one WebhookCall, sent and
  received at the webhook sink (keyed by its Idempotency-Key); no call reached the sink more
  often than it was claimed (`attempts`);
- every such grant's `notify` step queued one email, sent and received at the SMTP sink (keyed
  by its Message-ID); no message reached it more often than its delivery was claimed.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from decimal import Decimal

from django.db.models import Count, Q, Sum

from activities.models import Activity, Benefit, ChainRun, Event, Grant, WebhookCall
from activities.models.webhook import OPEN_STATES
from notifications.backends.email import message_id
from notifications.models import Broadcast, Delivery

from .load import LoadLog

ORDER_CHANNEL = {
    "pay": "order.paid",
    "ship": "order.shipped",
    "complete": "order.completed",
    "refund": "order.refunded",
    "cancel": "order.cancelled",
}


def _runs_by_event(event_ids: list) -> dict[str, list[tuple[str, str]]]:
    runs: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for start in range(0, len(event_ids), 5000):
        chunk = event_ids[start : start + 5000]
        for event_id, code, outcome in ChainRun.objects.filter(event_id__in=chunk).values_list(
            "event_id", "activity__code", "outcome"
        ):
            runs[str(event_id)].append((code, outcome))
    return runs


def check_events(log: LoadLog, bound: dict[str, set[str]]) -> tuple[list[str], dict]:
    violations: list[str] = []
    ids = [accepted.event_id for accepted in log.accepted]
    if len(set(ids)) != len(ids):
        violations.append(f"{len(ids) - len(set(ids))} event ids were handed out twice")
    states = dict(Event.objects.filter(pk__in=ids).values_list("pk", "state"))
    runs = _runs_by_event(ids)
    outcomes: Counter = Counter()
    for accepted in log.accepted:
        state = states.get(_uuid(accepted.event_id))
        if state != "done":
            violations.append(f"event {accepted.event_id} ({accepted.channel}) is {state}")
            continue
        got = runs.get(accepted.event_id, [])
        per_activity = Counter(code for code, _ in got)
        expected = bound[accepted.channel]
        if set(per_activity) != expected or any(n != 1 for n in per_activity.values()):
            violations.append(f"event {accepted.event_id}: runs {dict(per_activity)}, {expected}")
        for _, outcome in got:
            outcomes[outcome] += 1
            if outcome in ("", "failed"):
                violations.append(f"event {accepted.event_id}: a run ended {outcome or 'open'}")
    if log.replay_mismatches:
        violations.append(f"replays answered another event: {log.replay_mismatches[:5]}")
    return violations, {"runs_by_outcome": dict(outcomes), "events_accepted": len(ids)}


def _uuid(value: str):
    import uuid

    return uuid.UUID(value)


def check_orders(log: LoadLog, bound: dict[str, set[str]]) -> tuple[list[str], dict]:
    violations: list[str] = []
    expected_keys = {}
    from segments.models import Order

    pks = dict(
        Order.objects.filter(external_id__in=list(log.orders)).values_list("external_id", "pk")
    )
    for order, transitions in log.orders.items():
        for transition in transitions:
            expected_keys[f"order:{pks[order]}:{transition}"] = ORDER_CHANNEL[transition]
    events = {
        key: (pk, state, channel)
        for key, pk, state, channel in Event.objects.filter(
            client__isnull=True, idempotency_key__in=list(expected_keys)
        ).values_list("idempotency_key", "pk", "state", "channel__code")
    }
    runs = _runs_by_event([pk for pk, _, _ in events.values()])
    for key, channel in expected_keys.items():
        if key not in events:
            violations.append(f"order event {key} was never recorded")
            continue
        pk, state, recorded_channel = events[key]
        if state != "done" or recorded_channel != channel:
            violations.append(f"order event {key}: {recorded_channel} is {state}")
        per_activity = Counter(code for code, _ in runs.get(str(pk), []))
        if set(per_activity) != bound.get(channel, set()) or any(
            n != 1 for n in per_activity.values()
        ):
            violations.append(f"order event {key}: runs {dict(per_activity)}")
    stray = Event.objects.filter(client__isnull=True, idempotency_key__startswith="order:").exclude(
        idempotency_key__in=list(expected_keys)
    )
    # A transition the server committed whose answer the client never saw (it gave up) would
    # show here; with retries for longer than any outage there is none.
    if stray.exists():
        violations.append(f"{stray.count()} order events the storefront was never told about")
    paid = sum(1 for transitions in log.orders.values() if "pay" in transitions)
    points = Grant.objects.filter(benefit__code="order-points").count()
    if points != paid:
        violations.append(f"{paid} orders paid but {points} order-points grants")
    return violations, {
        "orders": len(log.orders),
        "order_transitions": len(expected_keys),
        "orders_paid": paid,
    }


def check_grants(log: LoadLog) -> tuple[list[str], dict]:
    violations: list[str] = []
    checkins = Counter(a.customer for a in log.accepted if a.channel == "soak.checkin")
    stamps = Counter(
        dict(
            Grant.objects.filter(benefit__code="stamp")
            .values("customer__external_id")
            .annotate(n=Count("*"))
            .values_list("customer__external_id", "n")
        )
    )
    if stamps != checkins:
        diff = {
            c: (checkins[c], stamps[c])
            for c in set(checkins) | set(stamps)
            if checkins[c] != stamps[c]
        }
        violations.append(
            f"check-ins vs stamps differ for {len(diff)} customers: {list(diff.items())[:5]}"
        )
    coupons = Counter(
        Grant.objects.filter(benefit__code="soak-coupon").values_list(
            "customer__external_id", flat=True
        )
    )
    if set(coupons) != set(checkins) or any(n != 1 for n in coupons.values()):
        violations.append(
            f"coupons: {len(coupons)} customers hold {sum(coupons.values())}, "
            f"{len(checkins)} checked in"
        )
    for benefit in Benefit.objects.filter(stock_total__isnull=False):
        granted = Grant.objects.filter(benefit=benefit).aggregate(n=Sum("quantity"))["n"] or 0
        if granted + benefit.stock_remaining != benefit.stock_total:
            violations.append(
                f"benefit {benefit.code}: granted {granted} + remaining "
                f"{benefit.stock_remaining} != {benefit.stock_total}"
            )
    for activity in Activity.objects.filter(budget_total__isnull=False):
        spent = Grant.objects.filter(activity=activity).aggregate(v=Sum("value"))["v"] or Decimal(0)
        if spent + activity.budget_remaining != activity.budget_total:
            violations.append(
                f"activity {activity.code}: spent {spent} + remaining "
                f"{activity.budget_remaining} != {activity.budget_total}"
            )
    draws = ChainRun.objects.filter(
        event__channel__code="lottery.draw", outcome__in=["granted", "completed"]
    ).count()
    spent_chances = (
        Grant.objects.filter(benefit__code="chance").aggregate(
            s=Sum("quantity") - Sum("remaining")
        )["s"]
        or 0
    )
    if spent_chances != draws:
        violations.append(f"{draws} draws ran but {spent_chances} chances were spent")
    return violations, {
        "grants": Grant.objects.count(),
        "stamps": sum(stamps.values()),
        "draws": draws,
        "stock": {
            b.code: (b.stock_total - b.stock_remaining, b.stock_total)
            for b in Benefit.objects.filter(stock_total__isnull=False)
        },
    }


def check_deliveries(broadcast_id: int, received: Counter) -> tuple[list[str], dict]:
    violations: list[str] = []
    broadcast = Broadcast.objects.get(pk=broadcast_id)
    statuses = Counter(
        Delivery.objects.filter(broadcast_id=broadcast_id).values_list("status", flat=True)
    )
    planned = sum(statuses.values())
    sent_ids = set(
        Delivery.objects.filter(broadcast_id=broadcast_id, status="sent").values_list(
            "pk", flat=True
        )
    )
    if broadcast.state != "completed":
        violations.append(f"broadcast is {broadcast.state} ({broadcast.state_reason})")
    if statuses.get("sent", 0) != planned or planned != broadcast.planned:
        unsent = Counter(
            Delivery.objects.filter(broadcast_id=broadcast_id)
            .exclude(status="sent")
            .values_list("status", "reason", "attempts", "lost_claims")
        )
        violations.append(
            f"deliveries {dict(statuses)}, broadcast planned {broadcast.planned}; not sent by "
            f"(status, reason, attempts, lost claims): {dict(unsent)}"
        )
    missing = sent_ids - set(received)
    unknown = set(received) - sent_ids
    if missing:
        violations.append(f"{len(missing)} deliveries marked sent never reached the sink")
    if unknown:
        violations.append(f"{len(unknown)} messages at the sink are not sent deliveries")
    resends = sum(received.values()) - len(received)
    return violations, {
        "planned": planned,
        "sent": statuses.get("sent", 0),
        "at_sink_distinct": len(received),
        "at_sink_resends": resends,
    }


def check_webhook_calls(activity: str, received: Counter) -> tuple[list[str], dict]:
    """`received`: POSTs at the webhook sink by Idempotency-Key."""
    violations: list[str] = []
    grant_runs = set(Grant.objects.filter(activity__code=activity).values_list("run_id", flat=True))
    calls = list(WebhookCall.objects.values_list("run_id", "idempotency_key", "state", "attempts"))
    per_run = Counter(run_id for run_id, _, _, _ in calls)
    missing = [run for run in grant_runs if per_run[run] != 1]
    if missing:
        violations.append(
            f"{len(missing)} granting runs of {activity} without exactly one webhook call: "
            f"{[(run, per_run[run]) for run in missing[:5]]}"
        )
    stray = set(per_run) - grant_runs
    if stray:
        violations.append(f"{len(stray)} webhook calls from runs that granted nothing here")
    states = Counter(state for _, _, state, _ in calls)
    if states.get("sent", 0) != len(calls):
        violations.append(f"webhook calls by state: {dict(states)}")
    keys = {key: attempts for _, key, _, attempts in calls}
    unreached = [key for key in keys if not received[key]]
    if unreached:
        violations.append(f"{len(unreached)} webhook calls never reached the sink: {unreached[:5]}")
    unknown = set(received) - set(keys)
    if unknown:
        violations.append(f"{len(unknown)} POSTs at the webhook sink match no call")
    over = [(key, received[key], n) for key, n in keys.items() if received[key] > n]
    if over:
        violations.append(f"webhook calls received more often than claimed: {over[:5]}")
    return violations, {
        "webhook_grants": len(grant_runs),
        "webhook_calls": len(calls),
        "webhook_sent": states.get("sent", 0),
        "webhook_at_sink_distinct": len(set(received) & set(keys)),
        "webhook_resends": sum(received.values()) - len(received),
        "webhook_retried_calls": sum(1 for n in keys.values() if n >= 2),
    }


def check_notify(activity: str, received: Counter) -> tuple[list[str], dict]:
    """`received`: messages at the SMTP sink by Message-ID."""
    violations: list[str] = []
    grant_runs = set(Grant.objects.filter(activity__code=activity).values_list("run_id", flat=True))
    rows = list(
        Delivery.objects.filter(broadcast__isnull=True, source_key__startswith="run:").values_list(
            "pk", "source_key", "status", "attempts"
        )
    )
    per_run = Counter(int(source.split(":")[1]) for _, source, _, _ in rows)
    missing = [run for run in grant_runs if per_run[run] != 1]
    if missing:
        violations.append(
            f"{len(missing)} granting runs of {activity} without exactly one message: "
            f"{[(run, per_run[run]) for run in missing[:5]]}"
        )
    if set(per_run) - grant_runs:
        violations.append(f"{len(set(per_run) - grant_runs)} messages from unexpected runs")
    statuses = Counter(status for _, _, status, _ in rows)
    if statuses.get("sent", 0) != len(rows):
        violations.append(f"notify messages by status: {dict(statuses)}")
    expected = {message_id(f"gambit-d{pk}"): attempts for pk, _, _, attempts in rows}
    unreached = [mid for mid in expected if not received[mid]]
    if unreached:
        violations.append(f"{len(unreached)} messages never reached the SMTP sink: {unreached[:5]}")
    unknown = set(received) - set(expected)
    if unknown:
        violations.append(f"{len(unknown)} messages at the SMTP sink match no delivery")
    over = [(mid, received[mid], n) for mid, n in expected.items() if received[mid] > n]
    if over:
        violations.append(f"messages received more often than claimed: {over[:5]}")
    return violations, {
        "notify_messages": len(rows),
        "notify_sent": statuses.get("sent", 0),
        "notify_at_sink_distinct": len(set(received) & set(expected)),
        "notify_resends": sum(received.values()) - len(received),
    }


def event_attempts() -> dict[str, int]:
    """Events by processing attempts: 2 or more means an attempt was cut off (a killed worker,
    a cut session) or its message lost, and the event was processed again."""
    counts = Counter(Event.objects.values_list("attempts", flat=True))
    return {
        "events_attempts_2_plus": sum(n for attempts, n in counts.items() if attempts >= 2),
        "events_attempts_max": max(counts, default=0),
    }


def open_work(broadcast_id: int) -> dict[str, int]:
    """What is still moving; the soak's drain waits for all zeros."""
    return {
        "events": Event.objects.filter(state__in=["pending", "running"]).count(),
        "deliveries": Delivery.objects.filter(
            broadcast_id=broadcast_id, status__in=["queued", "sending"]
        ).count(),
        "messages": Delivery.objects.filter(
            broadcast__isnull=True, status__in=["queued", "sending"]
        ).count(),
        "webhook_calls": WebhookCall.objects.filter(state__in=OPEN_STATES).count(),
        "broadcast": Broadcast.objects.filter(pk=broadcast_id)
        .filter(~Q(state__in=["completed", "failed", "cancelled"]))
        .count(),
    }
