#!/usr/bin/env python3
"""Fuzzes the running API with schemathesis against its own OpenAPI document.

Starts the server binary on a fresh SQLite file, signs a user in, seeds a little data, then
runs every operation with a bounded number of generated requests and these checks: no 5xx,
status codes, content types and bodies as documented. Exits non-zero on any failure.

Usage: python3 scripts/fuzz.py --bin target/release/cashcraft --schemathesis PATH [--examples N]
"""
import argparse
import http.server
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ECB = b"""<?xml version="1.0" encoding="UTF-8"?>
<gesmes:Envelope xmlns:gesmes="http://www.gesmes.org/xml/2002-08-01" xmlns="http://www.ecb.int/vocabulary/2002-08-01/eurofxref">
<Cube><Cube time='2026-01-02'><Cube currency='USD' rate='1.0823'/><Cube currency='GBP' rate='0.8571'/>
<Cube currency='JPY' rate='162.5'/></Cube></Cube></gesmes:Envelope>"""


class FakeProviders(http.server.BaseHTTPRequestHandler):
    """The exchange-rate provider and Google's key set, on 127.0.0.1, so that the rate
    refresh and Google sign-in answer as they do in production (no 502/501 by configuration)."""

    def do_GET(self):  # noqa: N802 - the handler's required name
        if self.path.startswith("/eurofxref-daily.xml"):
            body, kind = ECB, "application/xml"
        elif self.path.startswith("/certs"):
            body, kind = b'{"keys":[]}', "application/json"
        else:
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(base, method, path, body=None, token=None):
    request = urllib.request.Request(base + path, method=method,
                                     data=json.dumps(body).encode() if body is not None else None)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", "Bearer " + token)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"null")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", default="target/release/cashcraft")
    parser.add_argument("--schemathesis", default="schemathesis")
    parser.add_argument("--examples", default="25")
    args = parser.parse_args()
    workdir = tempfile.mkdtemp()
    fake = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeProviders)
    threading.Thread(target=fake.serve_forever, daemon=True).start()
    fake_base = f"http://127.0.0.1:{fake.server_address[1]}"
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "NODE_ENV": "test",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "DATABASE_URL": f"sqlite://{workdir}/fuzz.db",
        "JWT_SECRET": "fuzz-secret-0123456789abcdef0123456789abcdef",
        "ENCRYPTION_KEY": "fuzz-encryption-key-0123456789abcdef0123456",
        "RATE_LIMIT_MAX_REQUESTS": "0",
        "RATES_PROVIDER_URL": fake_base,
        "GOOGLE_CLIENT_ID": "fuzz-client.apps.googleusercontent.com",
        "GOOGLE_JWKS_URL": fake_base + "/certs",
        "FREE_ACCOUNT_LIMIT": "0",
        "FREE_CATEGORY_LIMIT": "0",
        "RUST_LOG": "warn",
    }
    log = open(os.path.join(workdir, "server.log"), "w")
    server = subprocess.Popen([os.path.abspath(args.bin)], env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(base + "/health", timeout=1)
                break
            except OSError:
                time.sleep(0.05)
        auth = call(base, "POST", "/api/v1/auth/register", {"email": "fuzz@example.com", "password": "fuzz-pass-1"})
        token = auth["accessToken"]
        accounts = call(base, "GET", "/api/v1/accounts", token=token)
        account = accounts[0]["id"]
        call(base, "POST", "/api/v1/transactions",
             {"accountId": account, "amount": 10, "type": "income", "date": "2026-01-01"}, token)
        command = [
            args.schemathesis, "run", f"{base}/api/v1/openapi.json", "--url", base,
            "-H", f"Authorization: Bearer {token}",
            "--max-examples", args.examples,
            "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
            "--phases", "examples,coverage,fuzzing",
            "--generation-database", "none",
            "--request-timeout", "15",
            "--no-color",
            "--seed", "1",
        ]
        result = subprocess.run(command)
        if server.poll() is not None:
            print("the server died during fuzzing")
            sys.exit(1)
        sys.exit(result.returncode)
    finally:
        server.kill()
        server.wait(10)
        log.close()
        with open(os.path.join(workdir, "server.log")) as f:
            errors = [line for line in f if '"level":"ERROR"' in line or " ERROR " in line]
        if errors:
            print("server errors during fuzzing:")
            print("".join(errors[:20]))


if __name__ == "__main__":
    main()
