"""Embedded servers: data survives a restart, nothing outlives a killed launcher, stale servers are replaced."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import psutil
import pytest

from service import embedded
from service.embedded import EmbeddedServer, find_free_port, server_processes
from tests.processes import alive, wait_for

ROOT = Path(__file__).resolve().parents[2]
ACCESS_KEY, SECRET_KEY = "embedded-test", "embedded-test-secret"


def listening_addresses(server: EmbeddedServer) -> set[str]:
    processes = [psutil.Process(server.pid), *psutil.Process(server.pid).children(recursive=True)]
    return {
        conn.laddr.ip
        for process in processes
        for conn in process.net_connections(kind="inet")
        if conn.status == psutil.CONN_LISTEN
    }


def redis_command(port: int, *words: str) -> bytes:
    request = f"*{len(words)}\r\n" + "".join(f"${len(w)}\r\n{w}\r\n" for w in words)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request.encode())
        return sock.recv(1024)


def psql(server: EmbeddedServer, sql: str) -> str:
    command = [str(embedded.postgres_bin_dir() / "psql"), server.url, "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql]
    return subprocess.run(command, capture_output=True, text=True, check=True, timeout=30).stdout.strip()


def test_postgres_and_valkey_keep_their_data_across_a_restart(tmp_path: Path) -> None:
    postgres = embedded.start_postgres(tmp_path, find_free_port())
    valkey = embedded.start_valkey(tmp_path, find_free_port())
    try:
        assert listening_addresses(postgres) == {"127.0.0.1"}
        assert listening_addresses(valkey) == {"127.0.0.1"}
        if os.geteuid() == 0:  # PostgreSQL refuses root: it runs as an unprivileged user
            assert psutil.Process(postgres.pid).username() == embedded.POSTGRES_OS_USER
        psql(postgres, "CREATE TABLE kept (value text); INSERT INTO kept VALUES ('still here')")
        assert redis_command(valkey.port, "SET", "kept", "still here") == b"+OK\r\n"
        assert (tmp_path / "run" / "postgres.pid").exists()
    finally:
        valkey.stop()
        postgres.stop()
    assert not (tmp_path / "run" / "postgres.pid").exists()
    assert alive({postgres.pid, valkey.pid}) == set()

    postgres = embedded.start_postgres(tmp_path, find_free_port())
    valkey = embedded.start_valkey(tmp_path, find_free_port())
    try:
        assert psql(postgres, "SELECT value FROM kept") == "still here"
        assert redis_command(valkey.port, "GET", "kept") == b"$10\r\nstill here\r\n"
    finally:
        valkey.stop()
        postgres.stop()


def test_seaweedfs_listens_on_localhost_and_checks_signatures(tmp_path: Path) -> None:
    import boto3
    from botocore.exceptions import ClientError

    with embedded.start_seaweedfs(tmp_path, find_free_port(), ACCESS_KEY, SECRET_KEY) as seaweedfs:
        assert listening_addresses(seaweedfs) == {"127.0.0.1"}

        def client(secret: str):  # type: ignore[no-untyped-def]
            return boto3.client(
                "s3",
                endpoint_url=seaweedfs.url,
                aws_access_key_id=ACCESS_KEY,
                aws_secret_access_key=secret,
                region_name="us-east-1",
            )

        client(SECRET_KEY).create_bucket(Bucket="embedded-test")
        with pytest.raises(ClientError) as refused:
            client("not-the-secret").list_buckets()
        assert refused.value.response["Error"]["Code"] == "SignatureDoesNotMatch"


LAUNCHER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from service import embedded

    data_dir = Path(sys.argv[1])
    servers = [
        embedded.start_postgres(data_dir, embedded.find_free_port(), ephemeral=True),
        embedded.start_valkey(data_dir, embedded.find_free_port(), ephemeral=True),
        embedded.start_seaweedfs(data_dir, embedded.find_free_port(), "k" * 8, "s" * 16),
    ]
    print(json.dumps([server.pid for server in servers]), flush=True)
    time.sleep(3600)
    """
)


def test_servers_die_with_a_killed_launcher_and_the_next_start_works(tmp_path: Path) -> None:
    launcher = subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, str(tmp_path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert launcher.stdout is not None
        server_pids = set(json.loads(launcher.stdout.readline()))
        every_pid = {process.pid for process in server_processes(tmp_path)}
        assert server_pids <= every_pid  # postgres has helper processes too
    finally:
        launcher.send_signal(signal.SIGKILL)
        launcher.wait()

    wait_for(lambda: not alive(every_pid), 15, "the servers of a killed launcher to exit")
    assert not [p for p in server_processes(tmp_path) if p.status() != psutil.STATUS_ZOMBIE]

    with embedded.start_valkey(tmp_path, find_free_port(), ephemeral=True) as valkey:
        assert redis_command(valkey.port, "PING") == b"+PONG\r\n"
    with embedded.start_postgres(tmp_path, find_free_port(), ephemeral=True) as postgres:
        assert psql(postgres, "SELECT 1") == "1"
    # weed's gRPC sockets in /tmp outlive a SIGKILL; the next start removes them.
    killed_sockets = [
        Path(p) for p in json.loads(embedded.pid_file_path(tmp_path, "seaweedfs").read_text())["leftover_files"]
    ]
    assert [path for path in killed_sockets if path.exists()]  # left behind by the kill
    with embedded.start_seaweedfs(tmp_path, find_free_port(), "k" * 8, "s" * 16):
        assert [path for path in killed_sockets if path.exists()] == []


def test_a_stale_server_from_an_earlier_launcher_is_killed_at_start(tmp_path: Path) -> None:
    server_dir = tmp_path / "valkey"
    server_dir.mkdir()
    # A valkey started without PR_SET_PDEATHSIG, as if its launcher had died without taking it along.
    stale = subprocess.Popen(
        [str(embedded.valkey_binary()), "--bind", "127.0.0.1", "--port", str(find_free_port()), "--save", ""],
        cwd=server_dir,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        pid_file = embedded.pid_file_path(tmp_path, "valkey")
        pid_file.parent.mkdir()
        pid_file.write_text(json.dumps({"pid": stale.pid, "server": "valkey"}))

        with embedded.start_valkey(tmp_path, find_free_port(), ephemeral=True) as valkey:
            stale.wait(timeout=10)  # killed (and already reaped by the killer: we are its parent here)
            assert not alive({stale.pid})
            assert json.loads(pid_file.read_text())["pid"] == valkey.pid
    finally:
        if stale.poll() is None:
            stale.kill()
            stale.wait()


def test_only_dead_sockets_listed_as_leftovers_are_removed(tmp_path: Path) -> None:
    live, dead, plain = tmp_path / "live.sock", tmp_path / "dead.sock", tmp_path / "plain.txt"
    plain.write_text("not a socket")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as closed:
        closed.bind(str(dead))  # bound, never listening, then closed: the file stays, nobody answers
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listening:
        listening.bind(str(live))
        listening.listen()
        pid_file = embedded.pid_file_path(tmp_path, "seaweedfs")
        pid_file.parent.mkdir()
        leftovers = [str(live), str(dead), str(plain), str(tmp_path / "missing.sock")]
        pid_file.write_text(json.dumps({"pid": 2**22 + 1, "server": "seaweedfs", "leftover_files": leftovers}))

        embedded.kill_stale_server(tmp_path, "seaweedfs")

        assert (live.exists(), dead.exists(), plain.exists()) == (True, False, True)
        assert not pid_file.exists()


def test_an_unrelated_process_named_in_a_pid_file_is_left_alone(tmp_path: Path) -> None:
    pid_file = embedded.pid_file_path(tmp_path, "valkey")
    pid_file.parent.mkdir(parents=True)
    pid_file.write_text(json.dumps({"pid": os.getpid(), "server": "valkey"}))  # a reused PID: ours

    with embedded.start_valkey(tmp_path, find_free_port(), ephemeral=True) as valkey:
        assert valkey.is_running()
    assert psutil.Process(os.getpid()).is_running()


def test_seaweedfs_retries_when_an_internal_port_is_taken_before_it_binds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_find_free_ports = embedded.find_free_ports
    calls: list[list[int]] = []
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]

        def first_answer_is_taken(count: int, exclude: object = ()) -> list[int]:
            ports = real_find_free_ports(count, exclude={taken})
            if not calls:
                ports[0] = taken  # the master port: someone else got it first
            calls.append(ports)
            return ports

        monkeypatch.setattr(embedded, "find_free_ports", first_answer_is_taken)
        with embedded.start_seaweedfs(tmp_path, find_free_port(), ACCESS_KEY, SECRET_KEY) as seaweedfs:
            assert seaweedfs.is_running()
            assert len(calls) == 2
            assert taken not in seaweedfs.extra_ports.values()


def test_seaweedfs_credentials_are_random_private_and_kept_per_data_dir(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    credentials = embedded.seaweedfs_credentials(first)
    saved = first / embedded.S3_CREDENTIALS_FILE
    assert saved.stat().st_mode & 0o777 == 0o600
    assert embedded.seaweedfs_credentials(first) == credentials  # kept
    assert embedded.seaweedfs_credentials(second) != credentials  # random per data dir
    assert "agensium-secret" not in credentials and len(credentials[1]) >= 43

    saved.chmod(0o644)  # opened up by hand: made private again, the same credentials
    assert embedded.seaweedfs_credentials(first) == credentials
    assert saved.stat().st_mode & 0o777 == 0o600
    assert [path.name for path in first.iterdir()] == [embedded.S3_CREDENTIALS_FILE]  # nothing left aside
