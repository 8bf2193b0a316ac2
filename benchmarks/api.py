"""Service API benchmark: p50/p99 latency and requests/s per route over real HTTP with 50
concurrent planners, at installed bases of 2,000 and 20,000 assets (3 models, 20 customers,
contracts, health per failure mode, 90 days of downtime and repairs, ~10 % of assets with a
live order, minute telemetry for some devices, rolled up by ingest's rollup job), with
``/health`` (a pooled ``SELECT 1``) as the baseline measured in the same run.

For each size, the API runs as its own process (``prognos api``: uvicorn, one worker) in a
fresh World (database only, no broker). The load comes from ``--clients`` concurrent planners
(asyncio tasks of this process, each with its own keep-alive connection and a planner token),
in ``--rounds`` interleaved passes over all routes (the machine is shared: its load swings must
hit every route and the baseline alike). Seeding is outside the timed part.

    python -m benchmarks.api [--quick] --json PATH [--assets 2000 20000] [--clients 50]
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import httpx
import psycopg
from tqdm import tqdm

from benchmarks.common import parser, write
from ingest.rollup import refresh_rollups
from ops.services.common import free_port
from ops.world import World
from tests import seed
from service_api.auth import create_token


def seed_world(dsn: str, n_assets: int, n_devices: int, telemetry_days: int, now: datetime) -> dict:
    with psycopg.connect(dsn, autocommit=True) as conn:
        fleet = seed.seed_installed_base(conn, "B", n_assets, seed=7, now=now)
        devices = []
        with conn.cursor() as cur:
            for a in fleet["assets"][:n_devices]:
                dev = f"dev-{a}"
                cur.execute("INSERT INTO devices (device_id, asset_id, password_hash) "
                            "VALUES (%s, %s, 'x')", (dev, a))
                devices.append((dev, a))
            start = now - timedelta(days=telemetry_days)
            steps = telemetry_days * 24 * 60
            with cur.copy("COPY telemetry (time, device_id, vals) FROM STDIN (FORMAT BINARY)") as cp:
                cp.set_types(["timestamptz", "text", "float4[]"])
                for i, (dev, _) in enumerate(devices):
                    for k in range(steps):
                        x = (k % 1440) / 1440.0
                        cp.write_row((start + timedelta(minutes=k), dev,
                                      [2.0 + x + 0.01 * i, 60.0 + 5 * x, 40.0, 6.0]))
            # what ingest does as it stores rows: mark the minutes, then roll them up
            cur.execute("""INSERT INTO rollup_dirty (bucket, worker)
                           SELECT generate_series(%s::timestamptz, %s, interval '1 minute'), 'bench'""",
                        (start, start + timedelta(minutes=steps - 1)))
        refresh_rollups(conn, settle_s=0)
        token = create_token(conn, "bench-planner", "planner")
        order_id = conn.execute("SELECT min(order_id) FROM service_orders").fetchone()[0]
        conn.execute("ANALYZE")
    return {"token": token, "order_id": order_id, "asset": devices[0][1] if devices else
            fleet["assets"][0], "orders": fleet["orders"], "rows": steps * len(devices)}


def routes(s: dict, now: datetime) -> list[tuple[str, str]]:
    a = s["asset"]
    day = (now - timedelta(hours=24)).isoformat()
    hour = (now - timedelta(hours=1)).isoformat()
    return [
        ("health", "/health"),
        ("orders_queue", "/api/v1/service-orders?status=proposed&status=approved&status=scheduled"
                         "&status=in_progress&status=on_hold&kind=predictive"),
        ("order_detail", f"/api/v1/service-orders/{s['order_id']}"),
        ("assets_by_risk", "/api/v1/assets?limit=50"),
        ("assets_filtered", "/api/v1/assets?tier=gold&min_risk=0.3&limit=50"),
        ("asset_detail", f"/api/v1/assets/{a}"),
        ("telemetry_raw_1h", f"/api/v1/assets/{a}/telemetry?sensor=vibration_rms&from={hour}"),
        ("telemetry_1m_24h", f"/api/v1/assets/{a}/telemetry?sensor=vibration_rms&from={day}"),
        ("telemetry_1h_7d", f"/api/v1/assets/{a}/telemetry?sensor=bearing_temp&resolution=1h"
                            f"&from={(now - timedelta(days=7)).isoformat()}"),
        ("uptime_by_model", "/api/v1/uptime?group_by=model"),
        ("uptime_by_asset", "/api/v1/uptime?group_by=asset&limit=100"),
        ("mttr", "/api/v1/mttr"),
        ("sla", "/api/v1/sla"),
        ("export_orders_csv", "/api/v1/export/orders.csv"),
    ]


class Route:
    """One route's measurements, gathered over several interleaved rounds."""

    def __init__(self, path: str):
        self.path = path.replace("+00:00", "Z")
        self.latencies: list[float] = []
        self.wall = 0.0
        self.bytes = 0
        self.reconnects = 0

    async def _one(self, client: httpx.AsyncClient) -> None:
        t = time.perf_counter()
        try:
            r = await client.get(self.path)
        except httpx.RemoteProtocolError:
            # uvicorn closed this planner's idle keep-alive connection (after 5 s) just as it
            # sent: reconnect and resend, as a browser does; counted, and timed from the first try
            self.reconnects += 1
            r = await client.get(self.path)
        dt = time.perf_counter() - t
        if r.status_code != 200:
            raise RuntimeError(f"{self.path}: {r.status_code} {r.text[:200]}")
        self.bytes = len(r.content)
        self.latencies.append(dt)

    async def run(self, n: int, clients: list[httpx.AsyncClient]) -> None:
        """``n`` requests from all planners at once (each planner sends its share in turn)."""
        async def planner(c: httpx.AsyncClient, k: int) -> None:
            for _ in range(k):
                await self._one(c)

        share = [n // len(clients) + (i < n % len(clients)) for i in range(len(clients))]
        t0 = time.perf_counter()
        await asyncio.gather(*(planner(c, k) for c, k in zip(clients, share) if k))
        self.wall += time.perf_counter() - t0

    def figures(self) -> dict:
        lat, n = sorted(self.latencies), len(self.latencies)
        return {"requests": n, "rps": n / self.wall, "p50_ms": 1000 * statistics.median(lat),
                "p99_ms": 1000 * lat[min(n - 1, int(0.99 * n))], "bytes": self.bytes,
                "reconnects": self.reconnects}


async def measure_async(base: str, token: str, paths: list[tuple[str, str]], n: int,
                        clients: int, rounds: int) -> dict:
    routes = {name: Route(path) for name, path in paths}
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    planners = [httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"},
                                  timeout=120, limits=limits) for _ in range(clients)]
    try:
        for r in routes.values():  # warm-up: connections, plans, caches
            await r.run(min(clients, 10), planners[:10])
            r.latencies, r.wall = [], 0.0
        for _ in tqdm(range(rounds), desc="rounds", unit="round"):
            for r in routes.values():
                await r.run(max(1, n // rounds), planners)
    finally:
        await asyncio.gather(*(c.aclose() for c in planners))
    return {name: r.figures() for name, r in routes.items()}


def measure(base: str, token: str, paths: list[tuple[str, str]], n: int, clients: int,
            rounds: int) -> dict:
    """``n`` requests per route from ``clients`` concurrent planners, split into ``rounds``
    passes over all routes, so that the shared machine's load swings fall on every route (and
    the baseline) alike rather than on whichever route ran during a busy minute."""
    return asyncio.run(measure_async(base, token, paths, n, clients, rounds))


def wait_ready(base: str, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"the API exited with {proc.returncode}")
        try:
            if httpx.get(base + "/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the API did not become ready")


def run_size(n_assets: int, args, n: int, now: datetime) -> dict:
    """Seed a World with ``n_assets``, serve it, measure every route; the figures."""
    with World(broker=False) as w:
        t = time.perf_counter()
        s = seed_world(w.settings.dsn, n_assets, 10 if args.quick else 40,
                       3 if args.quick else 7, now)
        seed_s = time.perf_counter() - t
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        # the default pool (8 connections) serves the 50 planners, as in production
        env = {**w.env(), "PROGNOS_LOG_LEVEL": "WARNING", "PROGNOS_WEBHOOK_DISPATCH": "false"}
        proc = subprocess.Popen([sys.executable, "-m", "service_api.cli", "--port", str(port)],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_ready(base, proc)
            figures = measure(base, s["token"], routes(s, now), n, args.clients, args.rounds)
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
    base = figures["health"]
    for f in figures.values():
        f["rps_vs_health"] = f["rps"] / base["rps"]
        f["p50_vs_health"] = f["p50_ms"] / base["p50_ms"]
    return {"assets": n_assets, "live_orders": s["orders"], "telemetry_rows": s["rows"],
            "seed_s": seed_s, "routes": figures}


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__.split("\n\n")[0])
    p.add_argument("--assets", type=int, nargs="+", default=[2000, 20000],
                   help="installed-base sizes, each measured in its own world")
    p.add_argument("--clients", type=int, default=50, help="concurrent planners")
    p.add_argument("--requests", type=int, help="requests per route (default 500, quick 150)")
    p.add_argument("--rounds", type=int, default=5, help="interleaved passes over the routes")
    args = p.parse_args(argv)
    if min(*args.assets, args.clients, args.rounds) < 1:
        p.error("--assets, --clients and --rounds must be positive")
    n = args.requests or (150 if args.quick else 500)
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    sizes = [run_size(a, args, n, now) for a in args.assets]
    out = {"benchmark": "api", "clients": args.clients, "requests_per_route": n,
           "rounds": args.rounds, "sizes": sizes}
    parts = []
    for size in sizes:
        r = size["routes"]
        worst = max((k for k in r if k != "health"), key=lambda k: r[k]["p99_ms"])
        parts.append(f"{size['assets']} assets: /health p50 {r['health']['p50_ms']:.0f} ms "
                     f"p99 {r['health']['p99_ms']:.0f} ms; worst p99 {worst} "
                     f"{r[worst]['p99_ms']:.0f} ms (p50 {r[worst]['p50_ms']:.0f} ms)")
    write(args.json, out, f"api ({args.clients} planners): " + "; ".join(parts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
