"""WeChat mini-program subscription messages: `POST /cgi-bin/message/subscribe/send`.

The access token comes from `/cgi-bin/stable_token` (which, unlike `/cgi-bin/token`, does not
invalidate the token other workers hold) and is cached in the shared cache until shortly
before it expires; one worker refreshes it at a time. A token the API calls invalid is dropped
and fetched again once.

Error codes: 43101 (the user refused or is not subscribed) -> skipped; 45009 (rate/quota
limit) and -1 (system busy) -> retried; 40003 (invalid openid) -> failed for that customer;
47003 (template data invalid) and anything else -> failed, counted as a provider fault.
"""

from __future__ import annotations

import time

import httpx
from django.conf import settings
from django.core.cache import cache

from . import (
    Backend,
    Message,
    PermanentFailure,
    Session,
    Skip,
    TransientFailure,
    check_http_response,
    http_client,
    register,
)

TOKEN_INVALID = {40001, 40014, 42001}
RETRYABLE = {-1, 45009, 45011}
TOKEN_MARGIN_SECONDS = 300
LOCK_SECONDS = 10


def _token_key(appid: str) -> str:
    return f"notifications:wechat:token:{appid}"


class _WeChatSession(Session):
    def __init__(self, config: dict, timeout: float) -> None:
        self.config = config
        self.client = http_client(timeout)
        self.base = config["API_BASE"].rstrip("/")

    def access_token(self, *, stale: str = "") -> str:
        """The shared token; with `stale` (a token the API refused), a newer one, fetched
        only if no other worker has already replaced it."""
        key = _token_key(self.config["APPID"])
        if (token := cache.get(key)) and token != stale:
            return token
        lock = f"{key}:lock"
        deadline = time.monotonic() + LOCK_SECONDS
        while not cache.add(lock, 1, timeout=LOCK_SECONDS):
            # Another worker is fetching: use its token when it lands.
            if time.monotonic() > deadline:
                raise TransientFailure("wechat_token_busy")
            time.sleep(0.05)
            if (token := cache.get(key)) and token != stale:
                return token
        try:
            if (token := cache.get(key)) and token != stale:
                return token
            return self._fetch_token(key, force=bool(stale))
        finally:
            cache.delete(lock)

    def _fetch_token(self, key: str, *, force: bool) -> str:
        try:
            response = self.client.post(
                f"{self.base}/cgi-bin/stable_token",
                json={
                    "grant_type": "client_credential",
                    "appid": self.config["APPID"],
                    "secret": self.config["SECRET"],
                    "force_refresh": force,
                },
            )
        except httpx.HTTPError as error:
            raise TransientFailure("wechat_unavailable", str(error)) from error
        body = check_http_response(response)
        token = body.get("access_token")
        if not token:
            # A wrong appid/secret fails every message: retried and counted, so the broadcast
            # pauses itself and waits for the configuration to be fixed.
            raise TransientFailure(
                "wechat_token_error", f"{body.get('errcode')}: {body.get('errmsg')}"
            )
        expires_in = int(body.get("expires_in") or 7200)
        cache.set(key, token, timeout=max(expires_in - TOKEN_MARGIN_SECONDS, 60))
        return token

    def send(self, message: Message) -> str:
        payload = {
            "touser": message.address,
            "template_id": message.provider_template_id,
            "data": {name: {"value": value} for name, value in message.fields.items()},
            "miniprogram_state": self.config["MINIPROGRAM_STATE"],
            "lang": self.config["LANG"],
        }
        if message.link:
            payload["page"] = message.link
        token = self.access_token()
        body = self._post(payload, token)
        if body.get("errcode") in TOKEN_INVALID:
            body = self._post(payload, self.access_token(stale=token))
        code = body.get("errcode", 0)
        detail = f"{code}: {body.get('errmsg', '')}"
        if code == 0:
            return str(body.get("msgid", ""))
        if code == 43101:
            raise Skip("not_subscribed", detail)
        if code in RETRYABLE or code in TOKEN_INVALID:
            raise TransientFailure(f"wechat_{code}", detail)
        if code == 40003:
            raise PermanentFailure("invalid_openid", detail)
        raise PermanentFailure(f"wechat_{code}", detail, provider_fault=True)

    def _post(self, payload: dict, token: str) -> dict:
        try:
            response = self.client.post(
                f"{self.base}/cgi-bin/message/subscribe/send",
                params={"access_token": token},
                json=payload,
            )
        except httpx.HTTPError as error:
            raise TransientFailure("wechat_unavailable", str(error)) from error
        return check_http_response(response)

    def close(self) -> None:
        self.client.close()


@register
class WeChatBackend(Backend):
    key = "wechat"
    address_field = "wechat_openid"
    consent_field = "wechat_consent"

    def __init__(self) -> None:
        self.config = settings.NOTIFICATIONS_WECHAT

    def problems(self) -> list[str]:
        return [
            f"NOTIFICATIONS_WECHAT_{name} is not set"
            for name in ("APPID", "SECRET", "API_BASE")
            if not self.config[name]
        ]

    def session(self) -> Session:
        return _WeChatSession(self.config, settings.NOTIFICATIONS_HTTP_TIMEOUT)
