"""A webhook endpoint in its own process, for the fault tests: it can be
killed and started again while a worker delivers to it.

``python tests/_receiver_process.py PORT SECRET IDS_FILE``: every POST is
verified with the reference ``standardwebhooks`` package; a verified one is
answered 204 and its ``webhook-id`` appended to ``IDS_FILE`` (one line, the
file opened in append mode, so restarts add to it); a POST that fails
verification is answered 400 and its id written as ``BAD <id>``. ``GET``
answers 200 (ready check).
"""

from __future__ import annotations

import http.server
import sys
import typing as t

import standardwebhooks


def main() -> None:
    port, secret, ids_file = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    verifier = standardwebhooks.Webhook(secret)
    out = open(ids_file, "a", encoding="ascii", buffering=1)  # noqa: SIM115

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            body = self.rfile.read(length)
            if len(body) < length:
                # The sender died mid-request (the test SIGKILLs it): an
                # unfinished delivery, not a bad signature.
                self.close_connection = True
                return
            headers = {key.lower(): value for key, value in self.headers.items()}
            event_id = headers.get("webhook-id", "")
            try:
                verifier.verify(body, headers)
            except Exception:
                out.write(f"BAD {event_id}\n")
                status = 400
            else:
                out.write(f"{event_id}\n")
                status = 204
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: t.Any) -> None:
            pass

    http.server.ThreadingHTTPServer.allow_reuse_address = True
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.serve_forever(0.05)


if __name__ == "__main__":
    main()
