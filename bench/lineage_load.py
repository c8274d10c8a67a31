"""OpenLineage ingest and graph queries against a running olo, driven by OpenLineage's own
Python client (openlineage-python), not by olo's code (scripts/bench-lineage.sh runs it).

    python lineage_load.py BASE_URL TOKEN [--events N] [--processes P] [--threads T]
                           [--queries Q] [--gzip]

Phase 1 (ingest): P processes x T threads, each thread with its own OpenLineageClient
(HttpTransport, the token as its API key), emit N RunEvents between them. Event k: job
`bench.job<k>` reads `db.t<k>` and a far table, writes `db.t<2k+1>` and `db.t<2k+2>` (4 edges: a
connected, branching graph, as olo-bench-server's lineage phase). Each emit is timed from the
call to its return: the client builds, serializes and posts the event, olo answers after the
event is committed. Phase 2 (graph): Q depth-5 graph queries around random jobs, one after
another on one connection. Prints one JSON document.
"""

import argparse
import http.client
import json
import multiprocessing
import random
import resource
import time
import urllib.parse
import uuid

from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.transport.http import (
    ApiKeyTokenProvider,
    HttpCompression,
    HttpConfig,
    HttpTransport,
)

PRODUCER = "https://github.com/openlake/olo/bench/lineage_load.py"
EVENT_TIME = "2026-12-07T04:30:00Z"


def event(k, tables):
    def t(i):
        return f"db.t{i % tables}"

    return RunEvent(
        eventType=RunState.COMPLETE,
        eventTime=EVENT_TIME,
        producer=PRODUCER,
        run=Run(runId=str(uuid.uuid4())),
        job=Job(namespace="bench", name=f"job{k}"),
        inputs=[
            InputDataset(namespace="bench", name=t(k)),
            InputDataset(namespace="bench", name=t(k * 7919 + 13)),
        ],
        outputs=[
            OutputDataset(namespace="bench", name=t(2 * k + 1)),
            OutputDataset(namespace="bench", name=t(2 * k + 2)),
        ],
    )


def emit_share(args):
    """One process: `threads` threads, each with its own client, emit events k = first,
    first + stride, ... below n. Returns (latencies in seconds, errors)."""
    import threading

    base, token, n, first, stride, threads, gzip = args
    tables = 2 * n + 3
    latencies, errors, lock = [], [0], threading.Lock()

    def worker(offset):
        client = OpenLineageClient(
            transport=HttpTransport(
                HttpConfig(
                    url=base,
                    endpoint="api/v1/lineage",
                    timeout=30,
                    compression=HttpCompression.GZIP if gzip else None,
                    auth=ApiKeyTokenProvider({"apiKey": token}),
                )
            )
        )
        mine = []
        for k in range(first + offset * stride, n, stride * threads):
            started = time.perf_counter()
            try:
                client.emit(event(k, tables))
            except Exception:  # counted: a refused or failed event is an error of the run
                with lock:
                    errors[0] += 1
                continue
            mine.append(time.perf_counter() - started)
        with lock:
            latencies.extend(mine)

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return latencies, errors[0]


def percentiles(values):
    if not values:
        return {}
    s = sorted(values)

    def at(q):
        return round(s[min(len(s) - 1, int(q * len(s)))] * 1000, 2)

    return {"p50_ms": at(0.50), "p90_ms": at(0.90), "p99_ms": at(0.99), "max_ms": at(1.0)}


def queries(base, token, n, count):
    url = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname, url.port)
    rng = random.Random(7)
    times, nodes = [], []
    for i in range(count + 5):
        k = rng.randrange(n)
        started = time.perf_counter()
        conn.request(
            "GET",
            f"/api/v1/lineage?nodeId=job:bench:job{k}&depth=5",
            headers={"Authorization": f"Bearer {token}"},
        )
        r = conn.getresponse()
        body = r.read()
        took = time.perf_counter() - started
        if r.status != 200:
            raise SystemExit(f"graph query answered {r.status}: {body[:200]!r}")
        if i >= 5:  # the first few warm the connection
            times.append(took)
            nodes.append(len(json.loads(body)["graph"]))
    nodes.sort()
    return times, {"p50": nodes[len(nodes) // 2], "max": nodes[-1]}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("base")
    p.add_argument("token")
    p.add_argument("--events", type=int, default=25_000)
    p.add_argument("--processes", type=int, default=4)
    p.add_argument("--threads", type=int, default=8)
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--gzip", action="store_true")
    a = p.parse_args()

    # Process i takes k = i, i + P, ...: stride P across processes, then T within one.
    shares = [
        (a.base, a.token, a.events, i, a.processes, a.threads, a.gzip)
        for i in range(a.processes)
    ]
    started = time.perf_counter()
    with multiprocessing.Pool(a.processes) as pool:
        results = pool.map(emit_share, shares)
    seconds = time.perf_counter() - started
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    client_cpu = children.ru_utime + children.ru_stime
    latencies = [x for lat, _ in results for x in lat]
    errors = sum(e for _, e in results)
    q, q_nodes = queries(a.base, a.token, a.events, a.queries)
    print(
        json.dumps(
            {
                "events": a.events,
                "connections": a.processes * a.threads,
                "gzip": a.gzip,
                "seconds": round(seconds, 3),
                "events_per_second": round(len(latencies) / seconds, 1),
                "errors": errors,
                "client_cpu_seconds": round(client_cpu, 1),
                "emit": percentiles(latencies),
                "queries": len(q),
                "query": percentiles(q),
                "query_nodes": q_nodes,
            }
        )
    )


if __name__ == "__main__":
    main()
