"""The Redis broker transport with one repair, so that a worker survives its broker going away,
and one saving, so that publishing a message does not build a Redis client.

Celery 5.7.0 handles a lost broker connection (Consumer.on_connection_error_after_connected) by
releasing the connection's transport (`collect()`) before closing it; closing the channel then
tries to hand the messages the worker holds (tasks running with acks_late, countdowns waiting)
back to Redis through a transport that is gone, raises AttributeError, and the worker exits with
"Unrecoverable error". Found by the fault drill `broker_outage` (RELIABILITY.md): the cpu worker
died with the outage and every task queued after it timed out.

Here the channel skips that hand-back when its transport is gone. Nothing is lost: the messages
are still in Redis's unacked set and come back after the visibility timeout, and our tasks do not
wait for that (a dead holder's lease lapses and the sweep queues the task again).

Kombu's channel makes a new Redis client object (with its table of reply parsers) for every
message it publishes, about a fifth of the CPU a publish costs (every order publishes one); the
channel here keeps one. Clients are thread-safe and take their connections from the channel's
pool, so an outage costs nothing more: the pool reconnects as before."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from typing import Any

from kombu.transport import redis

logger = logging.getLogger(__name__)


class QoS(redis.QoS):
    def restore_unacked(self, client: Any = None) -> Any:
        connection = self.channel.connection
        if client is None and (connection is None or connection.client is None):
            held: dict[str, Any] = self._delivered or {}
            logger.warning(
                "broker connection lost: %d held message(s) come back after the visibility timeout", len(held)
            )
            held.clear()
            return None
        return super().restore_unacked(client)


class Channel(redis.Channel):
    QoS = QoS

    @cached_property
    def _client(self) -> Any:
        return self._create_client()  # type: ignore[attr-defined]

    @contextmanager
    def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
        yield client or self._client


class Transport(redis.Transport):
    Channel = Channel
