"""A private PostgreSQL server from Debian's packages: its own data directory, port and socket,
started and stopped by the caller (tests), never the machine's own cluster.

PostgreSQL refuses to run as root, so as root it runs as the package's ``postgres`` user, in a
directory outside pytest's private temporary tree (which that user could not enter)."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path


def bin_dir() -> Path | None:
    """The newest installed server's binaries (``/usr/lib/postgresql/<major>/bin``)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=_major)
    return Path(found[-1]).parent if found else None


def _major(path: str) -> int:
    try:
        return int(Path(path).parent.parent.name)
    except ValueError:
        return 0


@dataclass
class PrivatePostgres:
    """``user`` is the superuser Temporal connects as (it creates its own databases)."""

    port: int
    user: str = "temporal"
    password: str = "temporal-test"
    host: str = "127.0.0.1"
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="vend-pg-")))
    process: subprocess.Popen[bytes] | None = None

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "postgres.log"

    def _as_owner(self) -> list[str]:
        """Run as ``postgres`` when we are root (initdb and the server refuse root)."""
        if os.geteuid() != 0:
            return []
        return ["runuser", "-u", "postgres", "--"]

    def start(self) -> PrivatePostgres:
        binaries = bin_dir()
        if binaries is None:
            raise RuntimeError("PostgreSQL's server is not installed (Debian: postgresql)")
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        if os.geteuid() == 0:
            os.chown(pwfile, pwd.getpwnam("postgres").pw_uid, -1)
        pwfile.chmod(0o600)
        subprocess.run(
            [
                *self._as_owner(),
                str(binaries / "initdb"),
                "-D",
                str(self.data),
                "-U",
                self.user,
                f"--pwfile={pwfile}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--no-sync",  # a throwaway database: durability against power cuts buys nothing
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        pwfile.unlink()
        with self.log.open("ab") as out:
            if os.geteuid() == 0:
                os.chown(self.log, pwd.getpwnam("postgres").pw_uid, -1)
            self.process = subprocess.Popen(
                [
                    *self._as_owner(),
                    str(binaries / "postgres"),
                    "-D",
                    str(self.data),
                    "-p",
                    str(self.port),
                    "-k",
                    str(self.root),
                    "-c",
                    f"listen_addresses={self.host}",
                    "-c",
                    "max_connections=400",  # every node's pools (20 + 10 each) and the tools'
                    "-c",
                    "fsync=off",
                    "-c",
                    "synchronous_commit=off",
                    "-c",
                    "shared_buffers=128MB",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        ready = binaries / "pg_isready"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"PostgreSQL exited at start: {self.log.read_text()[-2000:]}")
            probe = [str(ready), "-h", self.host, "-p", str(self.port), "-q"]
            if subprocess.run(probe, check=False, timeout=10).returncode == 0:
                return self
            time.sleep(0.2)
        raise RuntimeError("PostgreSQL did not accept connections within 60 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # SIGTERM: smart shutdown
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        shutil.rmtree(self.root, ignore_errors=True)
