#!/usr/bin/env python3
"""A token server for docker-registry's `auth: token:` (the Docker token flow), for the tests.

GET /token?service=S&scope=repository:NAME:ACTIONS[&scope=...] answers {"token": JWT, ...}, an
RS256 JWT the registry accepts: signed with `openssl dgst -sha256 -sign KEY` (python3 has no
crypto library by default), the signing certificate in the x5c header (the registry checks it
against its rootcertbundle, which is that certificate). With --user/--password, requests must
carry those basic credentials (401 otherwise); without, anyone gets every action asked for.
Every request is logged to --log as one line: "token SCOPE... user=U".
"""
import argparse
import base64
import json
import os
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def cert_der_b64(path):
    pem = open(path).read()
    body = pem.split("-----BEGIN CERTIFICATE-----")[1].split("-----END CERTIFICATE-----")[0]
    return "".join(body.split())


class Handler(BaseHTTPRequestHandler):
    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        a = self.server.args
        url = urlparse(self.path)
        if url.path != "/token":
            self.send_error(404)
            return
        q = parse_qs(url.query)
        user = ""
        hdr = self.headers.get("Authorization", "")
        if hdr.startswith("Basic "):
            try:
                user, _, pw = base64.b64decode(hdr[6:]).decode().partition(":")
            except Exception:
                user, pw = "", ""
            if a.user and (user != a.user or pw != a.password):
                self.log("denied", q, user)
                self.send_response(401)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
        elif a.user:
            self.log("denied", q, "")
            self.send_response(401)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        access = []
        for scope in q.get("scope", []):
            parts = scope.split(":")
            if len(parts) >= 3 and parts[0] == "repository":
                access.append({"type": "repository", "name": ":".join(parts[1:-1]),
                               "actions": parts[-1].split(",")})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self.server.cert]}
        claims = {"iss": a.issuer, "sub": user or "anonymous", "aud": q.get("service", [""])[0],
                  "exp": now + a.lifetime, "nbf": now - 10, "iat": now,
                  "jti": b64url(os.urandom(12)), "access": access}
        signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", a.key], input=signing_input.encode(),
                             capture_output=True, check=True).stdout
        token = signing_input + "." + b64url(sig)
        self.log("token", q, user)
        body = json.dumps({"token": token, "access_token": token, "expires_in": a.lifetime,
                           "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log(self, what, q, user):
        if self.server.args.log:
            with open(self.server.args.log, "a") as f:
                f.write("%s %s user=%s\n" % (what, " ".join(q.get("scope", [])), user))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--issuer", required=True)
    p.add_argument("--service", required=True)
    p.add_argument("--user", default="")
    p.add_argument("--password", default="")
    p.add_argument("--lifetime", type=int, default=300)
    p.add_argument("--log", default="")
    args = p.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    srv.args = args
    srv.cert = cert_der_b64(args.cert)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
