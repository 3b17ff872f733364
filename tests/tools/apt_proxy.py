#!/usr/bin/env python3
"""A caching HTTP proxy for Debian's mirror, so that the build tests
download each package once, not once per debootstrap (fr's and real
root's, bookworm and bullseye, as two users).

    apt_proxy.py CACHE_DIR [TTL_SECONDS]

Listens on 127.0.0.1 (a free port, printed on stdout as the first line),
serves plain-HTTP proxy requests (`http_proxy=http://127.0.0.1:PORT`, which
debootstrap's wget and apt both honour) and keeps each answer under
CACHE_DIR: packages (`/pool/`) and files named by their hash (`/by-hash/`)
for ever, a suite's index files (`/dists/SUITE/`) when they are younger
than TTL_SECONDS (default a day) at the proxy's start, then for as long as
it runs: every build of one test run sees the same indexes, real root's
and fr's alike. When a suite's Release or InRelease is fetched again, the
suite's other cached indexes go with the old one, so that they never
disagree. The proxy ends when its standard input does (the test process
that started it is gone).
"""
import http.client
import http.server
import os
import shutil
import socketserver
import sys
import threading
import time
import urllib.parse

CACHE = os.path.abspath(sys.argv[1])
TTL = int(sys.argv[2]) if len(sys.argv) > 2 else 86400
LOCK = threading.Lock()
CUTOFF = time.time() - TTL


def cache_path(url):
    u = urllib.parse.urlsplit(url)
    parts = [p for p in u.path.split("/") if p not in ("", ".", "..")]
    return os.path.join(CACHE, u.netloc.replace(":", "_"), *parts)


def fresh(path, url):
    if not os.path.isfile(path):
        return False
    if "/pool/" in url or "/by-hash/" in url:
        return True
    return os.path.getmtime(path) > CUTOFF


def suite_dir(path):
    """The cached directory of the suite whose Release file `path` is."""
    return os.path.dirname(path)


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def fail(self, code, why):
        body = why.encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        url = self.path
        if not url.startswith("http://"):
            return self.fail(400, "this is a proxy: ask for an http:// URL")
        path = cache_path(url)
        if not fresh(path, url):
            try:
                self.fetch(url, path)
            except Exception as e:  # the mirror is unreachable or refused
                return self.fail(502, f"fetching {url}: {e}")
            if not os.path.isfile(path):
                return  # fetch() answered with the mirror's error
        size = os.path.getsize(path)
        self.send_response(200)
        self.send_header("Content-Length", str(size))
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        if self.command == "HEAD":
            return
        with open(path, "rb") as f:
            shutil.copyfileobj(f, self.wfile)

    def fetch(self, url, path):
        u = urllib.parse.urlsplit(url)
        conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=60)
        target = u.path + ("?" + u.query if u.query else "")
        conn.request("GET", target, headers={"User-Agent": "fr-tests-apt-proxy"})
        resp = conn.getresponse()
        if resp.status in (301, 302, 303, 307, 308):
            location = urllib.parse.urljoin(url, resp.getheader("Location", ""))
            resp.read()
            conn.close()
            return self.fetch(location, path)
        if resp.status != 200:
            body = resp.read()
            conn.close()
            self.send_response(resp.status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            return
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.part"
        with open(tmp, "wb") as f:
            shutil.copyfileobj(resp, f)
        conn.close()
        with LOCK:
            name = os.path.basename(path)
            if "/dists/" in url and name in ("InRelease", "Release") and os.path.exists(path):
                # A new Release: the suite's old indexes go with the old one.
                for entry in os.listdir(suite_dir(path)):
                    full = os.path.join(suite_dir(path), entry)
                    if entry not in ("InRelease", "Release", "Release.gpg"):
                        shutil.rmtree(full, ignore_errors=True) if os.path.isdir(full) else os.remove(full)
            os.replace(tmp, path)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    os.makedirs(CACHE, exist_ok=True)
    server = Server(("127.0.0.1", 0), Proxy)
    print(server.server_address[1], flush=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    # Until the process that started the proxy is gone.
    sys.stdin.buffer.read()
    os._exit(0)


if __name__ == "__main__":
    main()
