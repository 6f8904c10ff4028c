"""The collector's per-message Python: validating samples and building their lines, alone.

What it times: the function the collector's converter runs on a chunk of received messages
(``collector.convert.convert``, 500 messages at a time; a tree without it, such as the
paho-based collector with its converter process, is timed on ``parse`` per message, which is
what its converter ran), on the backlog ``bench/ingest.py`` drains (DESIGN.md's example
sample, 500 devices). Each tree runs in a child process of its own (``--baseline REF``: that
commit's packages, extracted as ``bench/ingest.py`` does), the trees take turns round after
round, and each figure is CPU time (``time.process_time``) per message, the best of the
passes within a round and the median over rounds: on a shared machine the best of several
passes is the least disturbed, and CPU time does not count the waits for a core.

    .venv/bin/python bench/parse.py --baseline 4485809            # 20,000 messages x 5 rounds
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ingest import backlog, baseline_tree  # noqa: E402

CHILD = """
import sys, time, orjson
messages = [(t.encode(), p.encode()) for t, p in orjson.loads(open(sys.argv[1], 'rb').read())]
now, passes = int(sys.argv[2]), int(sys.argv[3])
try:
    from labmeter.collector.convert import convert
except ImportError:
    convert = None
from labmeter.collector.convert import parse
try:  # a delivery's raw properties, in trees that keep them
    from labmeter.collector.convert import Delivery
    extra = (b"",) * (len(Delivery.__args__) - 4)
except ImportError:
    extra = ()
chunks = [[(i + 1, 1, t, p, *extra) for i, (t, p) in enumerate(messages[k:k + 500])]
          for k in range(0, len(messages), 500)]
def run_convert():
    for chunk in chunks:
        out = convert(chunk, now)
        assert not out.rejected, out.rejected[:1]
def run_parse():
    for t, p in messages:
        parse(t, p, now)
run = run_convert if convert is not None else run_parse
best = float('inf')
for _ in range(passes):
    t0 = time.process_time()
    run()
    best = min(best, time.process_time() - t0)
print(orjson.dumps({'us': best / len(messages) * 1e6,
                    'what': 'convert' if convert is not None else 'parse'}).decode())
"""


def measure(code: Path, data: Path, now: int, passes: int) -> dict[str, object]:
    env = dict(os.environ, PYTHONPATH=str(code))
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(data), str(now), str(passes)],
        check=True, capture_output=True, text=True, env=env, cwd=code,
    ).stdout  # fmt: skip
    result: dict[str, object] = orjson.loads(out)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--passes", type=int, default=5, help="passes per round; the best counts")
    parser.add_argument("--baseline", metavar="REF", help="also time the code of this commit")
    args = parser.parse_args()
    now = int(time.time() * 1000)
    start_ms = now - now % 3_600_000 - 24 * 3_600_000
    load0 = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="labmeter-parse-") as tmp:
        data = Path(tmp) / "backlog.json"
        rows = [(t, p.decode()) for t, p in backlog("site", args.messages, start_ms)]
        data.write_bytes(orjson.dumps(rows))
        trees = {"this tree": ROOT}
        if args.baseline:
            trees[args.baseline] = baseline_tree(args.baseline, Path(tmp) / "baseline")
        runs: dict[str, list[float]] = {name: [] for name in trees}
        what = {}
        for r in range(args.rounds):
            for name, code in trees.items():
                result = measure(code, data, now, args.passes)
                runs[name].append(float(result["us"]))  # type: ignore[arg-type]
                what[name] = result["what"]
            print(f"round {r + 1}: " + ", ".join(f"{n} {v[-1]:.2f} us" for n, v in runs.items()))
    print(f"\n{args.messages:,} samples (DESIGN.md's example), CPU per message, median of "
          f"{args.rounds} rounds (best of {args.passes} passes each):")  # fmt: skip
    med = {name: statistics.median(v) for name, v in runs.items()}
    for name, us in med.items():
        print(f"  {name:<10} {us:6.2f} us  ({what[name]})")
    if args.baseline:
        print(f"  {args.baseline} / this tree: {med[args.baseline] / med['this tree']:.2f}x")
    print(
        f"load average before/after: {' '.join(f'{x:.1f}' for x in load0)} / "
        f"{' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores"
    )


if __name__ == "__main__":
    main()
