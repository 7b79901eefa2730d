"""Foundation benchmark: GET /health and GET /health/db, one worker, 32 connections, against the ceiling.

    .venv/bin/python -m bench.foundation_bench [--seconds 10] [--rounds 3]
Targets (issue 3): /health ≥ 0.6 of the ceiling, /health/db ≥ 0.7.
"""

from __future__ import annotations

import argparse

from bench.harness import alternate, ceiling_server, report, scratch_database, voyagent_server


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    with scratch_database() as dsn, voyagent_server(dsn) as ours, ceiling_server(dsn) as ceiling:
        for path, target in (("/health", 0.6), ("/health/db", 0.7)):
            mine, bare = alternate(ours + path, ceiling + path, args.rounds, args.seconds, args.connections)
            print(report(f"GET {path} ({args.connections} connections, 1 worker)", mine, bare, target), flush=True)


if __name__ == "__main__":
    main()
