"""A load driver usable against any running server: wrk when installed (Debian's), else aiohttp.

    python bench/load.py http://127.0.0.1:8000/health -c 32 -d 10 [-H 'Authorization: Bearer …']
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import statistics
import subprocess
import time
from dataclasses import dataclass

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


@dataclass
class Result:
    """Requests per second and latency percentiles in milliseconds."""

    url: str
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int

    def row(self) -> str:
        return f"{self.rps:9.0f} rps  p50 {self.p50_ms:7.2f} ms  p99 {self.p99_ms:7.2f} ms  non-2xx {self.non_2xx}"


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip())
    if not match:
        return float("nan")
    return float(match.group(1)) * _UNITS[match.group(2)]


def run_wrk(url: str, connections: int, seconds: float, headers: dict[str, str], threads: int = 1,
            script: str | None = None) -> Result:
    """One wrk run; ``script``: a Lua file whose ``request()`` chooses each request (``url`` gives host and port)."""
    args = ["wrk", "--latency", f"-t{threads}", f"-c{connections}", f"-d{int(seconds)}s"]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    if script is not None:
        args += ["-s", script]
    output = subprocess.run(args + [url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s*50%\s+(\S+)", output, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s*99%\s+(\S+)", output, re.M).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    non2xx_match = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return Result(url, rps, p50, p99, total, int(non2xx_match.group(1)) if non2xx_match else 0)


async def _run_python(url: str, connections: int, seconds: float, headers: dict[str, str]) -> Result:
    import aiohttp

    latencies: list[float] = []
    non_2xx = 0
    deadline = time.perf_counter() + seconds

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal non_2xx
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            async with session.get(url, headers=headers) as response:
                await response.read()
                if response.status >= 300:
                    non_2xx += 1
            latencies.append((time.perf_counter() - started) * 1000)

    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:
        began = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(connections)))
        elapsed = time.perf_counter() - began
    latencies.sort()
    quantiles = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [latencies[0]] * 99
    return Result(url, len(latencies) / elapsed, quantiles[49], quantiles[98], len(latencies), non_2xx)


def measure(url: str, connections: int = 32, seconds: float = 10, headers: dict[str, str] | None = None) -> Result:
    """One bounded measurement (wrk if available)."""
    headers = headers or {}
    if shutil.which("wrk"):
        return run_wrk(url, connections, seconds, headers)
    return asyncio.run(_run_python(url, connections, seconds, headers))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("-c", "--connections", type=int, default=32)
    parser.add_argument("-d", "--duration", type=float, default=10)
    parser.add_argument("-H", "--header", action="append", default=[])
    args = parser.parse_args()
    headers = dict(h.split(":", 1) for h in args.header)
    print(measure(args.url, args.connections, args.duration, {k.strip(): v.strip() for k, v in headers.items()}).row())


if __name__ == "__main__":
    main()
