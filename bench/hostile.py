#!/usr/bin/env python3
"""Times how long a running server takes to refuse each hostile document of issue 10.

    bench/hostile.py BASE_URL ADMIN_KEY CUSTOMER_KEY [REPEATS]

Sends each document REPEATS times (default 20) to BASE_URL (loopback only) and prints the
median and the slowest answer with its status. Standard library only.
"""

import json
import statistics
import sys
import time
import urllib.error
import urllib.request


def send(url, body, headers):
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            status, text = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read()
    return (time.perf_counter() - started) * 1000, status, text


def exponential_fragments():
    doc = "query { ...F0 }\n"
    for i in range(36):
        doc += f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}\n"
    return doc + "fragment F36 on Query { ...Missing }\n"


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    base, admin, customer = sys.argv[1:4]
    repeats = int(sys.argv[4]) if len(sys.argv) > 4 else 20
    if not base.startswith(("http://127.", "http://localhost", "http://[::1]")):
        sys.exit("BASE_URL must be a loopback address")
    gql = f"{base}/graphql"

    def graphql(query, key=None, **extra):
        headers = {"Content-Type": "application/json"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return gql, json.dumps({"query": query, **extra}).encode(), headers

    nested = ("{ orders(perPage:100){nodes{user{orders(perPage:100){nodes{user{orders(perPage:100)"
              "{nodes{id items{id} payments{id}}}}}}}}} }")
    signature = "t=1," + ",".join(["v1=" + "ab" * 32] * 400)
    cases = [
        ("1 fragment cycle (customer key)", *graphql("query { ...A } fragment A on Query { ...A }", customer)),
        ("2 exponential fragments (no key)", *graphql(exponential_fragments())),
        ("3 nested pages of 100 (customer key)", *graphql(nested, customer)),
        ("5 operationName of 200 KB (no key)", *graphql("{ __typename }", operationName="N" * 200_000)),
        ("6 callback with 400 v1 entries", f"{base}/api/v1/payments/callback", b'{"order_id":1}',
         {"Content-Type": "application/json", "X-Billing-Signature": signature[:4000]}),
        ("8 body that is not JSON (Accept: json)", gql, b'{ "not json',
         {"Content-Type": "application/json", "Accept": "application/json"}),
    ]
    print(f"| document | median ms | slowest ms | status |")
    print(f"|---|---:|---:|---|")
    for name, url, body, headers in cases:
        runs = [send(url, body, headers) for _ in range(repeats)]
        times = [ms for ms, _, _ in runs]
        statuses = sorted({status for _, status, _ in runs})
        print(f"| {name} | {statistics.median(times):.2f} | {max(times):.2f} | {statuses} |")


if __name__ == "__main__":
    main()
