"""The deployment files validate: docker-compose.yml with Debian's docker-compose (1.29), the Dockerfile's basics."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
SERVICES = {"postgres", "valkey", "seaweedfs", "migrate", "api", "worker"}


def _compose_config(*extra: str) -> subprocess.CompletedProcess[str]:
    docker_compose = shutil.which("docker-compose")
    if docker_compose is None:
        pytest.skip("docker-compose is not installed (apt-get install docker-compose) so it cannot validate")
    return subprocess.run(
        [docker_compose, "-f", str(COMPOSE_FILE), "config", *extra],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


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
