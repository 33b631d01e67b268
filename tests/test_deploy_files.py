"""The deployment files validate: docker-compose.yml with Debian's docker-compose (1.29), the Dockerfile's
basics; the secrets have no default anywhere, so the public example .env is refused until each is set, and
`make env` sets them to fresh random values. The install: every dependency pinned in constraints.txt and used
by make, pip quiet unless it fails, a packaging config without warnings."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import stat
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

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


def test_the_api_runs_several_uvicorn_workers() -> None:
    """The API scales out on its host: `agensium api --workers` with a default of at least 2 (API_WORKERS)."""
    command = yaml.safe_load(COMPOSE_FILE.read_text())["services"]["api"]["command"]
    assert command[:2] == ["agensium", "api"]
    workers = command[command.index("--workers") + 1]
    default = re.fullmatch(r"\$\{API_WORKERS:-(\d+)\}", workers)
    assert default is not None and int(default.group(1)) >= 2, workers


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


# --- the install: pinned, quiet, without packaging warnings -------------------------------------

CONSTRAINTS = ROOT / "constraints.txt"
PIN = re.compile(r"^(?P<name>[A-Za-z0-9._-]+)==(?P<version>\S+)(?: *;.*)?$")


def _pins() -> dict[str, Version]:
    pins = {}
    for line in CONSTRAINTS.read_text().splitlines():
        found = PIN.match(line.strip())
        if found:
            pins[canonicalize_name(found["name"])] = Version(found["version"])
    return pins


def _project() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_the_constraints_pin_every_dependency_within_its_range() -> None:
    """constraints.txt (`make lock`) pins every runtime and test dependency to one version pyproject.toml allows;
    the bench extra stays out (its numpy cap conflicts; it has a venv of its own)."""
    project = _project()["project"]
    pins = _pins()
    wanted = [Requirement(text) for text in [*project["dependencies"], *project["optional-dependencies"]["test"]]]
    assert wanted and len(pins) >= len(wanted)
    for requirement in wanted:
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is not pinned in constraints.txt: run make lock"
        assert requirement.specifier.contains(pins[name], prereleases=True), (str(requirement), str(pins[name]))
    assert "ydata-profiling" not in pins and "splink" not in pins


def _rule(makefile: str, target: str) -> str:
    """A rule of the Makefile: its target line and recipe."""
    found = re.search(rf"^{re.escape(target)}:.*?(?=^\S|\Z)", makefile, re.MULTILINE | re.DOTALL)
    assert found, f"no rule for {target}"
    return found.group(0)


def test_make_installs_with_the_constraints_and_make_lock_writes_them() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^CONSTRAINTS := constraints\.txt$", makefile, re.MULTILINE)
    install = _rule(makefile, "$(STAMP)")
    assert "$(CONSTRAINTS)" in install.splitlines()[0]  # new pins reinstall
    assert "pip install -c $(CONSTRAINTS) -e '.[test]'" in install
    for target in ("run", "test"):  # and so CI: .ci/run is `make test`
        assert "$(STAMP)" in _rule(makefile, target).splitlines()[0]
    assert (ROOT / ".ci" / "run").read_text().rstrip().endswith("make test")
    dockerfile = (ROOT / "Dockerfile").read_text()  # and the images
    assert "COPY pyproject.toml constraints.txt ./" in dockerfile and "pip install -c constraints.txt ." in dockerfile
    lock = _rule(makefile, "lock")
    assert "uv pip compile pyproject.toml --extra test" in lock and "-o $(CONSTRAINTS)" in lock
    assert CONSTRAINTS.read_text().splitlines()[:2] == [
        "# This file was autogenerated by uv via the following command:",
        "#    make lock",
    ]


FAKE_PIP = """#!/bin/sh
i=0; while [ $i -lt 200 ]; do echo "pip says line $i"; i=$((i + 1)); done
echo "$@" > pip-arguments
exit $FAKE_PIP_STATUS
"""


def _make_venv(directory: Path, pip_status: int) -> subprocess.CompletedProcess[str]:
    """`make venv` in a copy of the Makefile whose .venv's python is a stand-in printing 200 lines of pip."""
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    for name in ("Makefile", "pyproject.toml", "constraints.txt"):
        shutil.copy(ROOT / name, directory)
    python = directory / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True, exist_ok=True)
    python.write_text(FAKE_PIP)
    python.chmod(0o755)
    env = {**os.environ, "FAKE_PIP_STATUS": str(pip_status)}
    return subprocess.run(
        [make, "--no-print-directory", "venv"], capture_output=True, text=True, timeout=60, cwd=directory, env=env
    )


def test_pip_is_quiet_unless_the_install_fails(tmp_path: Path) -> None:
    (tmp_path / "ok").mkdir()
    ok = _make_venv(tmp_path / "ok", 0)
    assert ok.returncode == 0, ok.stderr
    assert len((ok.stdout + ok.stderr).splitlines()) == 1 and "pip says" not in ok.stdout + ok.stderr
    assert (tmp_path / "ok" / "pip-arguments").read_text().split() == [
        "-m", "pip", "install", "-c", "constraints.txt", "-e", ".[test]",
    ]  # fmt: skip
    assert "pip says line 199" in (tmp_path / "ok" / ".venv" / "install.log").read_text()

    (tmp_path / "failing").mkdir()
    failing = _make_venv(tmp_path / "failing", 1)
    assert failing.returncode != 0
    assert "pip says line 0" in failing.stderr and "pip says line 199" in failing.stderr
    assert "pip install failed" in failing.stderr
    assert not (tmp_path / "failing" / ".venv" / ".installed").exists()  # the next make tries again


def test_the_packaging_config_takes_every_sql_folder() -> None:
    """Each folder under sql/ is a package of the distribution with its .sql files as data: a folder left out
    is setuptools' `Package 'sql.migrations' is absent from the packages configuration` warning, and its files
    missing from a wheel."""
    from setuptools import find_namespace_packages

    setuptools_config = _project()["tool"]["setuptools"]
    packages = set(find_namespace_packages(where=str(ROOT), **setuptools_config["packages"]["find"]))
    folders = {path.parent for path in (ROOT / "sql").rglob("*.sql")}
    for folder in folders:
        package = ".".join(folder.relative_to(ROOT).parts)
        assert package in packages, package
        assert "*.sql" in setuptools_config["package-data"][package], package
