#!/usr/bin/env python3
"""Benchmark billing-api (GraphQL and REST) side by side with PostGraphile 4 and with
pgbench replaying the exact SQL our resolvers send, on one database, on this machine, in
one run. Writes a markdown table to bench/results/. See bench/README.md.

    bench/run.py            # full run: 100,000 orders, release build, concurrency 1/8/32
    bench/run.py --quick    # small data, a few seconds per scenario (the test suite runs it)
"""
import argparse
import http.server
import json
import threading
import os
import platform
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
POSTGRAPHILE = "postgraphile@4.14.1"
CALLBACK_SECRET = "bench-callback-secret-of-at-least-32-bytes"


def log(message):
    print(f"[bench] {message}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(cmd, **kwargs):
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kwargs)


def pg_bin():
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    if not versions:
        sys.exit("PostgreSQL server binaries not found (apt-get install postgresql)")
    return versions[-1].parent


class Cluster:
    """A throw-away PostgreSQL cluster with pg_stat_statements, as the postgres user when root."""

    def __init__(self, work):
        self.bin = pg_bin()
        self.root = work / "pg"
        self.data = self.root / "data"
        self.port = free_port()
        self.as_postgres = os.geteuid() == 0

    def cmd(self, program, *args):
        command = [str(self.bin / program), *map(str, args)]
        return (["runuser", "-u", "postgres", "--"] + command) if self.as_postgres else command

    def start(self):
        if self.root.exists():
            self.stop()
            shutil.rmtree(self.root)
        self.data.mkdir(parents=True)
        if self.as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
            shutil.chown(self.data, "postgres", "postgres")
        run(self.cmd("initdb", "-D", self.data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale"))
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(
                f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\n"
                "max_connections = 300\nshared_buffers = 512MB\nshared_preload_libraries = 'pg_stat_statements'\n"
                "pg_stat_statements.track = all\nsynchronous_commit = off\n"
                "session_preload_libraries = 'auto_explain'\nauto_explain.log_min_duration = -1\n"
            )
        subprocess.run(self.cmd("pg_ctl", "-D", self.data, "-l", self.root / "server.log", "-w", "start"),
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self):
        subprocess.run(self.cmd("pg_ctl", "-D", self.data, "-m", "fast", "stop"),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def url(self, db="bench"):
        return f"postgres://postgres@127.0.0.1:{self.port}/{db}"

    def sql(self, statement, db="bench"):
        out = run([str(self.bin / "psql"), self.url(db), "-At", "-c", statement])
        return out.stdout.strip()


class Server:
    def __init__(self, name, cmd, port, env=None, stderr=None):
        self.name, self.port = name, port
        self.proc = subprocess.Popen(cmd, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL,
                                     stderr=stderr or subprocess.DEVNULL, start_new_session=True)

    def wait(self, path):
        for _ in range(300):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=1)
                return
            except Exception as error:  # noqa: BLE001 - any failure means "not yet"
                if getattr(error, "code", None):
                    return
                time.sleep(0.1)
        sys.exit(f"{self.name} did not start")

    def cpu_seconds(self):
        """User + system CPU of the server process and its children (node workers)."""
        pids = [self.proc.pid]
        try:
            pids += [int(p) for p in Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()]
        except OSError:
            pass
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])
            except OSError:
                pass
        return total / ticks

    def stop(self):
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=15)
        except Exception:  # noqa: BLE001
            self.proc.kill()


# The admin key of the run (set once it is created), for the few setup reads.
ADMIN_KEY = [None]


def post_json(url, body, key=None):
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json",
                                              **({"Authorization": f"Bearer {key}"} if key else {})})
    return json.load(urllib.request.urlopen(request, timeout=60))


# ------------------------------------------------------------------ queries

ORDER_FIELDS = """id number userId status paymentStatus paymentIntentId paymentReference paymentFailureCode
  paymentFailureMessage totalCents currency paymentMethod planId planSnapshot metadata paidAt cancelledAt
  refundedCents refundedAt createdAt updatedAt
  items { id name sku quantity unitPriceCents totalCents metadata createdAt }
  refunds { id orderId paymentId status amountCents currency reason metadata creditBalance refundedAt createdAt }
  payments { id orderId status provider paymentMethod amountCents currency reference paymentIntentId failureCode
             failureMessage paidAt createdAt updatedAt }
  user { id email name balanceCents createdAt }"""

PG_ORDER_FIELDS = """id number userId status paymentStatus paymentIntentId paymentReference paymentFailureCode
  paymentFailureMessage totalCents currency paymentMethod planId planSnapshot metadata paidAt cancelledAt
  refundedCents refundedAt createdAt updatedAt
  orderItemsByOrderId { nodes { id name sku quantity unitPriceCents totalCents metadata createdAt } }
  refundsByOrderId { nodes { id orderId paymentId status amountCents currency reason metadata creditBalance refundedAt createdAt } }
  paymentsByOrderId { nodes { id orderId status provider paymentMethod amountCents currency reference paymentIntentId
             failureCode failureMessage paidAt createdAt updatedAt } }
  userByUserId { id email name balanceCents createdAt }"""


def gql_request(url, query, variables):
    return {"method": "POST", "url": url, "body": json.dumps({"query": query, "variables": variables})}


def cursor_before(gql, page, field="orders", per_page=50):
    """The cursor that ends page `page - 1` of `field` (oldest first)."""
    query = (f"query($p: Int!) {{ {field}(page: $p, perPage: {per_page}, sort: CREATED_AT, direction: ASC) "
             "{ pageInfo { endCursor } } }")
    try:
        answer = post_json(gql, {"query": query, "variables": {"p": page - 1}}, ADMIN_KEY[0])
        return answer["data"][field]["pageInfo"]["endCursor"]
    except (KeyError, TypeError, OSError):
        return None  # a build without cursors on this list (--compare): its cursor rows are skipped


PAYMENT_FIELDS = "id humanId state amountCents currency createdAt order { number status }"


def scenarios(ours, pg, cluster, quick, deep_page, store_orders=()):
    """Request lists per (scenario, face)."""
    ids = [int(x) for x in cluster.sql("SELECT id FROM orders ORDER BY random() LIMIT 200").split()]
    gql, rest, pgql = f"{ours}/graphql", f"{ours}/api/v1/admin/orders", f"{pg}/graphql"
    pages = list(range(1, 11))
    detail_q = f"query Detail($id: ID!) {{ order(id: $id) {{ {ORDER_FIELDS} }} }}"
    page_q = (f"query Page($p: Int!) {{ orders(filter: {{status: COMPLETED}}, sort: CREATED_AT, direction: DESC, "
              f"page: $p, perPage: 50) {{ nodes {{ {ORDER_FIELDS} }} pageInfo {{ totalCount }} }} }}")
    pg_detail_q = f"query Detail($id: BigInt!) {{ orderById(id: $id) {{ {PG_ORDER_FIELDS} }} }}"
    pg_page_q = (f"query Page($o: Int!) {{ allOrders(first: 50, offset: $o, condition: {{status: 2}}, "
                 f"orderBy: CREATED_AT_DESC) {{ nodes {{ {PG_ORDER_FIELDS} }} totalCount }} }}")
    # Oldest first, so page 1 and the deep page both hold seeded orders (newest first, page 1
    # would be the light store orders the run itself creates, and the ratio would measure
    # the data rather than the paging).
    deep_q = (f"query Deep($p: Int!) {{ orders(page: $p, perPage: 50, sort: CREATED_AT, direction: ASC) "
              f"{{ nodes {{ {ORDER_FIELDS} }} }} }}")
    # The same pages by cursor: the cursor that ends page N-1 comes from a page-number read.
    cursor_q = (f"query DeepCursor($after: String) {{ orders(first: 50, after: $after, sort: CREATED_AT, direction: ASC) "
                f"{{ nodes {{ {ORDER_FIELDS} }} }} }}")
    deep_cursor = cursor_before(gql, deep_page)
    paid = [int(x) for x in cluster.sql(
        "SELECT id FROM orders WHERE payment_status = 3 AND total_cents > 1000 ORDER BY id LIMIT 2000").split()]
    pending = [tuple(map(int, row.split("|"))) for row in cluster.sql(
        "SELECT p.order_id, p.id FROM payments p WHERE p.status = 1 ORDER BY p.id LIMIT 2000").split()]
    refund_q = "mutation Refund($id: ID!) { refundOrder(input: { id: $id, amountCents: 1 }) { refundedCents } }"
    callback_q = ("mutation Callback($o: ID!, $p: ID!) { processPaymentCallback(input: { orderId: $o, paymentId: $p, "
                  "status: SUCCEEDED }) { paymentStatus } }")
    half = len(paid) // 2
    # Payments on their own (issue 13): page 1 and a deep page, 25 with their orders, by
    # cursor (GraphQL) and by page number (seed 003's face).
    pay_q = (f"query Payments($after: String) {{ payments(first: 25, after: $after, sort: CREATED_AT, direction: ASC) "
             f"{{ nodes {{ {PAYMENT_FIELDS} }} }} }}")
    pay_cursor = cursor_before(gql, deep_page, "payments", 25)
    pay_rest = f"{ours}/api/payments?sort=created_at&size=25"
    payment_rows = {
        ("6 payments page 1", "GraphQL cursor"): [gql_request(gql, pay_q, {"after": None})],
        (f"6 payments page {deep_page}", "GraphQL cursor"): [gql_request(gql, pay_q, {"after": pay_cursor})],
        ("6 payments page 1", "REST"): [{"method": "GET", "url": f"{pay_rest}&page=0"}],
        (f"6 payments page {deep_page}", "REST"): [{"method": "GET", "url": f"{pay_rest}&page={deep_page - 1}"}],
    } if pay_cursor else {}
    return {
        ("1 order detail", "GraphQL"): [gql_request(gql, detail_q, {"id": str(i)}) for i in ids],
        ("1 order detail", "REST"): [{"method": "GET", "url": f"{rest}/{i}"} for i in ids],
        ("1 order detail", "PostGraphile"): [gql_request(pgql, pg_detail_q, {"id": str(i)}) for i in ids],
        ("2 page of 50", "GraphQL"): [gql_request(gql, page_q, {"p": p}) for p in pages],
        ("2 page of 50", "REST"): [{"method": "GET", "url": f"{rest}?status=2&sort=created_at&direction=desc&per_page=50&page={p}"} for p in pages],
        ("2 page of 50", "PostGraphile"): [gql_request(pgql, pg_page_q, {"o": (p - 1) * 50}) for p in pages],
        ("3 page 1", "GraphQL"): [gql_request(gql, deep_q, {"p": 1})],
        ("3 page 1", "REST"): [{"method": "GET", "url": f"{rest}?per_page=50&page=1&sort=created_at&direction=asc"}],
        (f"3 page {deep_page}", "GraphQL"): [gql_request(gql, deep_q, {"p": deep_page})],
        (f"3 page {deep_page}", "REST"): [{"method": "GET", "url": f"{rest}?per_page=50&page={deep_page}&sort=created_at&direction=asc"}],
        **({("3 page 1", "GraphQL cursor"): [gql_request(gql, cursor_q, {"after": None})],
            (f"3 page {deep_page}", "GraphQL cursor"): [gql_request(gql, cursor_q, {"after": deep_cursor})]}
           if deep_cursor else {}),
        # After the order pages, not first: the first group measured carries the warm-up.
        **payment_rows,
        ("4 refunds", "GraphQL"): [gql_request(gql, refund_q, {"id": str(i)}) for i in paid[:half]],
        ("4 refunds", "REST"): [{"method": "POST", "url": f"{rest}/{i}/refund", "body": json.dumps({"amount_cents": 1})} for i in paid[half:]],
        ("4 callbacks", "GraphQL"): [gql_request(gql, callback_q, {"o": str(o), "p": str(p)}) for o, p in pending],
        ("4 callbacks", "REST signed"): [{"method": "POST", "url": f"{ours}/api/v1/payments/callback",
                                          "body": json.dumps({"order_id": o, "payment_id": p, "status": 2})} for o, p in pending],
        # Seed 001's face against the GraphQL operations it runs (a merchant key).
        ("5 store order", "GraphQL"): [gql_request(gql, STORE_DETAIL_Q, {"id": i}) for i in store_orders],
        ("5 store order", "REST"): [{"method": "GET", "url": f"{ours}/api/v1/store/orders/{i}"} for i in store_orders],
        ("5 store create", "GraphQL"): [gql_request(gql, STORE_CREATE_Q, {"a": 1000 + n}) for n in range(100)],
        ("5 store create", "REST"): [{"method": "POST", "url": f"{ours}/api/v1/order",
                                      "body": json.dumps({"pay_amount": 1000.0 + n, "customer_order_id": f"b{n}"})}
                                     for n in range(100)],
    }


STORE_FIELDS = """publicId totalCents currency merchantStatus paymentMethod paymentStatus paidAt createdAt updatedAt
  store { id storeName officeName } merchant { id displayName }
  paymentRequest { customerId customerOrderId description successUrl cancelUrl callbackUrl consumerEmail consumerPhone
                   paymentType installmentTerm paymentDate paymentUrl updatedAt }
  userId payMethod"""
STORE_DETAIL_Q = f"query StoreDetail($id: UUID!) {{ orderByPublicId(id: $id) {{ {STORE_FIELDS} }} }}"
STORE_CREATE_Q = (f"mutation StoreCreate($a: Money!) {{ createMerchantOrder(input: {{ amountCents: $a }}) "
                  f"{{ {STORE_FIELDS} }} }}")


class Receiver:
    """A webhook receiver on loopback: records, per delivery, how long after the change it arrived."""

    def __init__(self):
        self.latencies_ms = []
        self.ids = set()
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a real receiver

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                now_ms = time.time() * 1000
                try:
                    sent = json.loads(body)
                    with receiver.lock:
                        receiver.latencies_ms.append(now_ms - sent["update_date"])
                        receiver.ids.add(self.headers.get("webhook-id"))
                except (ValueError, KeyError):
                    pass
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        class Server(http.server.ThreadingHTTPServer):
            # The default listen backlog (5) drops connections a worker opens at once.
            request_queue_size = 256
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()


def live_latency(loadgen, ours, key, merchant_key, server, cluster, work, rate, seconds, subscriptions):
    """`subscriptions` open orderUpdated subscriptions (25 per connection, the default limit) on as many store
    orders, while those orders change at `rate` per second through seed 001's PUT; latency
    from each change (the event's time, in the changing transaction) to the subscriber, and
    the server's RSS with and without the subscriptions open."""
    live_dir = work / "live"
    if not (live_dir / "node_modules" / "graphql-ws").is_dir():
        live_dir.mkdir(parents=True, exist_ok=True)
        run(["npm", "install", "--no-package-lock", "--no-audit", "--no-fund", "--silent", "--prefix", str(live_dir),
             "graphql-ws@6.4.2", "ws@8.23.0", "graphql@16.15.0"])
    shutil.copy(ROOT / "bench" / "live_subscribers.mjs", live_dir / "live_subscribers.mjs")
    for n in range(subscriptions - int(cluster.sql("SELECT count(*) FROM orders WHERE store_id IS NOT NULL AND status = 1"))):
        post_json(f"{ours}/api/v1/order", {"pay_amount": 300 + n}, merchant_key)
    rows = [row.split("|") for row in cluster.sql(
        f"SELECT id, public_id, event_seq FROM orders WHERE store_id IS NOT NULL AND status = 1 ORDER BY id LIMIT {subscriptions}").split()]
    rss = lambda: int(re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{server.proc.pid}/status").read_text()).group(1))  # noqa: E731
    idle_kib = rss()
    ws = ours.replace("http://", "ws://") + "/graphql"
    node = subprocess.Popen(["node", "live_subscribers.mjs", ws, key, "30", "25"] + [f"{r[0]}:{r[2]}" for r in rows],
                            cwd=live_dir, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    ready = node.stdout.readline().strip()
    if ready != "ready":
        node.kill()
        sys.exit(f"live subscribers did not start: {ready!r}")
    open_kib = rss()
    before = int(cluster.sql("SELECT count(*) FROM order_events"))
    path = work / "live-requests.jsonl"
    path.write_text("\n".join(json.dumps({"method": "PUT", "url": f"{ours}/api/v1/store/orders/{rows[n % len(rows)][1]}",
                                          "body": json.dumps({"pay_amount": 1000 + n})}) for n in range(20000)) + "\n")
    result = json.loads(run([str(loadgen), "--requests", str(path), "--concurrency", "16", "--rate", str(rate),
                             "--duration", str(seconds), "--warmup", "0", "--header",
                             f"Authorization: {merchant_key}"]).stdout)
    changes = int(cluster.sql("SELECT count(*) FROM order_events")) - before
    # The subscribers count until every change arrived (or their 30 s are up), so a slow
    # machine's tail is waited for rather than cut off.
    node.stdin.write(f"{changes}\n")
    node.stdin.flush()
    report = json.loads(node.stdout.readline())
    node.wait(timeout=30)
    return {"subscriptions": report["subscriptions"], "changes_per_s": result["rps"], "changes": changes,
            "errors": result["errors"], "received": report["received"], "p50_ms": report["p50_ms"],
            "p99_ms": report["p99_ms"], "idle_rss_mib": idle_kib / 1024, "open_rss_mib": open_kib / 1024,
            "kib_per_subscription": (open_kib - idle_kib) / max(report["subscriptions"], 1)}


def percentile(values, p):
    values = sorted(values)
    return values[round((len(values) - 1) * p)] if values else None


def webhook_latency(loadgen, ours, merchant_key, receiver, cluster, work, rate, seconds):
    """Order changes at `rate` per second through seed 001's face; every change is one
    delivery to the loopback receiver. Latency: from the change's update_date (set in the
    changing transaction) to the receiver reading the body."""
    # The earlier scenarios' deliveries drain first; then the receiver starts afresh.
    deadline = time.time() + 120
    while int(cluster.sql("SELECT count(*) FROM webhook_deliveries WHERE state = 1")) and time.time() < deadline:
        time.sleep(0.2)
    with receiver.lock:
        receiver.latencies_ms.clear()
        receiver.ids.clear()
    before = int(cluster.sql("SELECT count(*) FROM webhook_deliveries"))
    path = work / "webhook-requests.jsonl"
    path.write_text("\n".join(json.dumps({"method": "POST", "url": f"{ours}/api/v1/order",
                                          "body": json.dumps({"pay_amount": 100 + n})}) for n in range(1000)) + "\n")
    result = json.loads(run([str(loadgen), "--requests", str(path), "--concurrency", "16", "--rate", str(rate),
                             "--duration", str(seconds), "--warmup", "0", "--header",
                             f"Authorization: {merchant_key}"]).stdout)
    expected = int(cluster.sql("SELECT count(*) FROM webhook_deliveries")) - before
    deadline = time.time() + 60
    while time.time() < deadline:
        with receiver.lock:
            if len(receiver.ids) >= expected:
                break
        time.sleep(0.1)
    with receiver.lock:
        latencies, delivered = list(receiver.latencies_ms), len(receiver.ids)
    return {"changes_per_s": result["rps"], "changes": result["requests"], "errors": result["errors"],
            "deliveries": expected, "delivered": delivered, "lost": expected - delivered,
            "p50_ms": percentile(latencies, 0.5), "p99_ms": percentile(latencies, 0.99)}


# ------------------------------------------------------------------ pgbench replay

def literal(value):
    value = value.strip()
    if value.startswith('"') and value.endswith('"'):
        return "'" + value[1:-1].replace("'", "''") + "'"
    if value.startswith("[") and value.endswith("]"):
        items = [v.strip() for v in value[1:-1].split(",") if v.strip()]
        return "'{" + ",".join(i.strip('"') for i in items) + "}'"
    if re.fullmatch(r"-?\d+(\.\d+)?", value):
        return value
    return "'" + value.replace("'", "''") + "'"


def split_binds(text):
    parts, depth, current, quoted = [], 0, "", False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if not quoted and ch in "[(":
            depth += 1
        if not quoted and ch in "])":
            depth -= 1
        if ch == "," and depth == 0 and not quoted:
            parts.append(current)
            current = ""
        else:
            current += ch
    if current.strip():
        parts.append(current)
    return parts


def to_pgbench(statement):
    sql, _, binds = statement.partition(" -- binds: ")
    values = split_binds(binds.strip()[1:-1]) if binds.strip().startswith("[") else []
    for index in range(len(values), 0, -1):
        sql = sql.replace(f"${index}", literal(values[index - 1]))
    return sql + ";"


def capture_sql(binary, cluster, key, work, request):
    """Runs one request on a server that logs its SQL; returns the statements it sent."""
    port = free_port()
    log_path = work / "capture.log"
    with open(log_path, "w") as log_file:
        server = Server("capture", [str(binary)], port, {
            "DATABASE_URL": cluster.url(), "BIND_ADDR": f"127.0.0.1:{port}", "LOG_FORMAT": "json",
            "RUST_LOG": "billing_api::sql=trace", "CALLBACK_SECRET": CALLBACK_SECRET, "RATE_LIMIT_PER_SECOND": "0",
            # The live-update tail's fallback poll would land in the capture.
            "LIVE_POLL_MS": "600000"}, stderr=log_file)
        server.wait("/healthz")
        time.sleep(0.3)
        with open(log_path) as f:
            skip = len(f.readlines())
        post_json(f"http://127.0.0.1:{port}/graphql", json.loads(request["body"]), key)
        time.sleep(0.3)
        server.stop()
    statements = []
    for line in open(log_path).read().splitlines()[skip:]:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("target") == "billing_api::sql":
            message = entry["fields"]["message"]
            # The live-update tail's reads are the process's, not the request's.
            if "pg_snapshot_xmin" not in message:
                statements.append(message)
    return statements


def pgbench(cluster, script_path, concurrency, seconds):
    out = run([str(cluster.bin / "pgbench"), "-n", "-f", str(script_path), "-c", str(concurrency),
               "-j", str(min(concurrency, 2)), "-T", str(max(1, round(seconds))), cluster.url()])
    tps = float(re.search(r"tps = ([\d.]+)", out.stdout).group(1))
    latency = float(re.search(r"latency average = ([\d.]+) ms", out.stdout).group(1))
    return tps, latency


def replay_with_pgbench(binary, cluster, key, work, plan, sweep, seconds, rows):
    log("capturing our SQL for pgbench")
    for scenario in ("1 order detail", "2 page of 50"):
        statements = capture_sql(binary, cluster, key, work, plan[(scenario, "GraphQL")][0])
        script = work / f"pgbench-{scenario.split()[0]}.sql"
        script.write_text("\n".join(to_pgbench(s) for s in statements) + "\n")
        for concurrency in sweep:
            tps, latency = pgbench(cluster, script, concurrency, seconds)
            rows.append((scenario, "pgbench (our SQL)", concurrency, {
                "rps": tps, "p50_ms": latency, "p99_ms": None, "errors": 0,
                "statements_per_request": len(statements), "cpu_ms_per_request": None}))
            log(f"{scenario:16} pgbench      c={concurrency:<3} {tps:9.1f} tps  avg {latency:.2f} ms  ({len(statements)} statements)")


# ------------------------------------------------------------------ measuring

def statements_total(cluster):
    return int(cluster.sql("SELECT coalesce(sum(calls), 0) FROM pg_stat_statements "
                           "WHERE query NOT ILIKE '%pg_stat_statements%'") or 0)


def measure(loadgen, requests, server, cluster, work, concurrency, seconds, warmup, headers, sign=False):
    path = work / "requests.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in requests) + "\n")
    base = [str(loadgen), "--requests", str(path), "--concurrency", str(concurrency)]
    for header in headers:
        base += ["--header", header]
    if sign:
        base += ["--sign-secret", CALLBACK_SECRET]
    run(base + ["--duration", str(warmup), "--warmup", "0"])
    cluster.sql("SELECT pg_stat_statements_reset()")
    cpu_before = server.cpu_seconds()
    result = json.loads(run(base + ["--duration", str(seconds), "--warmup", "0"]).stdout)
    cpu = server.cpu_seconds() - cpu_before
    requests_done = max(result["requests"], 1)
    result["statements_per_request"] = statements_total(cluster) / requests_done
    result["cpu_ms_per_request"] = cpu * 1000 / requests_done
    return result


def machine():
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    mem = next((line.split()[1] for line in open("/proc/meminfo") if line.startswith("MemTotal")), "0")
    return f"{os.cpu_count()} × {cpu}, {int(mem) // 1024 // 1024} GiB, {platform.platform()}"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small data, a few seconds per scenario")
    parser.add_argument("--orders", type=int)
    parser.add_argument("--seconds", type=float)
    parser.add_argument("--concurrency", type=str, help="comma-separated sweep, e.g. 1,8,32")
    parser.add_argument("--skip-postgraphile", action="store_true")
    parser.add_argument("--binary", help="a built billing-api (skips cargo build)")
    parser.add_argument("--loadgen", help="a built examples/loadgen (skips cargo build)")
    parser.add_argument("--out", help="where results go (default bench/results)")
    parser.add_argument("--compare", help="another billing-api build (say, of an earlier commit) to measure side by "
                                          "side on the read scenarios, as the faces 'GraphQL (before)' and 'REST (before)'")
    args = parser.parse_args()
    quick = args.quick
    orders = args.orders or (3_000 if quick else 100_000)
    seconds = args.seconds or (2 if quick else 10)
    warmup = 1 if quick else 3
    sweep = [int(c) for c in (args.concurrency or ("4" if quick else "1,8,32")).split(",")]
    deep_page = 40 if quick else 1000
    profile = "dev" if quick else "release"
    work = ROOT / "target" / "bench"
    work.mkdir(parents=True, exist_ok=True)

    if args.binary and args.loadgen:
        binary, loadgen = Path(args.binary), Path(args.loadgen)
    else:
        log(f"building ({profile})")
        run(["cargo", "build", "--profile", profile, "--bin", "billing-api", "--example", "loadgen"], cwd=ROOT)
        target = ROOT / "target" / ("debug" if profile == "dev" else "release")
        binary, loadgen = target / "billing-api", target / "examples" / "loadgen"
    out = Path(args.out) if args.out else ROOT / "bench" / "results"

    pg_dir = work / "postgraphile"
    use_postgraphile = not args.skip_postgraphile
    if use_postgraphile and not (pg_dir / "node_modules" / ".bin" / "postgraphile").exists():
        log(f"installing {POSTGRAPHILE}")
        run(["npm", "install", "--no-package-lock", "--no-audit", "--no-fund", "--silent", "--prefix", str(pg_dir), POSTGRAPHILE])

    cluster = Cluster(work)
    servers = []
    try:
        log("starting PostgreSQL")
        cluster.start()
        cluster.sql("CREATE DATABASE bench", db="postgres")
        cluster.sql("CREATE EXTENSION pg_stat_statements")
        env = {"DATABASE_URL": cluster.url(), "CALLBACK_SECRET": CALLBACK_SECRET, "RATE_LIMIT_PER_SECOND": "0"}
        run([str(binary), "migrate"], env={**os.environ, **env})
        started = time.time()
        users = max(orders // 10, 10)
        run([str(binary), "seed", "--users", str(users), "--orders", str(orders)], env={**os.environ, **env})
        log(f"seeded {orders} orders in {time.time() - started:.1f}s")
        # Pending attempts for the callback scenario.
        cluster.sql("INSERT INTO payments (order_id, status, provider, payment_method, amount_cents, currency) "
                    "SELECT id, 1, 'manual', 'card', total_cents, currency FROM orders WHERE status = 1 AND payment_status = 1")
        cluster.sql("UPDATE orders SET payment_status = 2 WHERE status = 1 AND payment_status = 1")
        cluster.sql("VACUUM ANALYZE")
        # Write the seed out now rather than in a checkpoint during the first measurements.
        cluster.sql("CHECKPOINT")
        key = run([str(binary), "keys", "create", "--role", "admin", "--name", "bench"], env={**os.environ, **env}).stdout.strip().splitlines()[-1]
        ADMIN_KEY[0] = key
        # A merchant with a store, a key and a webhook endpoint on a loopback receiver.
        receiver = Receiver()
        env["WEBHOOK_ALLOW_PRIVATE_TARGETS"] = "true"
        # The live phase opens 1,000 subscriptions with one key; the tail is woken by NOTIFY,
        # and its fallback poll would only add statements to the read scenarios' counts.
        env["WS_SUBSCRIPTIONS_PER_KEY"] = "5000"
        env["LIVE_POLL_MS"] = "60000"
        merchant = run([str(binary), "merchants", "create", "--name", "Bench merchant"], env={**os.environ, **env}).stdout.split()[2]
        run([str(binary), "merchants", "add-store", "--merchant", merchant, "--store-name", "Bench store",
             "--office-name", "Bench office"], env={**os.environ, **env})
        run([str(binary), "merchants", "add-endpoint", "--merchant", merchant, "--url", receiver.url], env={**os.environ, **env})
        merchant_key = run([str(binary), "keys", "create", "--role", "merchant", "--merchant", merchant, "--name", "bench-merchant"],
                           env={**os.environ, **env}).stdout.strip().splitlines()[-1]

        ours_port = free_port()
        ours = Server("billing-api", [str(binary)], ours_port, {**env, "BIND_ADDR": f"127.0.0.1:{ours_port}",
                                                             "RUST_LOG": "warn", "DATABASE_POOL_SIZE": "32"})
        servers.append(ours)
        ours.wait("/healthz")
        before = None
        if args.compare:
            before_port = free_port()
            before = Server("billing-api (before)", [str(Path(args.compare))], before_port,
                            {**env, "BIND_ADDR": f"127.0.0.1:{before_port}", "RUST_LOG": "warn", "DATABASE_POOL_SIZE": "32"})
            servers.append(before)
            before.wait("/healthz")
        pg = None
        if use_postgraphile:
            pg_port = free_port()
            pg = Server("postgraphile", ["node", str(pg_dir / "node_modules" / ".bin" / "postgraphile"), "-c", cluster.url(),
                                         "-s", "public", "--host", "127.0.0.1", "--port", str(pg_port),
                                         "--disable-query-log", "--dynamic-json", "--max-pool-size", "32"], pg_port)
            servers.append(pg)
            pg.wait("/graphql")

        store_orders = [post_json(f"http://127.0.0.1:{ours_port}/api/v1/order", {"pay_amount": 500 + n}, merchant_key)["id"]
                        for n in range(200)]
        plan = scenarios(f"http://127.0.0.1:{ours_port}", f"http://127.0.0.1:{pg.port}" if pg else "", cluster, quick, deep_page,
                         store_orders)
        if before:
            # The read scenarios again, against the other build; each placed right after our
            # face of the same name, so both are measured side by side.
            theirs = scenarios(f"http://127.0.0.1:{before.port}", "", cluster, quick, deep_page)
            merged = {}
            for (scenario, face), requests in plan.items():
                merged[(scenario, face)] = requests
                if scenario[0] in "123" and face in ("GraphQL", "REST"):
                    merged[(scenario, f"{face} (before)")] = theirs[(scenario, face)]
            plan = merged
        # Faces of one scenario are measured side by side: at each concurrency, one after
        # the other, so drift on a shared machine (other tenants, PostgreSQL background work)
        # lands on all of them alike.
        groups = {}
        for planned in plan:
            groups.setdefault(planned[0][0], []).append(planned)
        rows = []
        for number, faces in groups.items():
            if number == "4":
                # Before the write scenarios, so pgbench sees the table our reads saw.
                replay_with_pgbench(binary, cluster, key, work, plan, sweep, seconds, rows)
            measured = []
            for concurrency in sweep:
                for scenario, face in faces:
                    if face == "PostGraphile" and not pg:
                        continue
                    server = pg if face == "PostGraphile" else before if face.endswith("(before)") else ours
                    headers = [] if face in ("PostGraphile", "REST signed") else [f"Authorization: Bearer {key}"]
                    if scenario.startswith("5 "):
                        headers = [f"Authorization: {merchant_key}"]
                    result = measure(loadgen, plan[(scenario, face)], server, cluster, work, concurrency, seconds,
                                     warmup, headers, sign=(face == "REST signed"))
                    measured.append((scenario, face, concurrency, result))
                    log(f"{scenario:16} {face:12} c={concurrency:<3} {result['rps']:9.1f} rps  p50 {result['p50_ms']:7.2f} ms  "
                        f"p99 {result['p99_ms']:7.2f} ms  errors {result['errors']}  sql/req {result['statements_per_request']:.1f}  "
                        f"cpu-ms/req {result['cpu_ms_per_request']:.2f}")
                    if result["errors"]:
                        log(f"  error samples: {result['error_samples']}")
            # The report lists each face's sweep together.
            rows += sorted(measured, key=lambda r: (faces.index((r[0], r[1])), sweep.index(r[2])))

        explained = explain_payment_pages(cluster, f"http://127.0.0.1:{ours_port}/graphql")
        log(f"payment plans: {explained}")

        rate = 200
        log(f"webhooks: order changes at {rate}/s through /api/v1/order, delivered to a loopback receiver")
        hooks = webhook_latency(loadgen, f"http://127.0.0.1:{ours_port}", merchant_key, receiver, cluster, work, rate,
                                3 if quick else 10)
        log(f"webhooks: {hooks}")
        receiver.stop()
        subs = 100 if quick else 1000
        log(f"live: {subs} subscriptions, order changes at {rate}/s through PUT /api/v1/store/orders/{{id}}")
        live = live_latency(loadgen, f"http://127.0.0.1:{ours_port}", key, merchant_key, ours, cluster, work, rate,
                            3 if quick else 10, subs)
        log(f"live: {live}")
        write_report(out, rows, sweep, quick, orders, seconds, deep_page, compared=bool(before), hooks=hooks, live=live,
                     explained=explained)
        failed = [r for r in rows if r[3]["errors"]]
        if live["received"] != live["changes"] or live["errors"]:
            sys.exit(f"live: {live['changes']} changes, {live['received']} received, {live['errors']} request errors")
        if hooks["lost"] or hooks["errors"]:
            sys.exit(f"webhooks: {hooks['lost']} deliveries lost, {hooks['errors']} request errors")
        if failed:
            sys.exit(f"{len(failed)} measurements had errors")
    finally:
        for server in servers:
            server.stop()
        cluster.stop()


def fmt(value, digits=1):
    return "–" if value is None else f"{value:.{digits}f}"


def explain_payment_pages(cluster, gql):
    """Runs filtered and sorted payment pages once each with auto_explain on, and reads the
    plans PostgreSQL logged for them: the statements the service really sent."""
    user, order = cluster.sql("SELECT o.user_id || ' ' || o.id FROM orders o JOIN payments p ON p.order_id = o.id "
                              "WHERE o.user_id IS NOT NULL ORDER BY o.id LIMIT 1").split()
    human = cluster.sql("SELECT human_id FROM payments ORDER BY id DESC LIMIT 1")
    filters = [
        {"status": "SUCCEEDED"}, {"statusIn": ["FAILED", "CANCELLED"]}, {"paymentMethod": "bank_transfer"},
        {"provider": "manual"}, {"orderId": order}, {"userId": user}, {"humanId": human},
        {"amountGte": 5000, "amountLte": 5100}, {"currency": "JPY", "amountGte": 1000},
        {"createdAtGte": "2025-01-01T00:00:00Z", "createdAtLte": "2025-01-08T00:00:00Z"},
        {"paidAtGte": "2025-03-01T00:00:00Z", "paidAtLte": "2025-03-02T00:00:00Z"},
        {"settled": True, "settledAtGte": "2025-02-01T00:00:00Z", "settledAtLte": "2025-02-03T00:00:00Z"},
    ]
    sorts = [("AMOUNT", "DESC"), ("PAID_AT", "DESC"), ("SETTLED_AT", "ASC"), ("CREATED_AT", "DESC")]
    query = ("query($f: PaymentFilter, $s: PaymentSortField, $d: SortDirection) { payments(filter: $f, sort: $s, "
             f"direction: $d, first: 25) {{ nodes {{ {PAYMENT_FIELDS} }} }} }}")
    log_file = cluster.root / "server.log"
    start = log_file.stat().st_size
    cluster.sql("ALTER SYSTEM SET auto_explain.log_min_duration = 0")
    cluster.sql("SELECT pg_reload_conf()")
    time.sleep(0.5)
    requests = 0
    try:
        for f in filters:
            for s, d in sorts:
                answer = post_json(gql, {"query": query, "variables": {"f": f, "s": s, "d": d}}, ADMIN_KEY[0])
                if "errors" in answer:
                    raise SystemExit(f"payments page {f} {s} {d}: {answer['errors']}")
                requests += 1
    finally:
        cluster.sql("ALTER SYSTEM SET auto_explain.log_min_duration = -1")
        cluster.sql("SELECT pg_reload_conf()")
    with open(log_file, errors="replace") as log_text:
        log_text.seek(start)
        text = log_text.read()
    blocks = text.split("Query Text:")[1:]
    seq = []
    for block in blocks:
        if "Seq Scan on payments" in block or "Seq Scan on orders" in block:
            where = block.find("WHERE")
            seq.append(" ".join(block[where:where + 160].split()) if where >= 0 else " ".join(block[:160].split()))
    plans = len(blocks)
    return {"requests": requests, "plans": plans, "seq_scans": seq}


def write_report(out, rows, sweep, quick, orders, seconds, deep_page, compared=False, hooks=None, live=None,
                 explained=None):
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H%M%SZ")
    lines = [f"# Benchmark {stamp}{' (quick)' if quick else ''}", "",
             f"Machine: {machine()}  ", f"Data: {orders} orders; {seconds}s per measurement after a warm-up; "
             f"concurrency {', '.join(map(str, sweep))}. Command: `bench/run.py{' --quick' if quick else ''}`.", "",
             "| scenario | face | conc. | req/s | p50 ms | p99 ms | errors | SQL/req | server CPU-ms/req |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for scenario, face, concurrency, r in rows:
        p50_label = fmt(r["p50_ms"], 2) + (" (avg)" if face.startswith("pgbench") else "")
        lines.append(f"| {scenario} | {face} | {concurrency} | {fmt(r['rps'])} | {p50_label} | {fmt(r['p99_ms'], 2)} | "
                     f"{r['errors']} | {fmt(r['statements_per_request'])} | {fmt(r['cpu_ms_per_request'], 2)} |")
    by = {(s, f, c): r for s, f, c, r in rows}
    lines += ["", "## Ratios", "", "| scenario | conc. | ours/PostGraphile | REST/GraphQL | GraphQL/pgbench |", "|---|---:|---:|---:|---:|"]
    for scenario in ("1 order detail", "2 page of 50", "5 store order", "5 store create"):
        for c in sweep:
            g, r, p, b = (by.get((scenario, f, c)) for f in ("GraphQL", "REST", "PostGraphile", "pgbench (our SQL)"))
            ratio = lambda a, z: f"{a['rps'] / z['rps']:.2f}" if a and z and z["rps"] else "–"  # noqa: E731
            lines.append(f"| {scenario} | {c} | {ratio(g, p)} | {ratio(r, g)} | {ratio(g, b)} |")
    lines += ["", "| deep page | conc. | GraphQL p50 page {0} / page 1 | REST p50 page {0} / page 1 | GraphQL cursor p50 page {0} / page 1 |".format(deep_page), "|---|---:|---:|---:|---:|"]
    for c in sweep:
        cells = []
        for face in ("GraphQL", "REST", "GraphQL cursor"):
            first, deep = by.get(("3 page 1", face, c)), by.get((f"3 page {deep_page}", face, c))
            cells.append(f"{deep['p50_ms'] / first['p50_ms']:.2f}" if first and deep and first["p50_ms"] else "–")
        lines.append(f"| page {deep_page} | {c} | {cells[0]} | {cells[1]} | {cells[2]} |")
    lines += ["", "| payments deep page (25 with their orders) | conc. | GraphQL cursor p50 page {0} / page 1 | REST (page number) p50 page {0} / page 1 |".format(deep_page), "|---|---:|---:|---:|"]
    for c in sweep:
        cells = []
        for face in ("GraphQL cursor", "REST"):
            first, deep = by.get(("6 payments page 1", face, c)), by.get((f"6 payments page {deep_page}", face, c))
            cells.append(f"{deep['p50_ms'] / first['p50_ms']:.2f}" if first and deep and first["p50_ms"] else "–")
        lines.append(f"| page {deep_page} | {c} | {cells[0]} | {cells[1]} |")
    if explained:
        lines += ["", "## Plans of filtered payment pages", "",
                  f"Every statement the service ran for {explained['requests']} filtered or sorted `payments` pages "
                  "(auto_explain, real parameters, the benchmark's data): "
                  f"{explained['plans']} plans, sequential scans: {len(explained['seq_scans'])}."]
        lines += [f"- `{q}`" for q in explained["seq_scans"]]
    if compared:
        lines += ["", "## This build against the compared one (req/s, side by side)", "",
                  "| scenario | conc. | GraphQL now/before | REST now/before |", "|---|---:|---:|---:|"]
        for scenario in ("1 order detail", "2 page of 50", "3 page 1", f"3 page {deep_page}"):
            for c in sweep:
                cells = []
                for face in ("GraphQL", "REST"):
                    now, then = by.get((scenario, face, c)), by.get((scenario, f"{face} (before)", c))
                    cells.append(f"{now['rps'] / then['rps']:.2f}" if now and then and then["rps"] else "–")
                lines.append(f"| {scenario} | {c} | {cells[0]} | {cells[1]} |")
    if hooks:
        lines += ["", "## Merchant webhooks", "",
                  f"Order changes at {fmt(hooks['changes_per_s'])}/s (target 200) through `POST /api/v1/order`, each "
                  "delivered to a loopback receiver; latency from the change (`update_date`) to the receiver.", "",
                  "| changes | deliveries | delivered | lost | p50 ms | p99 ms |", "|---:|---:|---:|---:|---:|---:|",
                  f"| {hooks['changes']} | {hooks['deliveries']} | {hooks['delivered']} | {hooks['lost']} | "
                  f"{fmt(hooks['p50_ms'], 1)} | {fmt(hooks['p99_ms'], 1)} |"]
    if live:
        lines += ["", "## Live order updates (GraphQL subscriptions)", "",
                  f"{live['subscriptions']} `orderUpdated` subscriptions (25 per WebSocket, graphql-ws client) on as many "
                  f"store orders, changed at {fmt(live['changes_per_s'])}/s (target 200) through `PUT /api/v1/store/orders/{{id}}`; "
                  "latency from the change (the event's time, in the changing transaction) to the subscriber.", "",
                  "| changes | received | p50 ms | p99 ms | RSS idle MiB | RSS with subscriptions MiB | KiB per subscription |",
                  "|---:|---:|---:|---:|---:|---:|---:|",
                  f"| {live['changes']} | {live['received']} | {fmt(live['p50_ms'], 1)} | {fmt(live['p99_ms'], 1)} | "
                  f"{fmt(live['idle_rss_mib'], 1)} | {fmt(live['open_rss_mib'], 1)} | {fmt(live['kib_per_subscription'], 1)} |"]
    text = "\n".join(lines) + "\n"
    name = f"{stamp}{'-quick' if quick else ''}.md"
    (out / name).write_text(text)
    (out / ("latest-quick.md" if quick else "latest.md")).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
