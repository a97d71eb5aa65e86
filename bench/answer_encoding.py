"""How the answers are written: orjson against msgspec, on the recorded answers of tests/contract/golden/
(a 7-day hourly inbound report; 500 session rows repeated to --rows rows as an NDJSON export). Prints the
CPU time per variant, min and median over --repeat runs, and each one's ratio to orjson's.

    .venv/bin/python bench/answer_encoding.py --rows 100000 --repeat 7
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import orjson

from service import formats

ANSWERS = Path(__file__).resolve().parent.parent / "tests" / "contract" / "golden" / "answers.json"
REPORT = "GET /v1/analytics/inbound?from=2025-11-24T00:00:00Z&to=2025-12-01T00:00:00Z&interval=hour&tz=UTC&channel=phone"
ROWS = "GET /v1/sessions?from=2025-11-24T00:00:00Z&to=2025-12-01T00:00:00Z&limit=500&format=ndjson"


def timed(work: Callable[[], Any], repeat: int) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        start = time.process_time()
        work()
        times.append(time.process_time() - start)
    return min(times), statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    answers = orjson.loads(ANSWERS.read_bytes())
    report = orjson.loads(answers[REPORT].split("\n", 1)[1])
    sample = [orjson.loads(line) for line in answers[ROWS].split("\n", 1)[1].splitlines()]
    rows = (sample * (args.rows // len(sample) + 1))[: args.rows]
    encoder = msgspec.json.Encoder()

    def orjson_lines() -> list[str]:
        # One line per row, joined into chunks of CHUNK_ROWS: how exports were written before.
        out: list[str] = []
        chunk: list[str] = []
        for row in rows:
            chunk.append(orjson.dumps(row).decode() + "\n")
            if len(chunk) >= formats.CHUNK_ROWS:
                out.append("".join(chunk))
                chunk = []
        return out

    cases: dict[str, dict[str, Callable[[], Any]]] = {
        f"NDJSON, {args.rows:,} rows": {
            "orjson, a line per row": orjson_lines,
            "msgspec encode_lines per chunk (shipped)": lambda: list(formats.ndjson_chunks(rows)),
        },
        "the report, 200 times": {
            "orjson (shipped)": lambda: [formats.dumps(report) for _ in range(200)],
            "msgspec": lambda: [encoder.encode(report) for _ in range(200)],
        },
    }
    assert (
        b"".join(formats.dumps(r) + b"\n" for r in sample) == "".join(formats.ndjson_chunks(sample)).encode()
    )
    for case, variants in cases.items():
        base = None
        for name, work in variants.items():
            low, median = timed(work, args.repeat)
            base = base or median
            print(
                f"{case:28} {name:44} min {low * 1000:8.1f} ms  median {median * 1000:8.1f} ms  x{median / base:.2f}"
            )
    print(f"command: .venv/bin/python bench/answer_encoding.py --rows {args.rows} --repeat {args.repeat}")


if __name__ == "__main__":
    main()
