#!/usr/bin/env python3
"""Helpers of bench/run.sh (standard library only): wait for /ready and time it, register a
user, seed transactions through the real API with a small concurrent client (and through the
sync upload for the sync memory scenario), and print the markdown report. Not part of the test suite."""

import http.client
import json
import random
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit


def connect(base):
    parts = urlsplit(base)
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)


def call(conn, method, path, token=None, body=None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = "Bearer " + token
    conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
    response = conn.getresponse()
    text = response.read()
    try:
        data = json.loads(text) if text else None
    except ValueError:
        data = None
    return response.status, data


def wait_ready(base, start_ns, timeout_s):
    """Polls GET /ready every 2 ms; prints the milliseconds from start_ns to the first 200."""
    deadline = time.time() + float(timeout_s)
    while time.time() < deadline:
        try:
            conn = connect(base)
            status, _ = call(conn, "GET", "/ready")
            conn.close()
            if status == 200:
                print("%.0f" % ((time.time_ns() - int(start_ns)) / 1e6))
                return 0
        except OSError:
            pass
        time.sleep(0.002)
    print("the server was not ready within %ss" % timeout_s, file=sys.stderr)
    return 1


def register(base):
    """Registers a fresh user; prints the access token."""
    conn = connect(base)
    email = "bench_%d@example.com" % time.time_ns()
    status, data = call(conn, "POST", "/api/v1/auth/register", body={"email": email, "password": "bench-password"})
    if status != 201:
        print("register failed: %s %s" % (status, data), file=sys.stderr)
        return 1
    print(data["accessToken"])
    return 0


def seed(base, token, account_id, count, clients):
    """POSTs `count` transactions (a quarter income, the rest expenses, spread over the last
    year, categorised with the user's system categories) from `clients` concurrent keep-alive
    connections; fails unless every answer is 201. Prints the rate."""
    count, clients = int(count), int(clients)
    conn = connect(base)
    status, categories = call(conn, "GET", "/api/v1/categories", token)
    if status != 200:
        print("cannot list categories: %s" % status, file=sys.stderr)
        return 1
    by_type = {"income": [], "expense": []}
    for category in categories:
        by_type.setdefault(category["type"], []).append(category["id"])
    now = datetime.now(timezone.utc)
    failures = []
    lock = threading.Lock()
    next_index = [0]

    def body(i):
        rng = random.Random(i)
        kind = "income" if i % 4 == 0 else "expense"
        when = now - timedelta(minutes=rng.randrange(365 * 24 * 60))
        return {
            "accountId": account_id,
            "categoryId": rng.choice(by_type[kind]) if by_type[kind] else None,
            "amount": "%d.%02d" % (rng.randrange(1, 5000), rng.randrange(100)),
            "type": kind,
            "date": when.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "description": "Bench transaction %d" % i,
        }

    def worker():
        conn = connect(base)
        while True:
            with lock:
                i = next_index[0]
                next_index[0] += 1
            if i >= count or failures:
                return
            try:
                status, data = call(conn, "POST", "/api/v1/transactions", token, body(i))
            except (OSError, http.client.HTTPException) as err:
                conn = connect(base)
                status, data = "error", str(err)
            if status != 201:
                with lock:
                    failures.append((i, status, data))
                return

    started = time.time()
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.time() - started
    if failures:
        print("seeding failed: %s" % (failures[:3],), file=sys.stderr)
        return 1
    print("%.1f %.0f" % (elapsed, count / elapsed if elapsed > 0 else 0))
    return 0


def sync_seed(base, token, account_id, count, batch):
    """Uploads `count` expenses for the user through POST /api/v1/sync/upload, `batch` records a
    request; fails unless every record is applied. Prints the seconds it took."""
    import uuid

    count, batch = int(count), int(batch)
    conn = connect(base)
    now_ms = int(time.time() * 1000)
    started = time.time()
    done = 0
    while done < count:
        n = min(batch, count - done)
        records = [
            {
                "id": str(uuid.uuid4()),
                "account_id": account_id,
                "amount": 1.5,
                "type": "expense",
                "date": now_ms - (done + i) * 60000,
                "description": "Synced bench transaction %d" % (done + i),
            }
            for i in range(n)
        ]
        status, data = call(conn, "POST", "/api/v1/sync/upload", token, {"data": {"transactions": records}})
        applied = (data or {}).get("applied", {}).get("transactions") if isinstance(data, dict) else None
        if status != 200 or applied != n:
            print("sync upload failed: %s %s" % (status, str(data)[:300]), file=sys.stderr)
            return 1
        done += n
    print("%.1f" % (time.time() - started))
    return 0


def report(results_path, meta_path):
    """Prints the markdown report from the tab-separated results and the meta key=value file."""
    meta = {}
    with open(meta_path) as f:
        for line in f:
            if "=" in line:
                key, value = line.rstrip("\n").split("=", 1)
                meta[key] = value
    rows = []
    with open(results_path) as f:
        for line in f:
            name, conns, requests, seconds, p50, p99, non2xx, errors = line.rstrip("\n").split("\t")
            rows.append((name, int(conns), int(requests) / float(seconds), float(p50), float(p99), int(non2xx), int(errors)))
    pg = {}
    for key, value in meta.items():
        if key.startswith("pgbench_tps_") and value:
            pg[int(key[len("pgbench_tps_"):])] = float(value)
    out = []
    out.append("## CashCraft benchmark, %s" % meta.get("date", ""))
    out.append("")
    if meta.get("seeded", "0") != "0":
        seeded = "one user with %s transactions seeded through `POST /api/v1/transactions` (%s s, %s req/s)" % (
            meta.get("seeded"),
            meta.get("seed_seconds", "?"),
            meta.get("seed_rate", "?"),
        )
    else:
        seeded = "one user with the default data only (no seeding)"
    out.append(
        "%s `%s` on PostgreSQL %s, %s; %s; `DB_MAX_CONNECTIONS=%s`; wrk for %s s per row with %s threads; "
        "server, load generator and database share the machine (load average before the runs: %s)."
        % (
            meta.get("binary", "Binary"),
            meta.get("rev", "?"),
            meta.get("pg_version", "?"),
            meta.get("cpu", "?"),
            seeded,
            meta.get("db_max_connections", "?"),
            meta.get("duration", "?"),
            meta.get("threads", "?"),
            meta.get("load", "?"),
        )
    )
    out.append("")
    out.append("| scenario | connections | requests/s | p50 ms | p99 ms | non-2xx | errors | pgbench -S tps | vs pgbench |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, conns, rps, p50, p99, non2xx, errors in rows:
        ceiling = pg.get(conns)
        out.append(
            "| `%s` | %d | %.0f | %.2f | %.2f | %d | %d | %s | %s |"
            % (
                name,
                conns,
                rps,
                p50,
                p99,
                non2xx,
                errors,
                "%.0f" % ceiling if ceiling else "-",
                "%.1f%%" % (100 * rps / ceiling) if ceiling else "-",
            )
        )
    for conns in sorted(pg):
        out.append("| `pgbench -S` (database ceiling) | %d | %.0f | | | | | | |" % (conns, pg[conns]))
    out.append("")
    out.append("| server | value |")
    out.append("|---|---:|")
    out.append("| time to ready, already-migrated database | %s ms |" % meta.get("ready_ms", "?"))
    out.append("| RSS idle after start (VmRSS) | %s MiB |" % meta.get("rss_idle_mib", "?"))
    out.append("| RSS peak (VmHWM) | %s MiB |" % meta.get("rss_peak_mib", "?"))
    if meta.get("sync_count"):
        out.append("")
        out.append(
            "Sync memory: a second user with %s transactions uploaded through `POST /api/v1/sync/upload` "
            "(%s per request, %s s); the peak RSS is reset (`/proc/<pid>/clear_refs`) before each request."
            % (meta.get("sync_count"), meta.get("sync_batch", "?"), meta.get("sync_seed_seconds", "?"))
        )
        out.append("")
        out.append("| request | response | RSS before | peak RSS during | increase | increase / response |")
        out.append("|---|---:|---:|---:|---:|---:|")
        for key, name in (("download", "GET /api/v1/sync/download"), ("pull", "GET /api/v1/sync/pull?last_pulled_at=null")):
            size = meta.get("sync_%s_bytes" % key)
            before = meta.get("sync_%s_rss_kib" % key)
            peak = meta.get("sync_%s_hwm_kib" % key)
            if not (size and before and peak):
                continue
            size, before, peak = int(size), int(before), int(peak)
            increase = max(peak - before, 0)
            out.append(
                "| `%s` | %.1f MiB | %.1f MiB | %.1f MiB | %.1f MiB | %.2f |"
                % (name, size / 1048576, before / 1024, peak / 1024, increase / 1024, increase * 1024 / size if size else 0)
            )
    print("\n".join(out))
    return 0


def main(argv):
    commands = {"wait-ready": wait_ready, "register": register, "seed": seed, "sync-seed": sync_seed, "report": report}
    if len(argv) < 2 or argv[1] not in commands:
        print("usage: bench.py {%s} ARGS..." % ",".join(commands), file=sys.stderr)
        return 2
    return commands[argv[1]](*argv[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
