"""Provider credentials never reach the logs: WeChat takes its access token in the query
string, and httpx logs each request's URL at INFO unless the logging configuration stops it."""

from __future__ import annotations

import logging

import pytest

from notifications.backends import Message, get_backend

pytestmark = pytest.mark.django_db


def test_a_wechat_send_logs_no_token_and_no_secret(http_sink, caplog):
    message = Message(
        delivery_id=1,
        address="ok-1",
        subject="",
        body="",
        fields={"thing1": "Spring"},
        provider_template_id="TPL-1",
        customer="c-1",
    )

    with caplog.at_level(logging.INFO), get_backend("wechat").open() as session:
        session.send(message)

    # The token did travel in the URL, so a logged URL would have carried it.
    (sent,) = [call for call in http_sink.calls if call["path"].endswith("/subscribe/send")]
    assert sent["query"] == {"access_token": ["token-1"]}
    logged = caplog.text
    for secret in ("access_token=", "token-1", "secret=", "wx-test-secret", "HTTP Request"):
        assert secret not in logged, logged
