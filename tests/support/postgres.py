"""A throwaway PostgreSQL cluster for the tests and benchmarks: Debian's server binaries,
no mocks.

`running_cluster()` starts one (`initdb` + `pg_ctl` from /usr/lib/postgresql/*/bin) in a temp
dir, listening only on a Unix socket in that dir, owned by the non-root `postgres` user when
run as root (the server refuses to run as root), and stops and deletes it on exit; the tests
(one cluster per session, `pg_cluster`) and `bench/store_backends.py` both use it. Each test
gets a database of its own (`pg_database_url`). Without the binaries, the tests that need the
server are skipped with the reason (scripts/install-tools.sh installs them), except under
CI=true (.ci/run), where that is a failure.

`Where` is a monitor database as settings name it (`open_store(where)` opens it) and as the
monitor's environment says it; the fixture `backend_where` makes a test run on both backends.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

_counter = itertools.count()


BACKENDS = ["sqlite", "postgres"]


def _bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent if found else None


def _as_owner(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


class Cluster:
    def __init__(self, bindir: Path, root: Path) -> None:
        self.bindir = bindir
        self.root = root
        self.data = root / "data"
        self.socket = root / "run"
        self.user = "postgres"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql:///{database}?host={self.socket}&user={self.user}"

    def start(self) -> None:
        self.socket.mkdir()
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
            shutil.chown(self.socket, "postgres", "postgres")
        else:
            self.user = os.environ.get("USER", "postgres")
        subprocess.run(
            _as_owner(
                [
                    *(str(self.bindir / "initdb"), "-D", str(self.data), "-U", self.user),
                    *("--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C"),
                ]
            ),
            check=True,
            capture_output=True,
        )
        self.resume()

    def resume(self) -> None:
        """Start the server on the existing data directory (after `stop`)."""
        options = f"-c listen_addresses='' -c unix_socket_directories={self.socket}"
        subprocess.run(
            _as_owner(
                [
                    *(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-w", "-t", "60"),
                    *("-l", str(self.root / "server.log"), "-o", options, "start"),
                ]
            ),
            check=True,
            capture_output=True,
        )

    def stop(self) -> None:
        subprocess.run(
            _as_owner([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "stop"]),
            check=False,
            capture_output=True,
        )

    def create_database(self) -> str:
        import psycopg

        name = f"t{os.getpid()}_{next(_counter)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


class NoServerBinariesError(RuntimeError):
    """PostgreSQL's server binaries are not installed."""


@contextlib.contextmanager
def running_cluster() -> Iterator[Cluster]:
    """A started throwaway cluster in a temp dir; stopped and deleted on exit."""
    bindir = _bindir()
    if bindir is None:
        raise NoServerBinariesError(
            "PostgreSQL server binaries not installed (scripts/install-tools.sh)"
        )
    root = Path(tempfile.mkdtemp(prefix="modelguard-pg-"))
    cluster = Cluster(bindir, root)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    try:
        with running_cluster() as cluster:
            yield cluster
    except NoServerBinariesError as missing:
        if os.environ.get("CI"):  # .ci/run installs them: their absence there is a failure
            pytest.fail(str(missing))
        pytest.skip(str(missing))


@pytest.fixture
def pg_database_url(pg_cluster: Cluster) -> str:
    """A fresh, empty database on the session's cluster."""
    return pg_cluster.create_database()


@dataclass(frozen=True)
class Where:
    """A monitor database as the settings name it (`open_store(where)`), and the monitor's
    environment that says so (`env()`: MONITOR_DATABASE_URL; the SQLite file is db_path)."""

    db_path: Path
    database_url: str | None = None

    @property
    def backend(self) -> str:
        return "postgres" if self.database_url else "sqlite"

    def env(self) -> dict[str, str]:
        return {"MONITOR_DATABASE_URL": self.database_url} if self.database_url else {}


@pytest.fixture(params=BACKENDS, name="backend_where")
def backend_where_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> Where:
    """`backend_where`: a fresh database on each backend, a SQLite file or a database on the
    session's PostgreSQL cluster (the test runs twice). Import `backend_where_fixture` with
    `pg_cluster` and `pg_database_url` to use it."""
    url = request.getfixturevalue("pg_database_url") if request.param == "postgres" else None
    return Where(tmp_path / "monitor.db", url)
