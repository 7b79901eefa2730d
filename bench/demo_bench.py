"""``voyagent demo`` on a fresh database: total time of the command (target < 60 s on a 2-core machine).

    .venv/bin/python -m bench.demo_bench [--runs 3]

Each run creates a scratch database, runs ``python -m voyagent demo`` against it (the real Argon2 cost, the
command's own migrations check, its output), and drops the database. Prints the per-stage lines of the last run
and a markdown row per run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import tempfile
import time

from bench.harness import SECRET, scratch_database

TARGET_SECONDS = 60.0


def run_once(dsn: str) -> tuple[float, str]:
    with tempfile.TemporaryDirectory(prefix="voyagent-demo-bench-") as data_dir:
        env = {**os.environ, "VOYAGENT_DB_URL": dsn, "VOYAGENT_AUTH_SECRET": SECRET, "VOYAGENT_DATA_DIR": data_dir,
               "VOYAGENT_LOG_LEVEL": "WARNING"}
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "voyagent", "demo"], env=env, capture_output=True, text=True,
                              check=True)
        return time.perf_counter() - started, done.stdout + done.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rows = []
    output = ""
    for _ in range(args.runs):
        with scratch_database() as dsn:
            seconds, output = run_once(dsn)
        rows.append(seconds)
    print("\n".join(line for line in output.splitlines() if line.startswith("demo")))
    print(f"\n`voyagent demo` on a fresh database — {dt.date.today()}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.2f}\n")
    print("| Run | Total | Target | |")
    print("| --- | --- | --- | --- |")
    for index, seconds in enumerate(rows, 1):
        verdict = "met" if seconds < TARGET_SECONDS else "missed"
        print(f"| {index} | {seconds:.1f} s | < {TARGET_SECONDS:.0f} s | {verdict} |")


if __name__ == "__main__":
    main()
