"""The Redis broker transport with one repair, so that a worker survives its broker going away.

Celery 5.7.0 handles a lost broker connection (Consumer.on_connection_error_after_connected) by
releasing the connection's transport (`collect()`) before closing it; closing the channel then
tries to hand the messages the worker holds (tasks running with acks_late, countdowns waiting)
back to Redis through a transport that is gone, raises AttributeError, and the worker exits with
"Unrecoverable error". Found by the fault drill `broker_outage` (RELIABILITY.md): the cpu worker
died with the outage and every task queued after it timed out.

Here the channel skips that hand-back when its transport is gone. Nothing is lost: the messages
are still in Redis's unacked set and come back after the visibility timeout, and our tasks do not
wait for that (a dead holder's lease lapses and the sweep queues the task again)."""

from __future__ import annotations

import logging
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


class Transport(redis.Transport):
    Channel = Channel
