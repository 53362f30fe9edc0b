#!/usr/bin/env python3
"""Reliability drills: run the release server against the local PostgreSQL (and SQLite) and
check the promises of the contract's "Server behaviour" section, printing PASS/FAIL per drill.

Usage: python3 scripts/drills.py --bin target/release/cashcraft [--only NAME ...]
Needs: PostgreSQL on 127.0.0.1:5432 with trust auth (psql, pg_ctlcluster) and redis-server.
Every drill talks only to 127.0.0.1 and stops by itself. The local PostgreSQL is always
left running, even when a drill fails.
"""
import argparse
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid

PG = "postgres://postgres@127.0.0.1:5432"
SECRET = "drill-secret-0123456789abcdef0123456789abcdef"
KEY = "drill-encryption-key-0123456789abcdef01234567"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def psql(sql, db="postgres"):
    return subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", db, "-tAqc", sql],
        check=True, capture_output=True, text=True, timeout=30,
    ).stdout.strip()


def pg_ready():
    return subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432"]).returncode == 0


def pg_cluster(action):
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action],
                   check=False, capture_output=True, timeout=120)


def ensure_pg_running():
    if not pg_ready():
        pg_cluster("start")
    for _ in range(120):
        if pg_ready():
            return
        time.sleep(0.5)
    raise RuntimeError("PostgreSQL did not come back")


class Database:
    """A fresh PostgreSQL database, dropped afterwards."""

    def __init__(self):
        self.name = "cc_drill_" + uuid.uuid4().hex[:12]
        psql(f"CREATE DATABASE {self.name}")
        self.url = f"{PG}/{self.name}"

    def sql(self, query):
        return psql(query, self.name)

    def drop(self):
        ensure_pg_running()
        psql(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")


class Server:
    def __init__(self, binary, database_url, extra=None):
        self.binary = binary
        self.port = free_port()
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "NODE_ENV": "production",
            "LOG_FORMAT": "json",
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "DATABASE_URL": database_url,
            "JWT_SECRET": SECRET,
            "ENCRYPTION_KEY": KEY,
            "RATE_LIMIT_MAX_REQUESTS": "100000",
            "FREE_ACCOUNT_LIMIT": "0",
        }
        self.env.update(extra or {})
        self.log = tempfile.TemporaryFile()
        self.proc = None

    def start(self, wait=True):
        self.proc = subprocess.Popen([self.binary], env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        if wait:
            deadline = time.time() + 20
            while time.time() < deadline:
                try:
                    if self.request("GET", "/health", timeout=1)[0] == 200:
                        return self
                except OSError:
                    pass
                time.sleep(0.05)
            raise RuntimeError("server did not start:\n" + self.output())
        return self

    def output(self):
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace")

    def request(self, method, path, body=None, token=None, timeout=10):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            headers = {"Content-Type": "application/json"}
            if token:
                headers["Authorization"] = "Bearer " + token
            data = body if isinstance(body, (bytes, type(None))) else json.dumps(body)
            conn.request(method, path, body=data, headers=headers)
            response = conn.getresponse()
            raw = response.read()
            try:
                parsed = json.loads(raw) if raw else None
            except ValueError:
                parsed = raw.decode("utf-8", "replace")
            return response.status, parsed
        finally:
            conn.close()

    def kill(self, sig=signal.SIGKILL):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def user(server):
    status, body = server.request("POST", "/api/v1/auth/register",
                                  {"email": f"drill-{uuid.uuid4().hex[:8]}@example.com", "password": "drill-pass-1"})
    assert status == 201, (status, body)
    token = body["accessToken"]
    status, accounts = server.request("GET", "/api/v1/accounts", token=token)
    assert status == 200, (status, accounts)
    return token, accounts[0]["id"]


def expense(account_id, tid=None):
    return {"id": tid or str(uuid.uuid4()), "accountId": account_id, "amount": 1, "type": "expense",
            "date": "2026-01-01T00:00:00.000Z"}


# ---------------------------------------------------------------------------------------------

def drill_crash_durability(binary):
    """Writers are cut off by kill -9; every acknowledged write survives and balances agree."""
    db = Database()
    server = Server(binary, db.url).start()
    try:
        token, account = user(server)
        acknowledged, lock, stop = set(), threading.Lock(), threading.Event()

        def writer():
            while not stop.is_set():
                tid = str(uuid.uuid4())
                try:
                    status, _ = server.request("POST", "/api/v1/transactions", expense(account, tid), token, timeout=5)
                except OSError:
                    return
                if status == 201:
                    with lock:
                        acknowledged.add(tid)

        threads = [threading.Thread(target=writer) for _ in range(16)]
        for t in threads:
            t.start()
        time.sleep(2.0)
        server.kill(signal.SIGKILL)
        stop.set()
        for t in threads:
            t.join(10)
        server.proc.wait(10)
        restarted = Server(binary, db.url)
        restarted.port = server.port
        restarted.env["PORT"] = str(server.port)
        restarted.start()
        try:
            stored = set(db.sql("SELECT id FROM transactions").split())
            missing = acknowledged - stored
            assert acknowledged, "no write was acknowledged before the crash"
            assert not missing, f"{len(missing)} acknowledged writes lost"
            balance = int(db.sql(f"SELECT balance FROM accounts WHERE id = '{account}'"))
            implied = -100 * len(stored)
            assert balance == implied, f"balance {balance} != implied {implied}"
            return f"{len(acknowledged)} acknowledged, {len(stored)} stored, balance consistent"
        finally:
            restarted.stop()
    finally:
        server.stop()
        db.drop()


def drill_graceful_shutdown(binary):
    """SIGTERM while dozens of clients write: full responses, refused new connections, exit 0."""
    db = Database()
    server = Server(binary, db.url).start()
    try:
        token, account = user(server)
        acknowledged, lock = set(), threading.Lock()
        broken = []
        start = threading.Event()

        def writer():
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            start.wait()
            while True:
                tid = str(uuid.uuid4())
                try:
                    conn.request("POST", "/api/v1/transactions", body=json.dumps(expense(account, tid)),
                                 headers={"Content-Type": "application/json", "Authorization": "Bearer " + token})
                    response = conn.getresponse()
                    raw = response.read()
                except (OSError, http.client.HTTPException):
                    return  # connection closed by the server: no response, request not taken
                if response.status == 201:
                    body = json.loads(raw)
                    if body.get("id") != tid:
                        broken.append(("body", tid))
                    with lock:
                        acknowledged.add(tid)
                else:
                    broken.append((response.status, raw[:200]))
                    return

        threads = [threading.Thread(target=writer) for _ in range(48)]
        for t in threads:
            t.start()
        start.set()
        time.sleep(1.5)
        signalled = time.time()
        server.kill(signal.SIGTERM)
        time.sleep(0.2)
        refused = False
        try:
            socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
        except OSError:
            refused = True
        code = server.proc.wait(35)
        took = time.time() - signalled
        for t in threads:
            t.join(10)
        stored = set(db.sql("SELECT id FROM transactions").split())
        log = server.output()
        assert code == 0, f"exit code {code}"
        assert took < 30, f"shutdown took {took:.1f}s"
        assert refused, "a new connection was accepted after SIGTERM"
        assert not broken, f"bad responses: {broken[:3]}"
        assert stored == acknowledged, f"{len(stored - acknowledged)} writes without a response, {len(acknowledged - stored)} lost"
        for line in ["Received SIGTERM", "HTTP server closed", "Database connection closed", "Graceful shutdown completed"]:
            assert line in log, f"missing log line {line!r}"
        return f"{len(acknowledged)} writes answered in full, exit 0 after {took:.2f}s"
    finally:
        server.stop()
        db.drop()


def drill_database_outage(binary):
    """PostgreSQL stops: 503 within 5 s, /health 200, /ready 503; back by itself afterwards."""
    db = Database()
    server = Server(binary, db.url).start()
    try:
        token, _ = user(server)
        pg_cluster("stop")
        try:
            began = time.time()
            status, body = server.request("GET", "/api/v1/accounts", token=token, timeout=10)
            took = time.time() - began
            assert status == 503 and body == {"error": "Service temporarily unavailable"}, (status, body)
            assert took < 5, f"took {took:.1f}s"
            status, body = server.request("POST", "/api/v1/auth/login",
                                          {"email": "nobody@example.com", "password": "whatever1"}, timeout=10)
            assert status == 503, (status, body)
            assert server.request("GET", "/health")[0] == 200
            status, body = server.request("GET", "/ready", timeout=10)
            assert status == 503 and body["database"] == "unreachable", (status, body)
            assert server.proc.poll() is None, "server died"
        finally:
            ensure_pg_running()
        deadline = time.time() + 15
        while time.time() < deadline:
            if server.request("GET", "/api/v1/accounts", token=token)[0] == 200:
                break
            time.sleep(0.2)
        else:
            raise AssertionError("the server did not recover after PostgreSQL came back")
        assert server.request("GET", "/ready")[0] == 200
        return f"503 in {took:.2f}s while down, recovered by itself"
    finally:
        server.stop()
        db.drop()


def drill_redis_outage(binary):
    """A configured Redis goes away: sign-in and the ledger keep working, /ready names the cache."""
    port = free_port()
    workdir = tempfile.mkdtemp()
    redis = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no", "--dir", workdir], stdout=subprocess.DEVNULL)
    db = Database()
    server = None
    try:
        time.sleep(0.5)
        server = Server(binary, db.url, {"REDIS_URL": f"redis://127.0.0.1:{port}"}).start()
        assert server.request("GET", "/ready")[1]["cache"] == "ok"
        token, account = user(server)
        redis.kill()
        redis.wait(5)
        status, body = server.request("POST", "/api/v1/auth/guest", timeout=10)
        assert status == 200, (status, body)
        status, _ = server.request("POST", "/api/v1/transactions", expense(account), token, timeout=10)
        assert status == 201
        status, body = server.request("GET", "/ready", timeout=10)
        assert status == 503 and body["cache"] == "unreachable", (status, body)
        assert server.request("GET", "/health")[0] == 200
        redis = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                  "--appendonly", "no", "--dir", workdir], stdout=subprocess.DEVNULL)
        deadline = time.time() + 20
        while time.time() < deadline and server.request("GET", "/ready")[0] != 200:
            time.sleep(0.5)
        assert server.request("GET", "/ready")[0] == 200, "cache did not recover"
        return "auth and ledger unaffected; /ready recovered"
    finally:
        if server:
            server.stop()
        redis.kill()
        db.drop()


def drill_idle_clients(binary):
    """400 idle connections do not stop /ping; a client that never finishes its headers is cut off."""
    db = Database()
    server = Server(binary, db.url).start()
    sockets = []
    try:
        for _ in range(400):
            sockets.append(socket.create_connection(("127.0.0.1", server.port), timeout=5))
        slow = socket.create_connection(("127.0.0.1", server.port), timeout=15)
        slow.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n")
        began = time.time()
        status, body = server.request("GET", "/ping", timeout=5)
        took = time.time() - began
        assert status == 200 and body == "pong", (status, body)
        assert took < 1, f"/ping took {took:.2f}s"
        closed_after = None
        try:
            data = slow.recv(1024)
            closed_after = time.time() - began
            assert not data or b"408" in data or data.startswith(b"HTTP/1.1 4"), data[:80]
        except socket.timeout:
            raise AssertionError("a connection with unfinished headers stayed open")
        return f"/ping in {took * 1000:.0f} ms with 400 idle connections; slow client cut off after {closed_after:.1f}s"
    finally:
        for s in sockets:
            s.close()
        server.stop()
        db.drop()


def drill_connection_cap(binary):
    """Beyond MAX_CONNECTIONS new connections are closed; the server serves again once they go."""
    db = Database()
    server = Server(binary, db.url, {"MAX_CONNECTIONS": "8"}).start()
    sockets = []
    try:
        for _ in range(8):
            s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            sockets.append(s)
        time.sleep(0.3)
        try:
            server.request("GET", "/ping", timeout=2)
            refused = False
        except (OSError, http.client.HTTPException):
            refused = True
        assert refused, "a connection over the cap was served"
        for s in sockets:
            s.close()
        time.sleep(0.3)
        assert server.request("GET", "/ping")[0] == 200
        return "over-the-cap connection closed, service resumed"
    finally:
        for s in sockets:
            s.close()
        server.stop()
        db.drop()


def drill_hostile_bodies(binary):
    """Deep nesting, huge numbers and oversized bodies are refused without harm."""
    db = Database()
    server = Server(binary, db.url).start()
    try:
        token, account = user(server)
        deep = b"[" * 200_000 + b"]" * 200_000
        status, body = server.request("POST", "/api/v1/transactions", deep, token)
        assert status == 400, (status, body)
        for amount in ["1e400", "9" * 5000, "-1e309"]:
            raw = ('{"accountId":"%s","amount":%s,"type":"expense","date":"2026-01-01"}' % (account, amount)).encode()
            status, body = server.request("POST", "/api/v1/transactions", raw, token)
            assert status == 400, (amount[:10], status, body)
        status, body = server.request("POST", "/api/v1/transactions", b"{" + b'"a":"' + b"x" * (11 * 1024 * 1024) + b'"}', token)
        assert status == 413, (status, body)
        assert server.request("GET", "/ping")[0] == 200
        assert server.proc.poll() is None
        rss_kb = int([l for l in open(f"/proc/{server.proc.pid}/status") if l.startswith("VmHWM")][0].split()[1])
        return f"all refused with 4xx; peak RSS {rss_kb // 1024} MiB"
    finally:
        server.stop()
        db.drop()


DRILLS = {
    "crash-durability": drill_crash_durability,
    "graceful-shutdown-under-load": drill_graceful_shutdown,
    "database-outage": drill_database_outage,
    "redis-outage": drill_redis_outage,
    "idle-clients": drill_idle_clients,
    "connection-cap": drill_connection_cap,
    "hostile-bodies": drill_hostile_bodies,
}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", default="target/release/cashcraft")
    parser.add_argument("--only", nargs="*")
    args = parser.parse_args()
    binary = os.path.abspath(args.bin)
    ensure_pg_running()
    failed = 0
    passed = 0
    for name, drill in DRILLS.items():
        if args.only and name not in args.only:
            continue
        began = time.time()
        try:
            detail = drill(binary)
            passed += 1
            print(f"PASS {name} ({time.time() - began:.1f}s): {detail}", flush=True)
        except Exception as err:  # noqa: BLE001 - every failure is reported, then the next drill runs
            failed += 1
            print(f"FAIL {name} ({time.time() - began:.1f}s): {err}", flush=True)
            traceback.print_exc()
        finally:
            ensure_pg_running()
    print(f"drills: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
