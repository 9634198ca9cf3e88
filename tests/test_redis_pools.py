"""The shared Redis pools survive threads racing to create them and clients being dropped."""

import gc
import threading

import pytest

from config import redis_pools


@pytest.fixture
def fresh_pools(monkeypatch):
    monkeypatch.setattr(redis_pools, "_pools", {})


def test_a_dropped_client_leaves_the_shared_pool_connected(fresh_pools):
    kept = redis_pools.redis_client()
    connection = kept.connection_pool.get_connection()
    try:
        connection.send_command("PING")
        dropped = redis_pools.redis_client()
        del dropped
        gc.collect()
        assert connection.read_response() == b"PONG"
    finally:
        kept.connection_pool.release(connection)


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
