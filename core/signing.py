"""Signatures on the bodies Gambit POSTs to other systems (notification webhooks, chain webhook
steps), one scheme for every sender.

`X-Gambit-Timestamp` carries the Unix time of signing and `X-Gambit-Signature` is
`sha256=<hex HMAC-SHA256 of "<timestamp>.<raw body>" under the shared secret>`. The receiver
recomputes it over the bytes it received, compares in constant time, and refuses a timestamp
far from its own clock: the timestamp is signed, so a captured call cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-Gambit-Signature"
TIMESTAMP_HEADER = "X-Gambit-Timestamp"


def signature(*, secret: str, raw: bytes, timestamp: int) -> str:
    signed = str(timestamp).encode() + b"." + raw
    return "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signature_headers(*, secret: str, raw: bytes) -> dict[str, str]:
    timestamp = int(time.time())
    return {
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(secret=secret, raw=raw, timestamp=timestamp),
    }
