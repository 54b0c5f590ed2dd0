"""Waking long-polling requests (`GET /api/task/{id}?wait=N`) when a task changes.

Every status or stage change publishes the task id on Redis after its transaction commits; each
web process keeps one subscription (a daemon thread) and wakes the requests waiting on that id.
A waiting request holds no database connection and makes no query until it is woken or times out.
Without Redis (the embedded default) waiters re-read the task once a second instead.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager

import redis
from django.conf import settings

logger = logging.getLogger(__name__)

CHANNEL_PREFIX = "photo:task-changed:"
# Without Redis a waiter looks again this often.
POLL_SECONDS = 1.0


def _client() -> redis.Redis | None:
    url = settings.TASK_EVENTS_REDIS_URL
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2) if url else None


def task_changed(task_id: uuid.UUID) -> None:
    """Tell the waiters of `task_id`; call after commit. Losing a message only delays a waiter
    until its timeout, so a Redis failure is logged, not raised."""
    client = _client()
    if client is None:
        return
    try:
        client.publish(f"{CHANNEL_PREFIX}{task_id}", b"1")
    except redis.RedisError:
        logger.warning("could not publish the change of task %s", task_id, exc_info=True)
    finally:
        client.close()


# Publishes each id of ARGV[2..] on the channel ARGV[1] .. id: the same messages as `task_changed`,
# sent by Redis itself, so a thousand of them cost one command instead of a thousand.
_PUBLISH_EACH = "for i = 2, #ARGV do redis.call('PUBLISH', ARGV[1] .. ARGV[i], '1') end"


def tasks_changed(task_ids: list[uuid.UUID]) -> None:
    """`task_changed` for many tasks (the sweep's batches): one connection, one command."""
    client = _client()
    if client is None or not task_ids:
        return
    try:
        client.eval(_PUBLISH_EACH, 0, CHANNEL_PREFIX, *(str(task_id) for task_id in task_ids))
    except redis.RedisError:
        logger.warning("could not publish the change of %d tasks", len(task_ids), exc_info=True)
    finally:
        client.close()


class _Listener:
    """One Redis subscription per process, fanned out to the threads waiting on task ids."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: dict[str, set[threading.Event]] = defaultdict(set)
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        while True:
            client = _client()
            if client is None:
                return
            try:
                pubsub = client.pubsub(ignore_subscribe_messages=True)
                pubsub.psubscribe(f"{CHANNEL_PREFIX}*")
                self._ready.set()
                for message in pubsub.listen():
                    task_id = message["channel"].decode()[len(CHANNEL_PREFIX) :]
                    with self._lock:
                        events = list(self._waiters.get(task_id, ()))
                    for event in events:
                        event.set()
            except redis.RedisError:
                logger.warning("task change subscription lost; reconnecting", exc_info=True)
                self._ready.clear()
                # Waiters fall back to their timeout meanwhile; a short pause avoids a tight loop.
                threading.Event().wait(1)

    def _start(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="task-change-listener", daemon=True)
                self._thread.start()
        self._ready.wait(timeout=2)

    @contextmanager
    def watching(self, task_id: uuid.UUID) -> Iterator[threading.Event]:
        self._start()
        event = threading.Event()
        key = str(task_id)
        with self._lock:
            self._waiters[key].add(event)
        try:
            yield event
        finally:
            with self._lock:
                self._waiters[key].discard(event)
                if not self._waiters[key]:
                    del self._waiters[key]


_listener = _Listener()


@contextmanager
def task_watch(task_id: uuid.UUID) -> Iterator[threading.Event | None]:
    """An event set when `task_id` changes, registered before the caller reads the task (so no
    change between the read and the wait is missed); None without Redis (poll instead)."""
    if not settings.TASK_EVENTS_REDIS_URL:
        yield None
        return
    with _listener.watching(task_id) as event:
        yield event
