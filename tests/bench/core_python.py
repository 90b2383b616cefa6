"""Python's side of the core-speed bench: xmlrpc.client.loads (expat underneath) and json.loads on
the same bytes as keyrelay_bench_core, with the same method: 3 warm-up decodes, then 7 batches of about SECONDS/7;
the figure is the median batch throughput (MB = 10^6 bytes). Each result is checked (item count).

    python3 core_python.py xmlrpc FILE SECONDS [EXPECTED_ITEMS]
    python3 core_python.py json   FILE SECONDS [EXPECTED_ITEMS]
"""
import json
import sys
import time
import xmlrpc.client

WARMUP = 3
BATCHES = 7


def decode_xmlrpc(data):
    params, _method = xmlrpc.client.loads(data)
    return len(params[0])


def decode_json(data):
    return len(json.loads(data)["contacts"])


def main():
    if len(sys.argv) < 4 or sys.argv[1] not in ("xmlrpc", "json"):
        print(__doc__, file=sys.stderr)
        return 2
    what, path, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    expect = int(sys.argv[4]) if len(sys.argv) > 4 else 1000
    with open(path, "rb") as f:
        data = f.read()
    decode = decode_xmlrpc if what == "xmlrpc" else decode_json
    name = "xmlrpc.client.loads" if what == "xmlrpc" else "json.loads"
    for _ in range(WARMUP):
        n = decode(data)
        if n != expect:
            print(f"core_python.py: {name} decoded {n} items, expected {expect}", file=sys.stderr)
            return 1
    rates = []
    iterations = 0
    all_start = time.perf_counter()
    for _ in range(BATCHES):
        start = time.perf_counter()
        iters = 0
        while True:
            if decode(data) != expect:
                return 1
            iters += 1
            elapsed = time.perf_counter() - start
            if elapsed >= seconds / BATCHES:
                break
        iterations += iters
        rates.append(len(data) * iters / elapsed / 1e6)
    rates.sort()
    print(json.dumps({
        "runtime": f"python {sys.version.split()[0]}", "function": name, "bytes": len(data), "items": expect,
        "iterations": iterations, "seconds": round(time.perf_counter() - all_start, 3),
        "mb_per_s": round(rates[len(rates) // 2], 2), "mb_per_s_min": round(rates[0], 2),
        "mb_per_s_max": round(rates[-1], 2),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
