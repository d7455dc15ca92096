"""A tiny product-side webhook receiver for tests: a real HTTP server on 127.0.0.1 that answers each POST with
the next status of a script (then 200), and keeps what it got (headers and raw body)."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class WebhookReceiver:
    def __init__(self, *statuses: int, port: int = 0, hang_seconds: float = 0.0):
        self.statuses, self.received, self.hang_seconds = list(statuses), [], hang_seconds
        self.release = threading.Event()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    receiver.received.append({"headers": dict(self.headers), "body": body, "path": self.path})
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                if receiver.hang_seconds:
                    receiver.release.wait(receiver.hang_seconds)  # longer than the client's timeout
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:  # the client gave up waiting; nobody to answer
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def event_ids(self) -> list[str]:
        return [json.loads(item["body"])["id"] for item in self.received]

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
