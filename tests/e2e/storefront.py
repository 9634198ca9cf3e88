"""The storefront's side of the browser tests: its server posting events and reading over HTTP
with its API key, against the live server.

It plays the workers' part in-process: each posted event is run, then every event that run
emitted (the credits), as the workers would run them.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from typing import Any

import httpx

from activities.models import Event
from activities.services.events import process_event
from tests.factories import make_api_key


class Storefront:
    def __init__(self, base_url: str) -> None:
        _key, raw = make_api_key()
        self.client = httpx.Client(
            base_url=base_url, timeout=30, headers={"Authorization": f"Api-Key {raw}"}
        )

    def fire(self, channel: str, customer: str, payload: dict[str, Any] | None = None) -> dict:
        """Post one event, run it and what it emitted; its run as the storefront reads it."""
        response = self.client.post(
            "/api/v1/events/",
            json={"channel": channel, "customer": customer, "payload": payload or {}},
            headers={"Idempotency-Key": uuid.uuid4().hex},
        )
        assert response.status_code == 202, response.text
        process_event(event_id=response.json()["id"])
        while pending := Event.objects.filter(state="pending").order_by("pk").first():
            process_event(event_id=pending.pk)
        [run] = self.get(response.json()["url"])["runs"]
        return run

    def get(self, url: str) -> Any:
        response = self.client.get(url)
        assert response.status_code == 200, response.text
        return response.json()

    def grants(self, customer: str) -> list[tuple[str, int]]:
        """(benefit, quantity) of the customer's grants, oldest first."""
        rows = self.get(f"/api/v1/customers/{customer}/grants/")["results"]
        return [(row["benefit"], row["quantity"]) for row in reversed(rows)]

    def coupons(self, customer: str) -> list[tuple[str, str]]:
        """(benefit, value) of the customer's usable coupons, each of which has a code."""
        rows = self.get(f"/api/v1/customers/{customer}/coupons/?state=usable")["results"]
        assert all(row["code"] for row in rows)
        return [(row["benefit"], row["value"]) for row in rows]


@contextlib.contextmanager
def open_storefront(base_url: str) -> Iterator[Storefront]:
    shop = Storefront(base_url)
    try:
        yield shop
    finally:
        shop.client.close()
