"""schemathesis against the API's own OpenAPI document, on a live server (gunicorn, a worker).

Every operation gets schema-valid (positive) and schema-breaking (negative) inputs with a valid
key, and valid inputs aimed at rows that exist (an activity, a customer, an order, an event).
Checks: no 5xx ever; every error body is JSON; every documented response matches its schema,
content type and headers. At least 1,000 requests in all; about 10,000 with
GAMBIT_FUZZ_EXAMPLES=400.
"""

from __future__ import annotations

import os
from collections import Counter

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
)

from activities.services.events import accept_event
from tests.factories import build_quiz_lottery, make_api_key
from tests.integration.conftest import start_stack  # noqa: F401  (fixture)
from tests.segments.factories import CustomerFactory, OrderFactory

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

# GAMBIT_FUZZ_EXAMPLES=400 is the long run (about 10,000 requests); CI runs the default.
EXAMPLES_PER_OPERATION_AND_MODE = int(os.environ.get("GAMBIT_FUZZ_EXAMPLES", "40"))
MIN_REQUESTS = 25 * EXAMPLES_PER_OPERATION_AND_MODE
CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    content_type_conformance,
    response_headers_conformance,
]


@pytest.fixture
def live(start_stack):  # noqa: F811
    stack = start_stack(
        env_overrides={
            "GAMBIT_API_RATES": "events=1000000/min;customers=1000000/min;"
            "orders=1000000/min;broadcasts=1000000/min"
        }
    )
    # Something for the reads to find: a running activity, a customer with an order.
    build_quiz_lottery()
    OrderFactory(customer=CustomerFactory(external_id="fuzz-customer"), external_id="fuzz-order")
    key, raw = make_api_key(name="fuzz")
    event, _ = accept_event(
        client=key,
        idempotency_key="fuzz-event",
        channel_code="quiz.completed",
        customer_external_id="fuzz-customer",
        payload={"score": 80},
    )
    known = {
        "/api/v1/activities/{code}/participation/{external_id}/": {
            "code": "spring",
            "external_id": "fuzz-customer",
        },
        "/api/v1/activities/{code}/experiment/": {"code": "spring"},
        "/api/v1/customers/{external_id}/grants/": {"external_id": "fuzz-customer"},
        "/api/v1/customers/{external_id}/": {"external_id": "fuzz-customer"},
        "/api/v1/orders/{external_id}/": {"external_id": "fuzz-order"},
        "/api/v1/events/{event_id}/": {"event_id": str(event.pk)},
    }
    return stack.base_url, {"Authorization": f"Api-Key {raw}"}, known


@pytest.mark.timeout(600)
def test_generated_requests_never_get_a_5xx_and_match_the_schema(live):
    base_url, auth, known = live
    document = httpx.get(f"{base_url}/api/schema/?format=json", timeout=10).json()
    schema = schemathesis.openapi.from_dict(document)
    session = requests.Session()
    sent: Counter = Counter()
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10

    for operation in operations:
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            strategy = operation.as_strategy(generation_mode=mode)
            fuzz(operation, mode.value, strategy, base_url, auth, session, sent, failures)
        # Valid inputs on rows that exist, so the reads and writes go past "not found".
        if operation.path in known:
            strategy = operation.as_strategy(path_parameters=known[operation.path])
            fuzz(operation, "existing", strategy, base_url, auth, session, sent, failures)

    total = sum(sent.values())
    server_errors = {key: n for key, n in sent.items() if key[2] >= 500}
    print(f"\nschemathesis: {total} requests; by operation, mode and status: {dict(sent)}")
    assert server_errors == {}
    assert failures == [], sorted({failure[:300] for failure in failures})
    assert total >= MIN_REQUESTS


def content_type(response) -> str:
    """schemathesis's response keeps each header as a list of values."""
    for name, value in response.headers.items():
        if name.lower() == "content-type":
            return value[0] if isinstance(value, list) else value
    return ""


def fuzz(
    operation, mode: str, strategy, base_url, auth, session, sent: Counter, failures: list[str]
) -> None:
    @settings(
        max_examples=EXAMPLES_PER_OPERATION_AND_MODE,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
    )
    @given(case=strategy)
    def call(case):
        response = case.call(base_url=base_url, session=session, headers=auth, timeout=30)
        sent[(operation.label, mode, response.status_code)] += 1
        if response.status_code >= 400 and not content_type(response).startswith(
            "application/json"
        ):
            failures.append(f"{operation.label} [{mode}]: {response.status_code} is not JSON")
        try:
            case.validate_response(response, checks=CHECKS, headers=auth)
        except FailureGroup as error:  # every check that failed, at once
            failures.append(f"{operation.label} [{mode}]: {error}"[:1500])

    call()
