"""The soak's storefront: threads that fire events and move orders over HTTP, as a real client
does - every call retried with the same Idempotency-Key (or the same idempotent transition)
until it gets an answer, and everything the server accepted written down for reconciliation.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import httpx

# Retry a call for up to this long: longer than any injected outage.
RETRY_FOR_SECONDS = 60.0
EVENT_MIX = (("soak.checkin", 0.6), ("quiz.completed", 0.25), ("lottery.draw", 0.15))


@dataclass
class Accepted:
    event_id: str
    channel: str
    customer: str


@dataclass
class LoadLog:
    accepted: list[Accepted] = field(default_factory=list)
    # order external id -> transitions the server confirmed (changed or already done)
    orders: dict[str, list[str]] = field(default_factory=dict)
    statuses: Counter = field(default_factory=Counter)
    connection_errors: int = 0
    retried_calls: int = 0
    given_up: list[str] = field(default_factory=list)
    replays: int = 0
    replay_mismatches: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answered(self, status: int, seconds: float) -> None:
        with self.lock:
            self.statuses[status] += 1
            self.latencies.append(seconds)


class Storefront:
    def __init__(self, *, base_url: str, key: str, log: LoadLog, customers: list[str]) -> None:
        self.base_url = base_url
        self.key = key
        self.log = log
        self.customers = customers

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url,
            timeout=15,
            headers={"Authorization": f"Api-Key {self.key}"},
        )

    def call(
        self, client: httpx.Client, method: str, url: str, *, ok: tuple[int, ...], **kwargs
    ) -> httpx.Response | None:
        """One logical call: retried on no answer, 5xx and 429, as a storefront would."""
        give_up_at = time.monotonic() + RETRY_FOR_SECONDS
        attempt = 0
        while True:
            attempt += 1
            started = time.monotonic()
            try:
                response = client.request(method, url, **kwargs)
            except httpx.HTTPError:
                with self.log.lock:
                    self.log.connection_errors += 1
                response = None
            else:
                self.log.answered(response.status_code, time.monotonic() - started)
                if response.status_code in ok:
                    if attempt > 1:
                        with self.log.lock:
                            self.log.retried_calls += 1
                    return response
                if response.status_code < 500 and response.status_code != 429:
                    with self.log.lock:
                        self.log.given_up.append(
                            f"{method} {url} -> {response.status_code} {response.text[:200]}"
                        )
                    return None
            if time.monotonic() > give_up_at:
                with self.log.lock:
                    self.log.given_up.append(f"{method} {url}: no answer for {RETRY_FOR_SECONDS}s")
                return None
            time.sleep(min(0.2 * 2 ** min(attempt, 4), 3.0))

    def fire_events(self, *, rate: float, deadline: float, seed: int) -> None:
        rng = random.Random(seed)
        channels, weights = zip(*EVENT_MIX, strict=True)
        with self.client() as client:
            while time.monotonic() < deadline:
                tick = time.monotonic()
                channel = rng.choices(channels, weights=weights)[0]
                customer = rng.choice(self.customers)
                payload = {"score": rng.randint(40, 100)} if channel == "quiz.completed" else {}
                key = uuid.uuid4().hex
                body = {"channel": channel, "customer": customer, "payload": payload}
                headers = {"Idempotency-Key": key}
                response = self.call(
                    client, "POST", "/api/v1/events/", ok=(200, 202), json=body, headers=headers
                )
                if response is not None:
                    event_id = response.json()["id"]
                    with self.log.lock:
                        self.log.accepted.append(Accepted(event_id, channel, customer))
                    if rng.random() < 0.05:
                        self.replay(client, body, headers, event_id)
                time.sleep(max(0.0, 1 / rate - (time.monotonic() - tick)))

    def replay(self, client: httpx.Client, body: dict, headers: dict, event_id: str) -> None:
        """The storefront's retry of a call that did succeed: the same event comes back."""
        again = self.call(
            client, "POST", "/api/v1/events/", ok=(200, 202), json=body, headers=headers
        )
        with self.log.lock:
            self.log.replays += 1
            if again is None or again.json()["id"] != event_id:
                self.log.replay_mismatches.append(event_id)

    def move_orders(self, *, rate: float, deadline: float, seed: int, prefix: str) -> None:
        rng = random.Random(seed)
        number = 0
        with self.client() as client:
            while time.monotonic() < deadline:
                tick = time.monotonic()
                number += 1
                order = f"{prefix}-{number}"
                self.order_life(client, rng, order)
                time.sleep(max(0.0, 1 / rate - (time.monotonic() - tick)))

    def order_life(self, client: httpx.Client, rng: random.Random, order: str) -> None:
        created = self.call(
            client,
            "PUT",
            f"/api/v1/orders/{order}/",
            ok=(200, 201),
            json={
                "customer": rng.choice(self.customers),
                "amount": f"{rng.randint(1, 500)}.00",
                "placed_at": "2026-01-01T10:00:00+08:00",
            },
        )
        if created is None:
            return
        with self.log.lock:
            self.log.orders[order] = []
        if rng.random() < 0.1:
            path = ["cancel"]
        else:
            path = ["pay"]
            if rng.random() < 0.7:
                path.append("ship")
                path.append("complete" if rng.random() < 0.7 else "refund")
        for transition in path:
            moved = self.call(
                client, "POST", f"/api/v1/orders/{order}/{transition}/", ok=(200,), json={}
            )
            if moved is None:
                return
            with self.log.lock:
                self.log.orders[order].append(transition)
