#!/usr/bin/env python3
"""A server that answers the docker CLI at once, for the floor of `docker ps` and of
`docker run --rm IMAGE true`: what the CLI alone costs (its start-up, the version negotiation,
its requests and the table) when the daemon's share is next to nothing.

It listens on a unix socket and answers:
- `_ping` (GET and HEAD, with the headers the CLI negotiates its API version from);
- `GET /containers/json` with a body read once from a file (a listing captured from a real
  daemon, or `[]`);
- the requests of `docker run --rm` as dockerd answers them, with no container behind them:
  `POST /containers/create` (201 and a new ID), `POST /containers/ID/attach` (the hijack:
  `101 UPGRADED`, then the stream closes once the container "ran"), `POST /containers/ID/wait`
  (headers at once, `{"StatusCode":0}` once it "ran") and `POST /containers/ID/start` (204;
  the container "runs" and exits at that moment);
anything else is a 404.

Usage: canned_daemon.py SOCKET LISTING.json
It serves until SIGTERM, a thread per connection (`docker run` holds its attach and wait open
while it sends start).
"""
import os
import signal
import socketserver
import sys
import threading
from http.server import BaseHTTPRequestHandler

API_VERSION = "1.41"

# ID -> threading.Event, set when the container's start was answered.
EXITED = {}
LOCK = threading.Lock()


def exited(cid):
    with LOCK:
        return EXITED.setdefault(cid, threading.Event())


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    listing = b"[]\n"

    def log_message(self, *args):
        pass

    def headers_only(self, status, content_type, extra=()):
        self.send_response(status)
        self.send_header("Api-Version", API_VERSION)
        self.send_header("Ostype", "linux")
        self.send_header("Server", "canned-daemon")
        if content_type:
            self.send_header("Content-Type", content_type)
        for key, value in extra:
            self.send_header(key, value)

    def answer(self, status, body, content_type="application/json"):
        self.headers_only(status, content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def drain(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)

    def attach(self, cid):
        # The connection hijack: after the 101 the socket is the container's stream.
        self.send_response_only(101, "UPGRADED")
        self.send_header("Content-Type", "application/vnd.docker.multiplexed-stream")
        self.send_header("Connection", "Upgrade")
        self.send_header("Upgrade", "tcp")
        self.end_headers()
        self.wfile.flush()
        exited(cid).wait(30)
        self.close_connection = True

    def wait(self, cid):
        # Headers at once, the body when the container is gone; the connection then closes.
        self.headers_only(200, "application/json", [("Connection", "close")])
        self.end_headers()
        self.wfile.flush()
        exited(cid).wait(30)
        self.wfile.write(b'{"Error":null,"StatusCode":0}\n')
        self.close_connection = True

    def route(self):
        path = self.path.split("?", 1)[0]
        parts = [p for p in path.split("/") if p]
        if parts and parts[0].startswith("v1."):
            parts = parts[1:]
        self.drain()
        post = self.command == "POST"
        if parts == ["_ping"]:
            self.answer(200, b"OK", "text/plain; charset=utf-8")
        elif parts == ["containers", "json"] and self.command == "GET":
            self.answer(200, self.listing)
        elif parts == ["containers", "create"] and post:
            cid = os.urandom(32).hex()
            exited(cid)
            self.answer(201, b'{"Id":"%s","Warnings":[]}\n' % cid.encode())
        elif len(parts) == 3 and parts[0] == "containers" and parts[1] in EXITED and post:
            cid, verb = parts[1], parts[2]
            if verb == "attach":
                self.attach(cid)
            elif verb == "wait":
                self.wait(cid)
            elif verb == "start":
                self.answer(204, b"", None)
                exited(cid).set()
            else:
                self.answer(404, b'{"message":"page not found"}\n')
        else:
            self.answer(404, b'{"message":"page not found"}\n')

    do_GET = route
    do_HEAD = route
    do_POST = route


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    # The client is on this machine: its address is the socket's path, not (host, port).
    def get_request(self):
        request, _ = self.socket.accept()
        return request, ("local", 0)


def main():
    sock, listing = sys.argv[1], sys.argv[2]
    with open(listing, "rb") as f:
        Handler.listing = f.read()
    if os.path.exists(sock):
        os.unlink(sock)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with Server(sock, Handler) as server:
        try:
            server.serve_forever()
        finally:
            os.unlink(sock)


if __name__ == "__main__":
    main()
