"""A local stand-in for RunningHub's legacy OpenAPI, for tests and offline development.

It speaks the same wire format as the real service (HTTP 200 with `{code, msg, data}`, 19-digit
string task ids, `promptTips` as a JSON string, 804/813 while a task is busy, 805 with
`failedReason`), produces real PNG results derived from the uploaded input and serves them
itself, and can be told to misbehave (latency, queueing, failures, 421, HTTP 5xx, broken JSON,
tasks that never end, webhooks) from the command line or at run time through `/_sim/*`.

- `state.py`: settings, the fault modes (listed there), tasks, counters, webhooks, reset.
- `wire.py`: paths, business codes, the JSON answers, the multipart upload parser.
- `images.py`: the result PNGs and the LoadImage decode check.
- `server.py`: the HTTP handler, `SimulatorServer`, the command line (`__main__.py` runs it).

    python -m devtools.runninghub_sim --host 127.0.0.1 --port 8188 --api-key KEY --run-time 3
"""

from devtools.runninghub_sim.server import SimulatorServer, main
from devtools.runninghub_sim.state import RunningHubSimulator, SimSettings, merge_settings
from devtools.runninghub_sim.wire import parse_multipart

__all__ = ["RunningHubSimulator", "SimSettings", "SimulatorServer", "main", "merge_settings", "parse_multipart"]
