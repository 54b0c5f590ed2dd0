"""Run the RunningHub simulator inside a test process.

    with running_simulator(run_time=0.2) as sim:
        client = RunningHubClient(base_url=sim.base_url, api_key=sim.api_key)
        sim.configure(http_5xx=2)
        ...

The handle talks to the simulator through its HTTP control API, so `SimulatorHandle.connect()`
drives a simulator started elsewhere (another process, a container) the same way.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from devtools.runninghub_sim import SimSettings, SimulatorServer, merge_settings
from devtools.runninghub_sim import state as sim_state


class SimulatorHandle:
    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        server: SimulatorServer | None = None,
        thread: threading.Thread | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self._server = server
        self._thread = thread

    @classmethod
    def connect(cls, base_url: str) -> SimulatorHandle:
        """A handle on a simulator that is already running; `stop()` leaves it running."""
        handle = cls(base_url=base_url, api_key="")
        handle.api_key = str(handle.state()["config"]["api_key"])
        return handle

    def configure(self, **settings: Any) -> dict[str, Any]:
        """Merge `settings` into the simulator's configuration; returns the whole configuration."""
        answer = self._control("POST", "/_sim/config", settings)
        self.api_key = str(answer["api_key"])
        return answer

    def reset(self) -> None:
        """Back to the start-up configuration, with no tasks, uploads, counters or deliveries."""
        answer = self._control("POST", "/_sim/reset", {})
        self.api_key = str(answer["api_key"])

    def state(self) -> dict[str, Any]:
        return self._control("GET", "/_sim/state", None)

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None

    def _control(self, method: str, path: str, payload: dict[str, Any] | None) -> dict[str, Any]:
        data = None if payload is None else json.dumps(payload).encode()
        # base_url is the simulator's own http address, never a caller-supplied scheme.
        request = urllib.request.Request(  # noqa: S310
            self.base_url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            answer: dict[str, Any] = json.loads(response.read())
        return answer


def start_simulator(**settings: Any) -> SimulatorHandle:
    """Start a simulator on an ephemeral loopback port in a daemon thread."""
    server = SimulatorServer(("127.0.0.1", 0), merge_settings(SimSettings(), settings))
    thread = threading.Thread(target=server.serve_forever, name="runninghub-sim", daemon=True)
    thread.start()
    return SimulatorHandle(
        base_url=server.base_url, api_key=server.simulator.settings.api_key, server=server, thread=thread
    )


@contextmanager
def running_simulator(**settings: Any) -> Iterator[SimulatorHandle]:
    handle = start_simulator(**settings)
    try:
        yield handle
    finally:
        handle.stop()


class StoppedClock:
    """The clock of a simulator running in this process, stopped: its jobs move from queued to
    running to finished only when the test calls `advance`, however slow the machine."""

    def __init__(self) -> None:
        self.now = time.monotonic()

    def monotonic(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


@contextmanager
def stopped_clock() -> Iterator[StoppedClock]:
    """Stop the in-process simulator's clock for the duration (timers such as webhook deliveries
    still run on real time)."""
    clock = StoppedClock()
    real = sim_state.time
    sim_state.time = clock  # type: ignore[assignment]
    try:
        yield clock
    finally:
        sim_state.time = real
