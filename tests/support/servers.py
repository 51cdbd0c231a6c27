"""Private PostgreSQL and Redis servers that a test may stop and start at will.

The shared servers (PostgreSQL on 5432, Redis on 6379) are used by other test runs and
are never stopped; these live in a temporary directory and are removed afterwards.
They listen on a unix socket in that directory only (TCP off): no port is reserved
and handed over, so two test processes can never race for one. PostgreSQL refuses to
run as root, so as root its commands run as the ``postgres`` user (``runuser``), in a
directory that user owns.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


class Unavailable(RuntimeError):
    """The server's binaries (or the user to run them) are not on this machine."""


def _version(path: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", path))


def _socket_dir(prefix: str) -> Path:
    # Under /tmp, not pytest's tmp_path: a unix socket path is limited to ~107 bytes.
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


class PrivatePostgres:
    """``initdb`` + ``pg_ctl`` in a temporary directory; ``url`` is a superuser URL."""

    def __init__(self) -> None:
        bins = sorted(
            (d for d in glob.glob("/usr/lib/postgresql/*/bin") if os.path.exists(f"{d}/initdb")),
            key=_version,
        )
        if not bins:
            raise Unavailable("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
        self.bin = bins[-1]
        self.prefix: list[str] = []
        owner = None
        if os.geteuid() == 0:
            runuser = shutil.which("runuser")
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                owner = None
            if runuser is None or owner is None:
                raise Unavailable("running as root without runuser or a 'postgres' user")
            self.prefix = [runuser, "-u", "postgres", "--"]
        self.dir = _socket_dir("fa-private-pg-")
        if owner is not None:
            os.chown(self.dir, owner.pw_uid, owner.pw_gid)
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"
        # libpq reads a host that starts with "/" as the directory of the server's socket.
        self.url = f"postgresql+psycopg://postgres@/postgres?host={self.dir}"
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8")

    def _run(self, tool: str, *args: str, timeout: float = 120) -> None:
        result = subprocess.run(
            [*self.prefix, f"{self.bin}/{tool}", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.dir,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{tool} failed: {result.stdout}\n{result.stderr}")

    def start(self) -> PrivatePostgres:
        # listen_addresses='' turns TCP off; the socket is <dir>/.s.PGSQL.5432.
        options = (
            f"-c listen_addresses='' -c unix_socket_directories={self.dir} "
            "-c max_connections=40 -c shared_buffers=16MB"
        )
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.log), "-w", "start")
        return self

    def stop(self, mode: str = "fast") -> None:
        """``pg_ctl stop -m fast`` (clean) or ``-m immediate`` (a crash: recovery at start)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def remove(self) -> None:
        if self.running():
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


class PrivateRedis:
    """A ``redis-server`` without automatic saves, started and stopped by this process.

    ``url`` is for redis-py (and RQ); ``limits_url`` is the same server for the
    ``limits`` library (``ANALYTICS_RATE_LIMIT_STORAGE``), which spells unix sockets
    ``redis+unix://``. Data survives a restart only if :meth:`stop` was asked to save.
    """

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise Unavailable("redis-server is not installed")
        self.binary = binary
        self.dir = _socket_dir("fa-private-redis-")
        self.socket = self.dir / "redis.sock"
        self.url = f"unix://{self.socket}?db=0"
        self.limits_url = f"redis+unix://{self.socket}"
        self.proc: subprocess.Popen[bytes] | None = None

    def _command(self, command: bytes) -> bytes:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(5)
            sock.connect(str(self.socket))
            sock.sendall(command)
            return sock.recv(64)

    def _ping(self) -> bool:
        try:
            return self._command(b"PING\r\n").startswith(b"+PONG")
        except OSError:
            return False

    def start(self) -> PrivateRedis:
        """Start (again): with the data of ``dump.rdb`` if the last stop saved it."""
        self.proc = subprocess.Popen(
            [self.binary, "--port", "0", "--unixsocket", str(self.socket),
             "--unixsocketperm", "700", "--save", "", "--appendonly", "no",
             "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while not self._ping():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the private redis-server did not start on {self.socket}")
            time.sleep(0.02)
        return self

    def stop(self, *, save: bool = False) -> None:
        """Shut down; ``save`` writes dump.rdb first (what a persistent Redis keeps)."""
        if self.proc is None:
            return
        # The connection closes under SHUTDOWN: no answer to read.
        with contextlib.suppress(OSError):
            self._command(b"SHUTDOWN SAVE\r\n" if save else b"SHUTDOWN NOSAVE\r\n")
        proc, self.proc = self.proc, None
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)
            raise
        if code != 0:
            raise RuntimeError(f"the private redis-server exited with {code} at shutdown")

    def remove(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=30)
            self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)
