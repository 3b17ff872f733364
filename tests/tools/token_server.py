#!/usr/bin/env python3
"""A token server for Distribution's token auth, for the registry tests:
PORT KEY CERT. Every GET is answered with a JWT (RS256, signed by
`openssl dgst` with KEY, CERT in its x5c header, which the registry's
rootcertbundle holds) granting the scopes asked for, to anyone: the test
checks that fr follows the Bearer challenge, not who may do what. Listens
on 127.0.0.1 only, until killed."""
import base64
import http.server
import json
import os
import subprocess
import sys
import time
import urllib.parse

port, key, cert = int(sys.argv[1]), sys.argv[2], sys.argv[3]
der = subprocess.run(
    ["openssl", "x509", "-in", cert, "-outform", "DER"], capture_output=True, check=True
).stdout


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        query = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
        access = []
        for scope in query.get("scope", []):
            kind, name, actions = scope.split(":")
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(der).decode()]}
        claims = {
            "iss": "fr-test-issuer",
            "sub": "frtest",
            "aud": query.get("service", [""])[0],
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": os.urandom(8).hex(),
            "access": access,
        }
        signing = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
        sig = subprocess.run(
            ["openssl", "dgst", "-sha256", "-sign", key],
            input=signing.encode(),
            capture_output=True,
            check=True,
        ).stdout
        body = json.dumps({"token": signing + "." + b64(sig)}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


http.server.HTTPServer(("127.0.0.1", port), Handler).serve_forever()
