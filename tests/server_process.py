"""Run the real ``voyagent serve`` in a subprocess for end-to-end tests (and stop it with SIGTERM)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (signal 0 checks without sending anything)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class ServerProcess:
    """``python -m voyagent serve`` with the given environment, waited on until /health answers.

    With ``output`` the server writes stdout and stderr to that file, which :meth:`wait_for_output` reads
    while the server runs; ``preexec_fn`` runs in the child before it starts (e.g. to lower a limit).
    ``wrapper`` runs the command through another one (``ip netns exec <host>``), and ``address`` is where the
    server is then reached.
    """

    def __init__(self, env: dict[str, str], args: list[str] | None = None, cwd: Path | None = None,
                 output: Path | None = None, preexec_fn: Callable[[], None] | None = None,
                 wrapper: list[str] | None = None, address: str = "127.0.0.1") -> None:
        self.port = int(env.get("VOYAGENT_PORT") or free_port())
        self.env = {**os.environ, **env, "VOYAGENT_PORT": str(self.port)}
        self.args = args or []
        self.cwd = cwd
        self.output = output
        self.preexec_fn = preexec_fn
        self.wrapper = wrapper or []
        self.process: subprocess.Popen[str] | None = None
        base = self.env.get("VOYAGENT_BASE_PATH", "")
        self.url = f"http://{address}:{self.port}{base}"

    def start(self, timeout: float = 60.0) -> "ServerProcess":
        sink = subprocess.PIPE if self.output is None else self.output.open("w")
        try:
            self.process = subprocess.Popen([*self.wrapper, sys.executable, "-m", "voyagent", "serve", *self.args],
                                            env=self.env,
                                            cwd=self.cwd, stdout=sink, stderr=subprocess.STDOUT, text=True,
                                            preexec_fn=self.preexec_fn)
        finally:
            if self.output is not None:
                sink.close()  # type: ignore[union-attr]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.read_output()}")
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
        return self.process.returncode, output if self.output is None else self.output.read_text()

    def read_output(self) -> str:
        """Everything the server wrote so far (with ``output``), or what is left on its pipe once it exited."""
        if self.output is not None:
            return self.output.read_text(errors="replace")
        assert self.process is not None and self.process.stdout is not None
        return self.process.stdout.read()

    def wait_for_output(self, pattern: str, count: int = 1, timeout: float = 60.0) -> list[re.Match[str]]:
        """Block until the output holds ``count`` matches of the regex ``pattern``; return them all."""
        assert self.output is not None, "start the server with output=<file> to watch its log"
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            matches = list(regex.finditer(self.read_output()))
            if len(matches) >= count:
                return matches
            if time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} x{count} not in the server output:\n{self.read_output()[-4000:]}")
            time.sleep(0.05)

    def __enter__(self) -> "ServerProcess":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.stop()
