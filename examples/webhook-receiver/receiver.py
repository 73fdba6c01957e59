#!/usr/bin/env python3
"""A minimal banli webhook receiver (Python 3 standard library only).

Checks every delivery's signature before trusting it, refuses stale timestamps, applies each
event once (by its Banli-Delivery id), and answers 2xx quickly; banli retries anything else.

    python3 receiver.py --port 9911 --secret whsec_...      # or --secret-file FILE

Each verified delivery prints one line: `ok <delivery id> <event type> <aggregate id> v<version>`;
a refused one prints `refused <reason>` and gets a 401.
"""

import argparse
import hashlib
import hmac
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOLERANCE_SECONDS = 300


def verify(header, secret, body, now=None):
    """True when one `v1` of `t=<unix>,v1=<hex>[,v1=<hex>]` is HMAC-SHA256(secret, "<t>." + body)."""
    now = int(time.time()) if now is None else now
    parts = [p.strip().split("=", 1) for p in header.split(",") if "=" in p]
    t = next((v for k, v in parts if k == "t"), None)
    if t is None or not t.lstrip("-").isdigit() or abs(now - int(t)) > TOLERANCE_SECONDS:
        return False
    expected = hmac.new(secret, t.encode() + b"." + body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, v) for k, v in parts if k == "v1")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=9911)
    ap.add_argument("--secret")
    ap.add_argument("--secret-file")
    args = ap.parse_args()
    secret = args.secret or (open(args.secret_file).read().strip() if args.secret_file else None)
    if not secret:
        sys.exit("give --secret or --secret-file (the secret shown when the webhook was created)")
    secrets = [secret.encode()]
    seen = set()  # a real system keeps this in its database, beside the change it made

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            sig = self.headers.get("Banli-Signature", "")
            if not any(verify(sig, s, body) for s in secrets):
                print("refused bad or missing signature", flush=True)
                self.send_response(401)
                self.end_headers()
                return
            delivery = self.headers.get("Banli-Delivery", "")
            if delivery not in seen:  # a retry or a replay of what was applied: nothing to do
                seen.add(delivery)
                event = json.loads(body)
                print("ok", delivery, event["event_type"], event["aggregate_id"],
                      "v%d" % event["aggregate_version"], flush=True)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_):
            pass

    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
