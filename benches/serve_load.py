#!/usr/bin/env python3
"""Load client for `hedui serve` (benches/serve.sh): N concurrent intake systems, each on
its own keep-alive HTTPS connection, POST /v1/verifications?wait=S with distinct
households; prints requests/s and latency percentiles as one JSON line.

Besides the client-side latency it reports, from /v1/metrics read before and after the
run, hedui's own overhead as the server measured it (hedui_verification_overhead_seconds:
request headers parsed → response ready, minus the slowest source call as hedui saw it;
p50/p99 interpolated within histogram buckets, as Prometheus' histogram_quantile does), and
with --pids the CPU time each process spent per request (from /proc/PID/stat).

Stdlib only (asyncio + ssl, HTTP/1.1 by hand). Loopback only; bounded in count and time.

  serve_load.py --url https://localhost:PORT --ca ca.pem --token T \
      --households requests.jsonl --concurrency 50 --requests 1000 [--label cold]
  serve_load.py ... --consents persons.txt   # register consents, write refs (setup step)
"""

import argparse
import asyncio
import datetime
import json
import os
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


def histogram(text, name, labels=""):
    """[(upper bound, cumulative count)] of a Prometheus histogram; `labels` as written
    before `le` (e.g. 'phase="build",'), empty for an unlabelled one."""
    out = []
    for line in text.splitlines():
        if line.startswith(name + "_bucket{" + labels + "le="):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            out.append((float("inf") if le == "+Inf" else float(le), float(line.split()[-1])))
    return out


def hist_quantile(q, before, after):
    """Quantile q of the observations made between two snapshots (linear within a bucket)."""
    if not after:
        return None
    prev = dict(before)
    b = [(le, c - prev.get(le, 0.0)) for le, c in after]
    total = b[-1][1]
    if total <= 0:
        return None
    rank = q * total
    lo, below = 0.0, 0.0
    for le, c in b:
        if c >= rank:
            if le == float("inf"):
                return lo
            return lo + (le - lo) * ((rank - below) / (c - below) if c > below else 0.0)
        lo, below = le, c
    return lo


def cpu_seconds(pid):
    try:
        f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


async def metrics_text(ctx, host, port, token):
    c = Conn(host, port, ctx)
    try:
        st, data = await c.request("GET", "/v1/metrics", token)
        return data.decode() if st == 200 else ""
    except Exception:
        return ""
    finally:
        if c.w is not None:
            c.w.close()


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return None
    k = min(len(xs) - 1, max(0, int(round(p / 100 * len(xs) + 0.5)) - 1))
    return xs[k]


async def run_load(args, ctx, host, port):
    bodies = [l.encode() for l in open(args.households, encoding="utf-8") if l.strip()]
    bodies = bodies[args.offset:]
    n = min(args.requests, len(bodies)) if args.distinct else args.requests
    queue = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(bodies[i % len(bodies)])
    lat, statuses = [], {}
    deadline = time.monotonic() + args.max_seconds

    # Every connection is opened (TLS handshake) before the clock starts: an intake system
    # keeps its connection alive, and 50 handshakes at once would be measured as the first
    # verifications' overhead. Worker i then sends its first household i/N of --ramp-ms
    # after the start, so that N independent intake systems do not arrive in lockstep (a
    # closed loop started at one instant keeps its first N requests, and the sources' answers
    # to them, in one burst).
    conns = [Conn(host, port, ctx) for _ in range(args.concurrency)]
    await asyncio.gather(*(c.open() for c in conns))

    async def worker(i):
        c = conns[i]
        if args.ramp_ms > 0:
            await asyncio.sleep(args.ramp_ms / 1000 * i / args.concurrency)
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

    pids = dict(p.split("=", 1) for p in args.pids.split(",")) if args.pids else {}
    m0 = await metrics_text(ctx, host, port, args.token)
    cpu0 = {k: cpu_seconds(v) for k, v in pids.items()}
    own0 = time.process_time()
    t0 = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(args.concurrency)))
    wall = time.perf_counter() - t0
    own1 = time.process_time()
    cpu1 = {k: cpu_seconds(v) for k, v in pids.items()}
    m1 = await metrics_text(ctx, host, port, args.token)
    ms = [x * 1000 for x in lat]
    oh = ("hedui_verification_overhead_seconds", "hedui_verification_source_wait_seconds")
    h0 = {n: histogram(m0, n) for n in oh}
    h1 = {n: histogram(m1, n) for n in oh}

    def q_ms(name, q):
        v = hist_quantile(q, h0[name], h1[name])
        return None if v is None else round(v * 1000, 2)

    n_oh = (h1[oh[0]][-1][1] - (h0[oh[0]][-1][1] if h0[oh[0]] else 0)) if h1[oh[0]] else 0
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
        "overhead_n": int(n_oh),
        "overhead_p50_ms": q_ms(oh[0], 0.5),
        "overhead_p99_ms": q_ms(oh[0], 0.99),
        "source_wait_p50_ms": q_ms(oh[1], 0.5),
        "source_wait_p99_ms": q_ms(oh[1], 0.99),
        "client_cpu_ms_per_req": round((own1 - own0) * 1000 / max(1, len(lat)), 3),
    }
    # hedui's overhead by phase (hedui_verification_phase_seconds): p99 of each
    for ph in ("intake", "start", "fan_out", "build", "commit", "deliver"):
        lab = f'phase="{ph}",'
        v = hist_quantile(0.99, histogram(m0, "hedui_verification_phase_seconds", lab),
                          histogram(m1, "hedui_verification_phase_seconds", lab))
        if v is not None:
            out[f"phase_{ph}_p99_ms"] = round(v * 1000, 2)
    for k in pids:
        if cpu0[k] is not None and cpu1[k] is not None:
            out[f"{k}_cpu_ms_per_req"] = round((cpu1[k] - cpu0[k]) * 1000 / max(1, len(lat)), 3)
    if args.quiet:
        return
    print(json.dumps(out), flush=True)


async def register_consents(args, ctx, host, port):
    """Read `id_number region` lines; write `id_number consent_ref` lines to stdout."""
    c = Conn(host, port, ctx)
    for line in open(args.consents, encoding="utf-8"):
        idn, region = line.split()
        body = json.dumps({"id_number": idn, "region_code": region, "purpose": "load test",
                           "valid_until": str(datetime.date.today() + datetime.timedelta(days=300))}).encode()
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
    ap.add_argument("--offset", type=int, default=0, help="skip the first K households")
    ap.add_argument("--wait", type=float, default=10)
    ap.add_argument("--max-seconds", type=float, default=120)
    ap.add_argument("--label", default="")
    ap.add_argument("--quiet", action="store_true", help="print nothing (a warm-up pass)")
    ap.add_argument("--ramp-ms", type=float, default=0,
                    help="spread the workers' first requests over this many ms")
    ap.add_argument("--pids", default="", help="name=PID,… : report their CPU ms per request")
    args = ap.parse_args()
    u = urlparse(args.url)
    ctx = ssl.create_default_context(cafile=args.ca)
    if args.consents:
        asyncio.run(register_consents(args, ctx, u.hostname, u.port))
    else:
        asyncio.run(run_load(args, ctx, u.hostname, u.port))


if __name__ == "__main__":
    main()
