"""The deployment files validate: docker-compose.yml with Debian's docker-compose (1.29) and the example .env,
the Dockerfile's basics; the secrets have no default."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
SERVICES = {"postgres", "valkey", "seaweedfs", "migrate", "api", "worker"}
# What docker-compose.yml requires (`${NAME:?...}`): no default anyone could look up.
REQUIRED_SECRETS = {"AGENSIUM_SECRET_KEY", "AWS_SECRET_ACCESS_KEY"}


def _compose_config(*extra: str, env_file: Path = ENV_EXAMPLE) -> subprocess.CompletedProcess[str]:
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


def test_docker_compose_config_is_valid() -> None:
    result = _compose_config("-q")
    assert result.returncode == 0, result.stderr


def test_docker_compose_has_every_service() -> None:
    result = _compose_config("--services")
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


def test_compose_requires_the_secrets_and_the_example_env_holds_them(tmp_path: Path) -> None:
    required = set(re.findall(r"\$\{(\w+):\?", COMPOSE_FILE.read_text()))
    assert required == REQUIRED_SECRETS
    example = _env_file(ENV_EXAMPLE)
    for name in REQUIRED_SECRETS:  # generated-looking: long and random, not a word to keep
        assert re.fullmatch(r"[A-Za-z0-9_-]{43,}", example[name]), name
    assert "secrets.token_urlsafe" in ENV_EXAMPLE.read_text()

    for missing in REQUIRED_SECRETS:
        partial_env = tmp_path / f"without-{missing}.env"
        partial_env.write_text("".join(f"{name}={value}\n" for name, value in example.items() if name != missing))
        refused = _compose_config("-q", env_file=partial_env)
        assert refused.returncode != 0 and f"set {missing} in .env" in refused.stderr, refused.stderr

    configured = yaml.safe_load(_compose_config().stdout)["services"]
    for name in ("migrate", "api", "worker"):
        assert configured[name]["environment"]["AGENSIUM_SECRET_KEY"] == example["AGENSIUM_SECRET_KEY"]
    assert configured["seaweedfs"]["environment"]["AWS_SECRET_ACCESS_KEY"] == example["AWS_SECRET_ACCESS_KEY"]
