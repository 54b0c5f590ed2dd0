"""The simulator's HTTP side: the request handler, the server, and the command line that starts it.

Routes: the RunningHub API paths (answered by `RunningHubSimulator.handle_api`), `GET /cdn/<task>/<n>.png`
(result pictures), and the control API: `GET /_sim/state`, `POST /_sim/config`, `POST /_sim/reset`.

    python -m devtools.runninghub_sim --host 127.0.0.1 --port 8188 --api-key KEY --run-time 3
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from devtools.runninghub_sim import wire
from devtools.runninghub_sim.state import RunningHubSimulator, SimSettings, merge_settings
from devtools.runninghub_sim.wire import Answer

logger = logging.getLogger("runninghub_sim")

# Room for the multipart framing around a file of the largest size RunningHub accepts.
_MAX_BODY_BYTES = wire.MAX_UPLOAD_BYTES + 1024 * 1024


class _Handler(BaseHTTPRequestHandler):
    server: SimulatorServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/_sim/state":
            self._send(wire.json_answer(self.server.simulator.snapshot()))
            return
        match = wire.CDN_PATH.match(path)
        png = self.server.simulator.result_png(match.group(1), int(match.group(2))) if match else None
        self._send(wire.not_found() if png is None else Answer(200, png, "image/png"))

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        length = int(self.headers.get("Content-Length") or 0)
        if length > _MAX_BODY_BYTES:
            self.close_connection = True
            self._send(wire.error(809))
            return
        body = self.rfile.read(length)
        simulator = self.server.simulator
        if path in wire.API_PATHS:
            self._send(simulator.handle_api(path, body, self.headers.get("Content-Type", "")))
        elif path == "/_sim/config":
            try:
                changes = json.loads(body or b"{}")
                if not isinstance(changes, dict):
                    raise ValueError("settings must be a JSON object")
                settings = simulator.configure(changes)
            except ValueError as exc:
                self._send(wire.json_answer({"error": str(exc)}, status=400))
                return
            self._send(wire.json_answer(dataclasses.asdict(settings)))
        elif path == "/_sim/reset":
            simulator.reset()
            self._send(wire.json_answer(dataclasses.asdict(simulator.settings)))
        else:
            self._send(wire.not_found())

    def _send(self, answer: Answer) -> None:
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        self.wfile.write(answer.body)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s " + format, self.address_string(), *args)


class SimulatorServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], settings: SimSettings) -> None:
        super().__init__(address, _Handler)
        host, port = self.server_address[:2]
        self.simulator = RunningHubSimulator(settings, base_url=f"http://{host!s}:{port}")

    @property
    def base_url(self) -> str:
        return self.simulator.public_url

    def server_close(self) -> None:
        self.simulator.shutdown()
        super().server_close()


def _settings_from_args(args: argparse.Namespace) -> SimSettings:
    changes = {name: value for name, value in vars(args).items() if name not in {"host", "port", "verbose"}}
    changes["fail_tasks"] = tuple(changes["fail_tasks"])
    return merge_settings(SimSettings(), changes)


def _argument_parser() -> argparse.ArgumentParser:
    defaults = SimSettings()
    parser = argparse.ArgumentParser(
        prog="python -m devtools.runninghub_sim",
        description="A local stand-in for RunningHub's legacy OpenAPI, for tests and offline development.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8188)
    parser.add_argument("--api-key", default=defaults.api_key)
    parser.add_argument("--public-url", default="", help="base of result URLs when reached through a proxy")
    parser.add_argument("--latency", type=float, default=defaults.latency, help="seconds added to every answer")
    parser.add_argument("--queue-time", type=float, default=defaults.queue_time, help="seconds a task answers 813")
    parser.add_argument("--run-time", type=float, default=defaults.run_time, help="seconds a task answers 804")
    parser.add_argument("--fail", action="store_true", help="new tasks end with 805")
    parser.add_argument("--fail-tasks", nargs="*", default=[], metavar="TASK_ID", help="these tasks end with 805")
    parser.add_argument("--never-finish", action="store_true", help="new tasks answer 804 forever")
    parser.add_argument("--queue-full", type=int, default=0, metavar="N", help="the next N runs answer 421")
    parser.add_argument("--concurrency", type=int, default=0, help="421 past this many busy tasks (0: no limit)")
    parser.add_argument("--http-5xx", type=int, default=0, metavar="N", help="the next N API calls answer 500/502")
    parser.add_argument("--malformed", type=int, default=0, metavar="N", help="the next N API calls answer bad JSON")
    parser.add_argument("--error-code", type=int, default=0, help="business code for the next --error-count calls")
    parser.add_argument("--error-count", type=int, default=0, metavar="N")
    parser.add_argument("--legacy-pending", action="store_true", help="answer pending tasks with code 0")
    parser.add_argument("--validation-error", action="store_true", help="runs report node_errors in promptTips")
    parser.add_argument("--no-webhook", dest="webhook", action="store_false", help="never call webhookUrl")
    parser.add_argument("--webhook-delay", type=float, default=defaults.webhook_delay)
    parser.add_argument("--webhook-retries", type=int, default=defaults.webhook_retries)
    parser.add_argument("--webhook-retry-interval", type=float, default=defaults.webhook_retry_interval)
    parser.add_argument("--prompt-node-id", default=defaults.prompt_node_id)
    parser.add_argument("--image-node-id", default=defaults.image_node_id)
    parser.add_argument("--output-node-id", default=defaults.output_node_id)
    parser.add_argument("--output-count", type=int, default=defaults.output_count)
    parser.add_argument("--verbose", action="store_true", help="log every request")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _argument_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(message)s")
    server = SimulatorServer((args.host, args.port), _settings_from_args(args))
    logger.info("RunningHub simulator on %s (control API under /_sim/)", server.base_url)
    # Leaving the `with` closes the server and cancels pending webhooks; Ctrl-C is how a developer stops it.
    with server, contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
