"""Run the real ``voyagent serve`` in a subprocess for end-to-end tests (and stop it with SIGTERM)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """``python -m voyagent serve`` with the given environment, waited on until /health answers."""

    def __init__(self, env: dict[str, str], args: list[str] | None = None, cwd: Path | None = None) -> None:
        self.port = int(env.get("VOYAGENT_PORT") or free_port())
        self.env = {**os.environ, **env, "VOYAGENT_PORT": str(self.port)}
        self.args = args or []
        self.cwd = cwd
        self.process: subprocess.Popen[str] | None = None
        base = self.env.get("VOYAGENT_BASE_PATH", "")
        self.url = f"http://127.0.0.1:{self.port}{base}"

    def start(self, timeout: float = 60.0) -> "ServerProcess":
        self.process = subprocess.Popen([sys.executable, "-m", "voyagent", "serve", *self.args], env=self.env,
                                        cwd=self.cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.process.stdout.read()}")  # type: ignore[union-attr]
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=1) as response:
                    if response.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("server did not answer /health in time")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> tuple[int, str]:
        """Signal the server, wait for it, return (exit code, its output)."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            output, _ = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            output, _ = self.process.communicate()
        return self.process.returncode, output

    def __enter__(self) -> "ServerProcess":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.stop()
