"""One way to run the server for tests: a real uvicorn process on a free loopback port, on a
given database, logging to a file. The live tests (``start_servers``), the browser tests and
the screenshot script all start it here."""

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx
import pytest

from tests.conftest import TEST_PEPPER

START_TIMEOUT = 20.0
STOP_TIMEOUT = 15.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(database_url: str, **settings: str) -> dict[str, str]:
    """The environment of a child process: ours without CRAFTDESK_*, then the test's own
    (``settings`` adds more, e.g. ``CRAFTDESK_CORS_ORIGINS``)."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("CRAFTDESK_")}
    env.update(
        CRAFTDESK_DATABASE_URL=database_url,
        CRAFTDESK_KEY_PEPPER=TEST_PEPPER,
        PYTHONUNBUFFERED="1",
        **settings,
    )
    return env


@dataclass
class LiveServer:
    process: subprocess.Popen[bytes]
    url: str
    log_path: Path
    _log: IO[bytes] = field(repr=False)

    @property
    def exited(self) -> bool:
        return self.process.poll() is not None

    @property
    def stopped(self) -> bool:
        """Waited for (``wait`` or ``stop``)."""
        return self._log.closed

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_healthy(self, deadline: float) -> None:
        """Until it answers ``/healthz``; fails the test if it exits or ``deadline`` passes."""
        while True:
            if self.exited:
                pytest.fail(f"server {self.url} exited at start-up:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"{self.url} not healthy in {START_TIMEOUT} s:\n{self.log()}")
            time.sleep(0.05)  # polling interval, not a timing assumption

    def terminate(self) -> None:
        """Ask for a graceful shutdown (what uvicorn gets from a supervisor)."""
        if not self.exited:
            self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout: float = STOP_TIMEOUT) -> int:
        """Its exit status; a process still up after ``timeout`` is killed and fails the test."""
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"{self.url} did not stop within {timeout} s of SIGTERM:\n{self.log()}")
        finally:
            self._log.close()

    def stop(self) -> int:
        self.terminate()
        return self.wait()


def spawn_server(env: dict[str, str], workdir: Path) -> LiveServer:
    """Start one uvicorn process on a free port; it logs to a file in ``workdir``."""
    port = free_port()
    log_path = workdir / f"uvicorn-{port}.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [
            sys.executable, "-m", "uvicorn", "craftdesk.app:create_app",
            "--factory", "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
            "--no-server-header", "--no-proxy-headers",
        ],
        env=env,
        cwd=workdir,  # no stray .env
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return LiveServer(process, f"http://127.0.0.1:{port}", log_path, log)


def start_server(env: dict[str, str], workdir: Path) -> LiveServer:
    """``spawn_server``, returning once it answers ``/healthz``."""
    server = spawn_server(env, workdir)
    try:
        server.wait_healthy(time.monotonic() + START_TIMEOUT)
    except BaseException:
        server.stop()
        raise
    return server
