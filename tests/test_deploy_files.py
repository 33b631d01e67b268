"""The deployment files validate: docker-compose.yml with Debian's docker-compose (1.29), the Dockerfile's
basics; the secrets have no default anywhere, so the public example .env is refused until each is set, and
`make env` sets them to fresh random values."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
SERVICES = {"postgres", "valkey", "seaweedfs", "migrate", "api", "worker"}
# What docker-compose.yml requires (`${NAME:?...}`): no default anyone could look up.
REQUIRED_SECRETS = {"AGENSIUM_SECRET_KEY", "AWS_SECRET_ACCESS_KEY", "POSTGRES_PASSWORD"}
GENERATED = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32)


def _compose_config(*extra: str, env_file: Path) -> subprocess.CompletedProcess[str]:
    """`docker-compose config` with `env_file` as its .env (not a developer's own .env) and none of the
    variables in this process's environment."""
    docker_compose = shutil.which("docker-compose")
    if docker_compose is None:
        pytest.skip("docker-compose is not installed (apt-get install docker-compose) so it cannot validate")
    variables = set(_env_file(ENV_EXAMPLE)) | REQUIRED_SECRETS
    return subprocess.run(
        [docker_compose, "--env-file", str(env_file), "-f", str(COMPOSE_FILE), "config", *extra],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={name: value for name, value in os.environ.items() if name not in variables},
    )


def _env_file(path: Path) -> dict[str, str]:
    lines = path.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))


def _write_env(path: Path, values: dict[str, str]) -> Path:
    path.write_text("".join(f"{name}={value}\n" for name, value in values.items()))
    return path


def _configured_env(directory: Path) -> Path:
    """The example .env with a fresh secret in each empty value, as an operator fills it in."""
    values = {name: value or secrets.token_urlsafe(32) for name, value in _env_file(ENV_EXAMPLE).items()}
    return _write_env(directory / "configured.env", values)


def _make_env(directory: Path) -> subprocess.CompletedProcess[str]:
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    return subprocess.run(
        [make, "--no-print-directory", "env"], capture_output=True, text=True, timeout=60, cwd=directory
    )


def test_docker_compose_config_is_valid(tmp_path: Path) -> None:
    result = _compose_config("-q", env_file=_configured_env(tmp_path))
    assert result.returncode == 0, result.stderr


def test_docker_compose_has_every_service(tmp_path: Path) -> None:
    result = _compose_config("--services", env_file=_configured_env(tmp_path))
    assert result.returncode == 0, result.stderr
    assert set(result.stdout.split()) == SERVICES


def test_workers_can_scale_and_wait_for_migrations() -> None:
    services = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    worker = services["worker"]
    assert "container_name" not in worker and "ports" not in worker
    for name in ("api", "worker"):
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert services["migrate"]["restart"] == "no"
    assert services["api"]["environment"]["S3_PUBLIC_ENDPOINT_URL"]


def test_dockerfile_runs_as_non_root() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "FROM python:3.11-slim" in dockerfile
    assert "\nUSER agensium" in dockerfile
    assert "pip install" in dockerfile


def test_the_secrets_have_no_public_value_anywhere() -> None:
    """Compose requires each secret and has no fallback for it, and the example (which the README starts
    operators from) leaves each empty, saying how to generate it."""
    compose = COMPOSE_FILE.read_text()
    assert set(re.findall(r"\$\{(\w+):\?", compose)) == REQUIRED_SECRETS
    for name in REQUIRED_SECRETS:
        assert not re.search(rf"\$\{{{name}:?-", compose), f"{name} has a default in docker-compose.yml"
    example = _env_file(ENV_EXAMPLE)
    assert {name: example[name] for name in REQUIRED_SECRETS} == dict.fromkeys(REQUIRED_SECRETS, "")
    assert "secrets.token_urlsafe(32)" in ENV_EXAMPLE.read_text()


def test_compose_refuses_the_example_env_until_every_secret_is_set(tmp_path: Path) -> None:
    refused = _compose_config("-q", env_file=ENV_EXAMPLE)
    assert refused.returncode != 0, refused.stdout
    assert any(f"set {name} in .env" in refused.stderr for name in REQUIRED_SECRETS), refused.stderr

    configured = _env_file(_configured_env(tmp_path))
    for missing in REQUIRED_SECRETS:  # the others set: the one left empty, as in the example, is named
        partial_env = _write_env(tmp_path / f"without-{missing}.env", {**configured, missing: ""})
        refused = _compose_config("-q", env_file=partial_env)
        assert refused.returncode != 0 and f"set {missing} in .env" in refused.stderr, refused.stderr


def test_compose_passes_the_configured_secrets_to_every_service(tmp_path: Path) -> None:
    env_file = _configured_env(tmp_path)
    values = _env_file(env_file)
    result = _compose_config(env_file=env_file)
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    for name in ("migrate", "api", "worker"):
        environment = services[name]["environment"]
        assert environment["AGENSIUM_SECRET_KEY"] == values["AGENSIUM_SECRET_KEY"]
        assert environment["AWS_SECRET_ACCESS_KEY"] == values["AWS_SECRET_ACCESS_KEY"]
        password = values["POSTGRES_PASSWORD"]
        assert environment["DATABASE_URL"] == f"postgresql://agensium:{password}@postgres:5432/agensium"
    assert services["seaweedfs"]["environment"]["AWS_SECRET_ACCESS_KEY"] == values["AWS_SECRET_ACCESS_KEY"]
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"] == values["POSTGRES_PASSWORD"]


def test_make_env_writes_fresh_private_secrets_and_never_overwrites(tmp_path: Path) -> None:
    example = _env_file(ENV_EXAMPLE)
    generated: list[dict[str, str]] = []
    for checkout in ("a", "b"):  # two copies of the checkout: each gets secrets of its own
        directory = tmp_path / checkout
        directory.mkdir()
        shutil.copy(ROOT / "Makefile", directory)
        shutil.copy(ENV_EXAMPLE, directory)
        result = _make_env(directory)
        assert result.returncode == 0, result.stderr
        env_file = directory / ".env"
        assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
        assert [path.name for path in directory.iterdir() if path.name.startswith(".env.")] == [".env.example"]
        values = _env_file(env_file)
        assert {name: value for name, value in values.items() if name not in REQUIRED_SECRETS} == {
            name: value for name, value in example.items() if name not in REQUIRED_SECRETS
        }
        for name in REQUIRED_SECRETS:
            assert GENERATED.fullmatch(values[name]), (name, values[name])
        generated.append({name: values[name] for name in REQUIRED_SECRETS})

        before = env_file.read_text()
        again = _make_env(directory)
        assert again.returncode == 0, again.stderr
        assert ".env exists" in again.stdout
        assert env_file.read_text() == before

    every_secret = [value for secrets_of_one in generated for value in secrets_of_one.values()]
    assert len(set(every_secret)) == len(every_secret)


def test_compose_accepts_what_make_env_writes(tmp_path: Path) -> None:
    shutil.copy(ROOT / "Makefile", tmp_path)
    shutil.copy(ENV_EXAMPLE, tmp_path)
    made = _make_env(tmp_path)
    assert made.returncode == 0, made.stderr
    result = _compose_config("-q", env_file=tmp_path / ".env")
    assert result.returncode == 0, result.stderr
