"""Where operator-configured webhooks may go: public addresses only, checked without DNS at save
time and after resolving at call time; signatures."""

import hashlib
import hmac
import re

import pytest

from core import webhook_targets
from core.signing import signature, signature_headers
from core.webhook_targets import TargetRefused, resolve_target, url_problem


@pytest.fixture(autouse=True)
def strict(settings):
    settings.GAMBIT_WEBHOOK_ALLOW_HTTP = True
    settings.GAMBIT_WEBHOOK_ALLOWED_PRIVATE_HOSTS = []


@pytest.fixture
def resolver(monkeypatch):
    """The system resolver, replaced by a table of names; records every lookup."""
    table: dict[str, list[str]] = {}
    lookups: list[tuple[str, int]] = []

    def resolve(host, port):
        lookups.append((host, port))
        return table[host]

    monkeypatch.setattr(webhook_targets, "resolve_host", resolve)
    resolve.table = table
    resolve.lookups = lookups
    return resolve


@pytest.mark.parametrize(
    ("url", "address", "kind"),
    [
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254", "link-local"),
        ("http://127.0.0.1/", "127.0.0.1", "loopback"),
        ("http://[::1]:8080/", "::1", "loopback"),
        ("http://10.0.0.1/hook", "10.0.0.1", "private"),
        ("http://192.168.1.20/", "192.168.1.20", "private"),
        ("http://[::ffff:127.0.0.1]/", "::ffff:7f00:1", "loopback"),
        ("http://[::ffff:a9fe:a9fe]/", "::ffff:a9fe:a9fe", "link-local"),
        ("http://[2002:a00:1::]/", "2002:a00:1::", "private"),
        ("http://[fe80::1]/", "fe80::1", "link-local"),
        ("http://[fc00::5]/", "fc00::5", "private"),
        ("http://224.0.0.1/", "224.0.0.1", "multicast"),
        ("http://[ff02::1]/", "ff02::1", "multicast"),
        ("http://240.0.0.1/", "240.0.0.1", "reserved"),
        ("http://0.0.0.0/", "0.0.0.0", "unspecified"),
        ("http://[::]/", "::", "unspecified"),
        ("http://100.64.0.1/", "100.64.0.1", "non-public"),
        ("http://0x7f.1/", "127.0.0.1", "loopback"),
        ("http://2130706433/", "127.0.0.1", "loopback"),
    ],
)
def test_addresses_that_are_not_public_are_refused_without_dns(resolver, url, address, kind):
    problem = url_problem(url)
    assert problem is not None
    assert f"{address}, a {kind} address; webhooks call public ones only." in problem
    with pytest.raises(TargetRefused) as refused:
        resolve_target(url)
    assert refused.value.code == "address_refused"
    assert refused.value.message == problem
    assert resolver.lookups == []


def test_localhost_names_are_refused_when_saved():
    assert url_problem("http://localhost:8000/hook") == (
        "localhost is localhost, a loopback address; webhooks call public ones only."
    )
    assert url_problem("http://api.localhost/") is not None


def test_a_name_that_resolves_to_a_private_address_is_refused_when_called(resolver):
    resolver.table["hooks.partner.example"] = ["10.1.2.3"]
    assert url_problem("https://hooks.partner.example/grants") is None  # no DNS when saved
    with pytest.raises(TargetRefused) as refused:
        resolve_target("https://hooks.partner.example/grants")
    assert refused.value.code == "address_refused"
    assert refused.value.message == (
        "hooks.partner.example is 10.1.2.3, a private address; webhooks call public ones only."
    )
    assert resolver.lookups == [("hooks.partner.example", 443)]


def test_one_private_address_among_public_ones_is_enough_to_refuse(resolver):
    resolver.table["mixed.example"] = ["93.184.215.14", "127.0.0.1"]
    with pytest.raises(TargetRefused, match=re.escape("127.0.0.1, a loopback address")):
        resolve_target("https://mixed.example/")


def test_a_public_name_is_pinned_to_the_address_that_was_checked(resolver):
    resolver.table["hooks.partner.example"] = ["93.184.215.14", "2606:2800:21f:cb07::1"]
    target = resolve_target("https://hooks.partner.example:8443/grants?x=1")
    assert target.address == "93.184.215.14"
    assert str(target.url) == "https://hooks.partner.example:8443/grants?x=1"


def test_allowed_private_hosts_may_resolve_to_private_addresses(settings, resolver):
    settings.GAMBIT_WEBHOOK_ALLOWED_PRIVATE_HOSTS = ["benefits.internal", "[::1]"]
    resolver.table["benefits.internal"] = ["10.0.0.7"]
    assert url_problem("http://benefits.internal/grants") is None
    assert resolve_target("http://benefits.internal/grants").address == "10.0.0.7"
    assert resolve_target("http://[::1]:9000/").address == "::1"
    assert url_problem("http://10.0.0.7/") is not None


def test_https_is_required_unless_plain_http_is_allowed(settings):
    settings.GAMBIT_WEBHOOK_ALLOW_HTTP = False
    assert url_problem("http://hooks.partner.example/") == (
        "Webhooks must use https: http://hooks.partner.example/."
    )
    with pytest.raises(TargetRefused) as refused:
        resolve_target("http://hooks.partner.example/")
    assert refused.value.code == "https_required"
    assert url_problem("https://hooks.partner.example/") is None


@pytest.mark.parametrize("url", ["ftp://files.example/", "https://", "not a url", "file:///etc"])
def test_anything_but_an_http_address_with_a_host_is_refused(url):
    assert url_problem(url) == f"{url} is not an http(s) address with a host."


def test_a_name_that_does_not_resolve_is_an_error_to_retry(resolver):
    resolver.table["gone.example"] = []
    with pytest.raises(OSError, match=re.escape("gone.example resolves to no address")):
        resolve_target("https://gone.example/")


def test_the_signature_is_an_hmac_of_the_timestamp_and_the_raw_body():
    raw = '{"customer":"张三"}'.encode()
    headers = signature_headers(secret="s3cret", raw=raw)
    timestamp = headers["X-Gambit-Timestamp"]
    expected = hmac.new(b"s3cret", timestamp.encode() + b"." + raw, hashlib.sha256).hexdigest()
    assert headers["X-Gambit-Signature"] == f"sha256={expected}"
    assert signature(secret="s3cret", raw=raw, timestamp=int(timestamp)) == f"sha256={expected}"
    assert signature(secret="s3cret", raw=raw, timestamp=int(timestamp) + 1) != f"sha256={expected}"
