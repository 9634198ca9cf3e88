"""The shared Redis pools survive threads racing to create them and clients being dropped."""

import threading

import pytest

from core import redis_pools


@pytest.fixture
def fresh_pools(monkeypatch):
    monkeypatch.setattr(redis_pools, "_clients", {})


def test_every_caller_shares_one_client_that_never_closes_its_pool(fresh_pools):
    kept = redis_pools.redis_client()
    assert redis_pools.redis_client() is kept
    # A client that owned its pool would disconnect it when garbage collected.
    assert kept.auto_close_connection_pool is False


def test_threads_asking_at_once_share_one_pool(fresh_pools):
    start = threading.Barrier(20)
    pools = []
    replies = []

    def ask():
        start.wait()
        client = redis_pools.redis_client(timeout=1)
        pools.append(client.connection_pool)
        replies.append(client.ping())

    threads = [threading.Thread(target=ask) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(pool) for pool in pools}) == 1
    assert replies == [True] * 20


def test_pools_are_per_url_and_timeout(fresh_pools):
    default = redis_pools.redis_client().connection_pool
    assert redis_pools.redis_client().connection_pool is default
    assert redis_pools.redis_client(timeout=0.25).connection_pool is not default
    assert (
        redis_pools.redis_client(timeout=0.25).connection_pool.connection_kwargs["socket_timeout"]
        == 0.25
    )
