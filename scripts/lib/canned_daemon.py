#!/usr/bin/env python3
"""A server that answers the docker CLI at once, for the floor of `docker ps`: what the CLI
alone costs (its start-up, the version negotiation, the table) when the daemon's share is
next to nothing. It listens on a unix socket and answers `_ping` (GET and HEAD, with the
headers the CLI negotiates its API version from) and `GET /containers/json` with a body read
once from a file (a listing captured from a real daemon, or `[]`); anything else is a 404.

Usage: canned_daemon.py SOCKET LISTING.json
It serves until SIGTERM. One thread, one connection at a time: the docker CLI opens one.
"""
import os
import signal
import socketserver
import sys
from http.server import BaseHTTPRequestHandler

API_VERSION = "1.41"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    listing = b"[]\n"

    def log_message(self, *args):
        pass

    def answer(self, status, body, content_type="application/json"):
        self.send_response(status)
        self.send_header("Api-Version", API_VERSION)
        self.send_header("Ostype", "linux")
        self.send_header("Server", "canned-daemon")
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def route(self):
        path = self.path.split("?", 1)[0]
        parts = [p for p in path.split("/") if p]
        if parts and parts[0].startswith("v1."):
            parts = parts[1:]
        if parts == ["_ping"]:
            self.answer(200, b"OK", "text/plain; charset=utf-8")
        elif parts == ["containers", "json"] and self.command == "GET":
            self.answer(200, self.listing)
        else:
            self.answer(404, b'{"message":"page not found"}\n')

    do_GET = route
    do_HEAD = route


class Server(socketserver.UnixStreamServer):
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
