#!/usr/bin/env python3
"""Load client for `hedui serve` (benches/serve.sh): N concurrent intake systems, each on
its own keep-alive HTTPS connection, POST /v1/verifications?wait=S with distinct
households; prints requests/s and latency percentiles as one JSON line.

Stdlib only (asyncio + ssl, HTTP/1.1 by hand). Loopback only; bounded in count and time.

  serve_load.py --url https://localhost:PORT --ca ca.pem --token T \
      --households requests.jsonl --concurrency 50 --requests 1000 [--label cold]
  serve_load.py ... --consents persons.txt   # register consents, write refs (setup step)
"""

import argparse
import asyncio
import json
import ssl
import sys
import time
from urllib.parse import urlparse


class Conn:
    def __init__(self, host, port, ctx):
        self.host, self.port, self.ctx = host, port, ctx
        self.r = self.w = None

    async def open(self):
        self.r, self.w = await asyncio.open_connection(
            self.host, self.port, ssl=self.ctx, server_hostname="localhost"
        )

    async def request(self, method, path, token, body=b""):
        if self.w is None:
            await self.open()
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        self.w.write(head + body)
        await self.w.drain()
        status_line = await self.r.readline()
        if not status_line:
            raise ConnectionError("closed")
        status = int(status_line.split()[1])
        length = 0
        chunked = False
        while True:
            line = await self.r.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            k, _, v = line.decode().partition(":")
            if k.lower() == "content-length":
                length = int(v.strip())
            if k.lower() == "transfer-encoding" and "chunked" in v.lower():
                chunked = True
        if chunked:
            data = b""
            while True:
                size = int((await self.r.readline()).strip(), 16)
                if size == 0:
                    await self.r.readline()
                    break
                data += await self.r.readexactly(size)
                await self.r.readline()
        else:
            data = await self.r.readexactly(length)
        return status, data


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return None
    k = min(len(xs) - 1, max(0, int(round(p / 100 * len(xs) + 0.5)) - 1))
    return xs[k]


async def run_load(args, ctx, host, port):
    bodies = [l.encode() for l in open(args.households, encoding="utf-8") if l.strip()]
    n = min(args.requests, len(bodies)) if args.distinct else args.requests
    queue = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(bodies[i % len(bodies)])
    lat, statuses = [], {}
    deadline = time.monotonic() + args.max_seconds

    async def worker():
        c = Conn(host, port, ctx)
        while not queue.empty() and time.monotonic() < deadline:
            body = queue.get_nowait()
            t = time.perf_counter()
            try:
                st, _ = await c.request("POST", f"/v1/verifications?wait={args.wait}", args.token, body)
            except Exception:
                st = 0
                c = Conn(host, port, ctx)
            lat.append(time.perf_counter() - t)
            statuses[st] = statuses.get(st, 0) + 1
        if c.w is not None:
            c.w.close()

    # Open the connections first (the TLS handshakes are not what is measured).
    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    wall = time.perf_counter() - t0
    ms = [x * 1000 for x in lat]
    out = {
        "label": args.label,
        "concurrency": args.concurrency,
        "requests": len(lat),
        "statuses": {str(k): v for k, v in statuses.items()},
        "seconds": round(wall, 2),
        "rps": round(len(lat) / wall, 1) if wall else None,
        "p50_ms": round(pct(ms, 50), 1),
        "p90_ms": round(pct(ms, 90), 1),
        "p99_ms": round(pct(ms, 99), 1),
        "max_ms": round(max(ms), 1),
    }
    print(json.dumps(out), flush=True)


async def register_consents(args, ctx, host, port):
    """Read `id_number region` lines; write `id_number consent_ref` lines to stdout."""
    c = Conn(host, port, ctx)
    for line in open(args.consents, encoding="utf-8"):
        idn, region = line.split()
        body = json.dumps({"id_number": idn, "region_code": region, "purpose": "load test",
                           "valid_until": "2030-12-31"}).encode()
        st, data = await c.request("POST", "/v1/consents", args.token, body)
        if st != 201:
            sys.exit(f"consent registration failed: HTTP {st} {data[:200]!r}")
        print(idn, json.loads(data)["consent_ref"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--households")
    ap.add_argument("--consents")
    ap.add_argument("--concurrency", type=int, default=1)
    ap.add_argument("--requests", type=int, default=100)
    ap.add_argument("--distinct", action="store_true", help="each household at most once")
    ap.add_argument("--wait", type=float, default=10)
    ap.add_argument("--max-seconds", type=float, default=120)
    ap.add_argument("--label", default="")
    args = ap.parse_args()
    u = urlparse(args.url)
    ctx = ssl.create_default_context(cafile=args.ca)
    if args.consents:
        asyncio.run(register_consents(args, ctx, u.hostname, u.port))
    else:
        asyncio.run(run_load(args, ctx, u.hostname, u.port))


if __name__ == "__main__":
    main()
