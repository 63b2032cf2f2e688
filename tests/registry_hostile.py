#!/usr/bin/env python3
"""A registry that misbehaves on purpose, for imgfs's bad-input tests.

Serves the first image of an OCI layout directory (--layout) under any repository and tag, with
Range support, and breaks it the way --mode says:

  ok              behave
  big-manifest    a manifest of 5 MiB (whitespace after the JSON)
  manifest-cut    the manifest's first half (not JSON), with a matching Content-Length
  manifest-digest a Docker-Content-Digest that is not the manifest's
  blob-corrupt    the largest layer with one byte flipped (same size)
  blob-short      the largest layer cut to half, served consistently (a Content-Length of half)
  diff-id         a config whose diff_ids are wrong (manifest adjusted to it)
  truncate-once   the first GET of the largest layer closes the connection half way; later
                  requests are served (with Range) - a pull must resume
  ignore-range    truncate-once, and Range requests answered 200 with the whole blob
  die             the first GET of the largest layer sends half of it, then the server exits
  truncate-tamper truncate-once, and what comes after the cut has one byte flipped (a registry
                  whose blob changed between the two requests) - a pull must notice
  retry           the first two GETs of every blob answer 503 / 429 with Retry-After: 0
  retry-after     the first two GETs of every blob answer 503 with Retry-After: 2 (seconds), then
                  429 with Retry-After: an HTTP-date 2 s ahead
  reauth          Bearer auth: tokens from /token; the first token is refused (401) on blob
                  requests, as if it had expired mid-pull
  reauth403       as reauth, but the first token is refused with a bare 403 (no challenge), as
                  some registries answer an expired token
  huge-config     a config of 20 MiB
  multirange-ok   a multi-range request (Range: bytes=a-b,c-d) answered 206 multipart/byteranges
  multirange-400  ... answered 400; single ranges are served
  multirange-416  ... answered 416
  multirange-200  ... answered 200 with the whole blob (what every mode but multirange-ok does)
  multirange-bad  ... answered 206 with only the first range, not multipart
  tags-offsite    the tag list's Link header points to another host (which a client must not
                  follow)
  upload-barrier  accepts pushes (blobs and manifests kept in memory); each blob's final PUT waits
                  until --barrier uploads are in flight at once (at most --barrier-wait seconds;
                  after the first time, never again), and the log says "inflight=N" on each PUT

GET /v2/REPO/tags/list lists five tags, t1 to t5 (each the one image), two a page whatever ?n=
asks, with a Link header to the next page (?last=), as the distribution spec pages a listing.

Every request is logged to --log as "METHOD PATH range=RANGE port=CLIENT_PORT auth=yes|no -> STATUS
t=UNIXTIME" (the client's port tells its connections apart).
"""
import argparse
import email.utils
import hashlib
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MULTIRANGE = ("multirange-ok", "multirange-400", "multirange-416", "multirange-200", "multirange-bad")


class State:
    def __init__(self, args):
        self.args = args
        self.blobs = {}
        self.lock = threading.Lock()
        self.counts = {}
        layout = args.layout
        index = json.load(open(os.path.join(layout, "index.json")))
        mdigest = index["manifests"][0]["digest"]
        self.manifest = self.read_blob(mdigest)
        m = json.loads(self.manifest)
        for d in [m["config"]] + m["layers"]:
            self.blobs[d["digest"]] = self.read_blob(d["digest"])
        self.big = max(m["layers"], key=lambda d: d["size"])["digest"]
        mode = args.mode
        if mode == "diff-id" or mode == "huge-config":
            cfg = json.loads(self.blobs[m["config"]["digest"]])
            if mode == "diff-id":
                cfg["rootfs"]["diff_ids"] = ["sha256:" + "0" * 64 for _ in cfg["rootfs"]["diff_ids"]]
            else:
                cfg["padding"] = "x" * (20 << 20)
            data = json.dumps(cfg).encode()
            d = "sha256:" + hashlib.sha256(data).hexdigest()
            self.blobs[d] = data
            m["config"] = {"mediaType": m["config"]["mediaType"], "digest": d, "size": len(data)}
            self.manifest = json.dumps(m).encode()
        if mode == "blob-corrupt":
            b = bytearray(self.blobs[self.big])
            b[len(b) // 2] ^= 0xFF
            self.blobs[self.big] = bytes(b)
        if mode == "blob-short":
            self.blobs[self.big] = self.blobs[self.big][: len(self.blobs[self.big]) // 2]
        self.mdigest = "sha256:" + hashlib.sha256(self.manifest).hexdigest()
        self.token_count = 0
        self.uploads = {}
        self.inflight = 0
        self.barrier_done = False
        self.cond = threading.Condition(self.lock)

    def read_blob(self, digest):
        algo, hexd = digest.split(":")
        return open(os.path.join(self.args.layout, "blobs", algo, hexd), "rb").read()

    def count(self, key):
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + 1
            return self.counts[key]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def log(self, status):
        a = self.server.state.args
        if a.log:
            with open(a.log, "a") as f:
                f.write("%s %s range=%s port=%d auth=%s -> %s t=%.3f\n" % (
                    self.command, self.path, self.headers.get("Range", "-"), self.client_address[1],
                    "yes" if self.headers.get("Authorization") else "no", status, time.time()))

    def reply(self, status, body=b"", headers=None, send_body=True):
        self.log(status)
        if isinstance(status, str):
            status = int(status.split()[0])
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body and self.command != "HEAD":
            self.wfile.write(body)

    def tags(self, repo):
        from urllib.parse import parse_qs, urlsplit
        last = parse_qs(urlsplit(self.path).query).get("last", [""])[0]
        names = ["t%d" % i for i in range(1, 6)]
        rest = [t for t in names if t > last]
        page = rest[:2]
        headers = {"Content-Type": "application/json"}
        if len(rest) > 2:
            host = "http://127.0.0.2:1" if self.server.state.args.mode == "tags-offsite" else ""
            headers["Link"] = '<%s/v2/%s/tags/list?n=2&last=%s>; rel="next"' % (host, repo, page[-1])
        self.reply(200, json.dumps({"name": repo, "tags": page}).encode(), headers)

    def authorized(self):
        st = self.server.state
        if st.args.mode not in ("reauth", "reauth403"):
            return True
        auth = self.headers.get("Authorization", "")
        challenge = {"WWW-Authenticate": 'Bearer realm="http://127.0.0.1:%d/token",service="hostile",scope="repository:x:pull"' % self.server.server_port}
        if not auth.startswith("Bearer "):
            self.reply(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"token needed"}]}', challenge)
            return False
        if auth == "Bearer token-1" and "/blobs/" in self.path and st.args.mode == "reauth403":
            self.reply(403, b'{"errors":[{"code":"DENIED","message":"token expired"}]}')
            return False
        if auth == "Bearer token-1" and "/blobs/" in self.path:
            self.reply(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"token expired"}]}', challenge)
            return False
        return True

    def multirange(self, mode, data, spec, headers):
        if mode == "multirange-400":
            self.reply(400, b'{"errors":[{"code":"RANGE_INVALID","message":"one range only"}]}')
            return
        if mode == "multirange-416":
            self.reply(416, b"", {"Content-Range": "bytes */%d" % len(data)})
            return
        if mode == "multirange-200":
            self.reply(200, data, headers)
            return
        parts = []
        for r in spec.split(","):
            a, _, b = r.strip().partition("-")
            a, b = int(a), min(int(b), len(data) - 1)
            parts.append((a, b))
        if mode == "multirange-bad":
            a, b = parts[0]
            headers["Content-Range"] = "bytes %d-%d/%d" % (a, b, len(data))
            self.reply(206, data[a:b + 1], headers)
            return
        boundary = "imgfs-hostile-boundary"
        body = b""
        for a, b in parts:
            body += ("--%s\r\nContent-Type: application/octet-stream\r\n"
                     "Content-Range: bytes %d-%d/%d\r\n\r\n" % (boundary, a, b, len(data))).encode()
            body += data[a:b + 1] + b"\r\n"
        body += ("--%s--\r\n" % boundary).encode()
        self.reply(206, body, {"Content-Type": "multipart/byteranges; boundary=" + boundary})

    def do_HEAD(self):
        self.do_GET()

    def do_POST(self):
        UploadHandler.post(self)

    def do_PATCH(self):
        UploadHandler.patch(self)

    def do_PUT(self):
        UploadHandler.put(self)

    def do_GET(self):
        st = self.server.state
        mode = st.args.mode
        path = self.path.split("?")[0]
        if path == "/token":
            with st.lock:
                st.token_count += 1
                n = st.token_count
            body = json.dumps({"token": "token-%d" % n}).encode()
            self.reply(200, body, {"Content-Type": "application/json"})
            return
        if not self.authorized():
            return
        if path == "/v2/":
            self.reply(200, b"{}", {"Content-Type": "application/json"})
            return
        if path.startswith("/v2/") and path.endswith("/tags/list"):
            self.tags(path[4:-10])
            return
        parts = path.split("/")
        if len(parts) < 5 or parts[1] != "v2":
            self.reply(404)
            return
        kind, ref = parts[-2], parts[-1]
        if kind == "manifests":
            body = st.manifest
            digest = st.mdigest
            if mode == "big-manifest":
                body = st.manifest + b" " * (5 << 20)
            if mode == "manifest-cut":
                body = st.manifest[: len(st.manifest) // 2]
                digest = "sha256:" + hashlib.sha256(body).hexdigest()
            if mode == "manifest-digest":
                digest = "sha256:" + "1" * 64
            self.reply(200, body, {"Content-Type": MT_MANIFEST, "Docker-Content-Digest": digest})
            return
        if kind != "blobs" or ref not in st.blobs:
            self.reply(404, b'{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown"}]}')
            return
        data = st.blobs[ref]
        if mode == "retry" and self.command == "GET":
            n = st.count("retry " + ref)
            if n <= 2:
                self.reply(503 if n == 1 else 429, b"busy", {"Retry-After": "0"})
                return
        if mode == "retry-after" and self.command == "GET":
            n = st.count("retry " + ref)
            if n == 1:
                self.reply(503, b"busy", {"Retry-After": "2"})
                return
            if n == 2:
                when = email.utils.formatdate(time.time() + 2, usegmt=True)
                self.reply(429, b"slow down", {"Retry-After": when})
                return
        rng = self.headers.get("Range")
        start = 0
        status = 200
        headers = {"Content-Type": "application/octet-stream", "Docker-Content-Digest": ref}
        if rng and rng.startswith("bytes=") and "," in rng and mode in MULTIRANGE:
            self.multirange(mode, data, rng[6:], headers)
            return
        if rng and rng.startswith("bytes=") and mode != "ignore-range":
            spec = rng[6:]
            if "," not in spec:
                a, _, b = spec.partition("-")
                if a == "":
                    start = max(0, len(data) - int(b))
                    end = len(data) - 1
                else:
                    start = int(a)
                    end = int(b) if b else len(data) - 1
                end = min(end, len(data) - 1)
                if start >= len(data):
                    self.reply(416)
                    return
                headers["Content-Range"] = "bytes %d-%d/%d" % (start, end, len(data))
                data = data[start:end + 1]
                status = 206
        cut = ref == st.big and self.command == "GET" and \
            mode in ("truncate-once", "ignore-range", "die", "truncate-tamper") and st.count("cut") == 1
        if ref == st.big and mode == "truncate-tamper" and not cut and start > 0 and status == 206:
            b = bytearray(data)
            b[len(b) // 2] ^= 0xFF
            data = bytes(b)
        if cut:
            # announce everything, send half, and go away
            self.log("%d cut" % status)
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            if mode == "die":
                os._exit(0)
            self.close_connection = True
            return
        self.reply(status, data, headers)


class UploadHandler:
    """POST/PATCH/PUT of the upload-barrier mode."""

    @staticmethod
    def body(h):
        n = int(h.headers.get("Content-Length") or 0)
        return h.rfile.read(n) if n else b""

    @staticmethod
    def post(h):
        st = h.server.state
        UploadHandler.body(h)
        uid = "u%d" % st.count("upload")
        st.uploads[uid] = b""
        repo = "/".join(h.path.split("?")[0].split("/")[2:-3])
        h.reply(202, b"", {"Location": "/v2/%s/blobs/uploads/%s" % (repo, uid), "Range": "0-0"})

    @staticmethod
    def patch(h):
        st = h.server.state
        uid = h.path.split("?")[0].split("/")[-1]
        st.uploads[uid] = st.uploads.get(uid, b"") + UploadHandler.body(h)
        h.reply(202, b"", {"Location": h.path.split("?")[0]})

    @staticmethod
    def put(h):
        st = h.server.state
        path, _, query = h.path.partition("?")
        data = UploadHandler.body(h)
        if "/manifests/" in path:
            d = "sha256:" + hashlib.sha256(data).hexdigest()
            h.reply(201, b"", {"Docker-Content-Digest": d})
            return
        uid = path.split("/")[-1]
        data = st.uploads.pop(uid, b"") + data
        d = "sha256:" + hashlib.sha256(data).hexdigest()
        want = dict(kv.partition("=")[::2] for kv in query.split("&")).get("digest", "")
        with st.cond:
            st.inflight += 1
            seen = st.inflight
            st.cond.notify_all()
            if not st.barrier_done:
                st.cond.wait_for(lambda: st.inflight >= st.args.barrier, st.args.barrier_wait)
                st.barrier_done = True
            seen = max(seen, st.inflight)
            st.inflight -= 1
        if want != d:
            h.reply(400, b'{"errors":[{"code":"DIGEST_INVALID","message":"digest mismatch"}]}')
            return
        st.blobs[d] = data
        h.reply("201 inflight=%d" % seen, b"", {"Docker-Content-Digest": d})


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--layout", required=True)
    p.add_argument("--mode", default="ok")
    p.add_argument("--log", default="")
    p.add_argument("--barrier", type=int, default=3)
    p.add_argument("--barrier-wait", type=float, default=3.0)
    args = p.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    srv.state = State(args)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
