"""The Dockerfile and .dockerignore, read as text (there is no Docker engine to build with)."""

from __future__ import annotations

import ast
import fnmatch
import json
import re
import tomllib

import pytest

from .conftest import EXAMPLE_APP, METRICS_PORT, REPO, STATE_DIR


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    out, pending = [], ""
    for raw in (REPO / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        keyword, _, args = line.partition(" ")
        out.append((keyword.upper(), args.strip()))
    assert not pending, "Dockerfile ends inside a continued line"
    return out


def stages() -> list[list[tuple[str, str]]]:
    """Instructions per build stage; ARG defaults from before the first FROM are resolved."""
    result: list[list[tuple[str, str]]] = []
    args: dict[str, str] = {}
    for keyword, rest in instructions():
        if keyword == "ARG" and "=" in rest:
            name, _, default = rest.partition("=")
            args[name] = default
        rest = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), rest)
        if keyword == "FROM":
            result.append([])
        if result:
            result[-1].append((keyword, rest))
    return result


def final_stage() -> list[tuple[str, str]]:
    return stages()[-1]


def values(stage, keyword: str) -> list[str]:
    return [rest for k, rest in stage if k == keyword]


def test_multi_stage_on_slim_python_3_11():
    all_stages = stages()
    assert len(all_stages) == 2
    for stage in all_stages:
        image = values(stage, "FROM")[0].split()[0]
        assert image == "python:3.11-slim"
    builder = all_stages[0]
    assert any("pip wheel" in r for r in values(builder, "RUN"))
    runtime = final_stage()
    assert any("pip install" in r and "kstream" in r for r in values(runtime, "RUN"))


def test_runs_as_uid_10001():
    (user,) = values(final_stage(), "USER")
    assert user.split(":")[0] == "10001"
    # The user exists in the image and owns the state directory.
    setup = " ".join(values(final_stage(), "RUN"))
    assert "useradd" in setup
    assert "chown" in setup and STATE_DIR in setup


def test_entrypoint_and_default_command():
    stage = final_stage()
    assert json.loads(values(stage, "ENTRYPOINT")[-1]) == ["kstream"]
    assert json.loads(values(stage, "CMD")[-1]) == ["worker", EXAMPLE_APP]
    # The default command's example is in the image.
    copies = [r.split() for r in values(stage, "COPY")]
    assert ["examples", "/app/examples"] in copies
    assert (REPO / EXAMPLE_APP.removeprefix("/app/")).is_file()
    # `kstream` is the console script pip installs.
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert "kstream" in scripts


def test_state_volume_port_and_env():
    stage = final_stage()
    assert json.loads(values(stage, "VOLUME")[0]) == [STATE_DIR]
    assert values(stage, "EXPOSE") == [str(METRICS_PORT)]
    env = " ".join(values(stage, "ENV"))
    assert f"KSTREAM_STATE_DIR={STATE_DIR}" in env
    assert f"KSTREAM_METRICS_PORT={METRICS_PORT}" in env


def test_healthcheck_hits_healthz_with_urllib():
    (check,) = values(final_stage(), "HEALTHCHECK")
    options, _, command = check.partition("CMD ")
    assert "--interval=" in options
    argv = json.loads(command)
    assert argv[:2] == ["python", "-c"]
    code = argv[2]
    ast.parse(code)  # valid Python
    assert "urllib.request" in code
    assert "http://127.0.0.1:%s/healthz" in code
    assert f"'{METRICS_PORT}'" in code


def ignored(path: str, patterns: list[str]) -> bool:
    """Enough of .dockerignore matching for our patterns (no `!` exceptions)."""
    parts = path.split("/")
    for pattern in patterns:
        pattern = pattern.removeprefix("**/")
        for i in range(len(parts)):
            if fnmatch.fnmatch("/".join(parts[: i + 1]), pattern) or fnmatch.fnmatch(
                parts[i], pattern
            ):
                return True
    return False


@pytest.fixture(scope="module")
def dockerignore() -> list[str]:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert not any(p.startswith("!") for p in patterns)
    return patterns


def test_copied_sources_exist_and_are_not_ignored(dockerignore):
    for stage in stages():
        for rest in values(stage, "COPY"):
            if "--from=" in rest:
                continue
            *sources, _dest = rest.split()
            for source in sources:
                matches = list(REPO.glob(source)) if "*" in source else [REPO / source]
                if "*" not in source:
                    assert matches[0].exists(), f"COPY {source}: not in the repository"
                for match in matches:
                    relative = match.relative_to(REPO).as_posix()
                    assert not ignored(relative, dockerignore), f"{relative} is .dockerignored"


def test_dockerignore_keeps_the_build_context_small(dockerignore):
    for path in (".git", "tests/deploy", "state", "kstream/__pycache__", "kstream.egg-info"):
        assert ignored(path, dockerignore), path
    for path in ("pyproject.toml", "README.md", "kstream/cli.py", "examples/wordcount.py"):
        assert not ignored(path, dockerignore), path
