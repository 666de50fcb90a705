"""One sender of bench/scale_bench.py, a child process so senders are not one GIL.

    python bench/scale_send.py URL TOKEN PATH BODIES_FILE

Reads one pre-serialised JSON body per line, prints "ready", waits for a line on stdin,
posts every body to PATH over one keep-alive connection, then prints a JSON line: accepted
items, refused requests, monotonic start and end.
"""

from __future__ import annotations

import http.client
import json
import sys
import time
from pathlib import Path


def main() -> None:
    url, token, path, bodies_file = sys.argv[1:5]
    bodies = [line for line in Path(bodies_file).read_bytes().splitlines() if line]
    host, port = url.removeprefix("http://").split(":")
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    if path == "/v1/labels":
        headers["Authorization"] = f"Bearer {token}-labels"  # replay.launcher.role_tokens
    conn = http.client.HTTPConnection(host, int(port), timeout=300)
    conn.connect()
    print("ready", flush=True)
    sys.stdin.readline()
    start = time.monotonic()
    acked = errors = 0
    for body in bodies:
        conn.request("POST", path, body=body, headers=headers)
        resp = conn.getresponse()
        answer = resp.read()
        if resp.status in (200, 202):
            data = json.loads(answer)
            acked += int(data.get("accepted", data.get("stored", 0)) or 0)
        else:
            errors += 1
            print(resp.status, answer[:300], file=sys.stderr)
    end = time.monotonic()
    conn.close()
    print(json.dumps({"acked": acked, "errors": errors, "start": start, "end": end}))


if __name__ == "__main__":
    main()
