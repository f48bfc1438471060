"""The redaction guard: a secret value planted in the cluster never comes out of credwarden.

Canary values go into Secrets of the example scenario: a value of an existing Secret that
Enforce mode rotates (so it travels through a rotation into `<name>-previous`), and extra
Secrets of every credential type, one of them also holding its value in `stringData` (as
sent) and in kubectl's last-applied annotation (as `kubectl apply` writes it), one copied
into another namespace (DuplicateSecret), one a legacy token that Enforce mode revokes.
Then none of the canaries may appear, plain, hex or base64 (at each of the three byte
alignments, so a canary inside a larger encoded value is found too), in:

- the logs at every level: the real operator runs in the sandbox with the root logger and
  kopf's loggers at DEBUG, rendered as JSON and as console lines, and the raw records;
- the Events, annotations, labels and status the operator wrote (the emulator's objects,
  minus the Secrets' own data and the annotation planted on purpose);
- /metrics;
- `credwarden audit` in table, JSON and Markdown;
- `credwarden demo --dump` and the demo's output.
"""

from __future__ import annotations

import base64
import copy
import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from conftest import certificate_pem
from credwarden import logs, scenario
from credwarden.cli import main
from credwarden.emulator import ClusterEmulator, wait_until
from credwarden.facts import LAST_APPLIED
from credwarden.metrics import serve_metrics
from credwarden.sandbox import emulated_cluster, operator_on

pytestmark = pytest.mark.timeout(120)

CANARIES = {
    purpose: f"CANARY-{purpose}-7f3a9c1e5b2d4086"
    for purpose in (
        "rotated",
        "opaque",
        "string-data",
        "applied",
        "token",
        "tls-key",
        "registry",
        "basic",
        "ssh",
    )
}
PLANTED = ("canary-opaque", "canary-copy", "canary-bot-token", "canary-tls", "canary-registry")


# ---- what to look for ----------------------------------------------------------------------
def forms(value: str) -> set[str]:
    """The text forms a value can leak in: plain, hex, and base64 (standard and URL-safe) at
    each alignment within a larger encoded string."""
    raw = value.encode()
    found = {value, raw.hex(), raw.hex().upper()}
    for shift in range(3):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            encoded = encode(b"\0" * shift + raw).decode()
            # drop the characters that the padding bytes and the end share with neighbours
            found.add(encoded[(shift * 4 + 2) // 3 + 1 : -4])
    return {form for form in found if len(form) >= 16}


ALL_FORMS = {form: purpose for purpose, value in CANARIES.items() for form in forms(value)}


def leaks(text: str) -> list[str]:
    return sorted({f"{ALL_FORMS[form]} as {form!r}" for form in ALL_FORMS if form in text})


def test_the_forms_find_a_canary_encoded_inside_a_larger_value() -> None:
    canary = CANARIES["registry"]
    for prefix in ("", "x", "xy", '{"auths":{"ghcr.io":{"password":"'):
        blob = (prefix + canary + '"}}}').encode()
        assert leaks(base64.b64encode(blob).decode()), prefix
        assert leaks(blob.hex())
    assert leaks(canary) and not leaks("nothing to see")


# ---- the planted cluster -------------------------------------------------------------------
def b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def secret(
    name: str,
    namespace: str,
    type_: str,
    data: dict[str, str],
    created: datetime,
    **metadata: Any,
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": type_,
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": f"uid-{namespace}-{name}",
            "resourceVersion": "1",
            "creationTimestamp": stamp(created),
            **metadata,
        },
        "data": {key: b64(value) for key, value in data.items()},
    }


def planted_objects(now: datetime) -> list[dict[str, Any]]:
    objects = scenario.build_objects(now)
    old, older = now - timedelta(days=200), now - timedelta(days=400)
    # an existing Secret of the scenario: rotated by ml-platform-rotation (Enforce)
    for body in objects:
        meta = body["metadata"]
        if (body["kind"], meta.get("namespace"), meta["name"]) == (
            "Secret",
            "financial-ml",
            "ml-platform",
        ):
            body["data"]["MLFLOW_TRACKING_PASSWORD"] = b64(CANARIES["rotated"])
    opaque = secret("canary-opaque", "airflow", "Opaque", {"password": CANARIES["opaque"]}, older)
    opaque["stringData"] = {"api-key": CANARIES["string-data"]}
    applied = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "canary-opaque", "namespace": "airflow"},
        "data": {"password": b64(CANARIES["opaque"]), "extra": b64(CANARIES["applied"])},
        "stringData": {"api-key": CANARIES["applied"]},
    }
    opaque["metadata"]["annotations"] = {LAST_APPLIED: json.dumps(applied)}
    part_of = {"app.kubernetes.io/part-of": "ml-platform"}
    not_after = now + timedelta(days=5)
    return [
        *objects,
        opaque,
        # the same value elsewhere: DuplicateSecret names the key, never the value
        secret("canary-copy", "monitoring", "Opaque", {"password": CANARIES["opaque"]}, old),
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {
                "name": "canary-bot",
                "namespace": "financial-ml",
                "uid": "uid-financial-ml-canary-bot",
                "resourceVersion": "1",
                "creationTimestamp": stamp(older),
                "labels": part_of,
            },
        },
        secret(
            "canary-bot-token",
            "financial-ml",
            "kubernetes.io/service-account-token",
            {"token": CANARIES["token"], "namespace": "financial-ml"},
            old,
            labels=part_of,
            annotations={
                "kubernetes.io/service-account.name": "canary-bot",
                "kubernetes.io/service-account.uid": "uid-financial-ml-canary-bot",
            },
        ),
        {
            **secret(
                "canary-tls",
                "ml-platform-system",
                "kubernetes.io/tls",
                {"tls.key": CANARIES["tls-key"]},
                old,
            ),
            "data": {
                "tls.crt": base64.b64encode(
                    certificate_pem(not_after, not_before=now - timedelta(days=60))
                ).decode(),
                "tls.key": b64(CANARIES["tls-key"]),
            },
        },
        secret(
            "canary-registry",
            "financial-ml-dev",
            "kubernetes.io/dockerconfigjson",
            {
                ".dockerconfigjson": json.dumps(
                    {"auths": {"ghcr.io": {"username": "bot", "password": CANARIES["registry"]}}}
                )
            },
            old,
        ),
        secret(
            "canary-basic",
            "default",
            "kubernetes.io/basic-auth",
            {"username": "admin", "password": CANARIES["basic"]},
            older,
        ),
        secret(
            "canary-ssh",
            "default",
            "kubernetes.io/ssh-auth",
            {"ssh-privatekey": CANARIES["ssh"]},
            older,
        ),
    ]


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


# ---- the operator: logs, Events, annotations, metrics ---------------------------------------
class RawRecords(logging.Handler):
    """Every record as it arrives, before any formatter: message, args and extras."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.parts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.parts.append(f"{record.name} {record.getMessage()} {record.args!r}")


@pytest.fixture
def every_log_line() -> Iterator[tuple[io.StringIO, io.StringIO, RawRecords]]:
    as_json, as_console, raw = io.StringIO(), io.StringIO(), RawRecords()
    root = logging.getLogger()
    with logs.configured("json", level=logging.DEBUG, stream=as_json, kopf_level=logging.DEBUG):
        console = logging.StreamHandler(as_console)
        console.setFormatter(logs.formatter("console"))
        root.addHandler(console)
        root.addHandler(raw)
        try:
            yield as_json, as_console, raw
        finally:
            root.removeHandler(console)
            root.removeHandler(raw)


def visible(body: dict[str, Any], planted: dict[tuple[str, str], dict[str, Any]]) -> Any:
    """What credwarden could have written on an object: everything but a Secret's values
    and the annotation a test planted on purpose."""
    shown = copy.deepcopy(body)
    meta = shown.get("metadata") or {}
    if shown.get("kind") == "Secret":
        shown.pop("data", None)
        shown.pop("stringData", None)
    original = planted.get((meta.get("namespace"), meta.get("name")))
    annotations = meta.get("annotations") or {}
    if original is not None and LAST_APPLIED in annotations:
        planted_value = original["metadata"].get("annotations", {}).get(LAST_APPLIED)
        if annotations[LAST_APPLIED] == planted_value:
            del annotations[LAST_APPLIED]
    return shown


def stored(emulator: ClusterEmulator) -> list[dict[str, Any]]:
    return [
        found.raw
        for key in list(emulator.objects)
        if (found := emulator.objects[key]) is not None and not found.deleted
    ]


async def test_nothing_leaks_from_the_running_operator(
    every_log_line: tuple[io.StringIO, io.StringIO, RawRecords],
) -> None:
    as_json, as_console, raw = every_log_line
    objects = [*planted_objects(now()), *scenario.example_policies()]
    planted = {
        (o["metadata"].get("namespace"), o["metadata"]["name"]): o
        for o in objects
        if o["kind"] == "Secret"
    }
    async with emulated_cluster(objects) as sandbox, operator_on(sandbox) as state:
        server = await serve_metrics(state, 0, host="127.0.0.1")
        try:
            emulator = sandbox.emulator

            def enforced() -> bool:
                names = {
                    (b["metadata"].get("namespace"), b["metadata"]["name"])
                    for b in stored(emulator)
                }
                return ("financial-ml", "ml-platform-previous") in names and (
                    "financial-ml",
                    "canary-bot-token",
                ) not in names

            # Enforce mode rotated the canary's Secret and revoked the canary token
            await wait_until(enforced, 30)
            await wait_until(lambda: state.reconciler.converged.is_set(), 30)
            async with aiohttp.ClientSession() as session, session.get(server.url) as response:
                metrics = await response.text()
        finally:
            await server.stop()
        bodies = stored(emulator)

    # the canaries went through the operator: it saw, annotated and reported them
    assert 'name="canary-opaque"' in metrics and 'name="canary-registry"' in metrics
    previous = next(b for b in bodies if b["metadata"]["name"] == "ml-platform-previous")
    assert previous["data"]["MLFLOW_TRACKING_PASSWORD"] == b64(CANARIES["rotated"])
    assert leaks(json.dumps(previous)), "the detector must see a value where it is stored"
    copy_ = next(b for b in bodies if b["metadata"]["name"] == "canary-copy")
    assert "duplicate-secret" in copy_["metadata"]["annotations"]["credwarden.io/findings"]

    assert leaks(metrics) == []
    events = [b for b in bodies if b.get("kind") == "Event"]
    assert {e["reason"] for e in events} >= {"DuplicateSecret", "Revoked", "Rotated"}
    assert leaks(json.dumps(events)) == []
    written = [visible(b, planted) for b in bodies if b.get("kind") != "Event"]
    assert leaks(json.dumps(written)) == []

    logged = as_json.getvalue()
    levels = {json.loads(line)["level"] for line in logged.splitlines()}
    assert "debug" in levels and "info" in levels
    assert '"logger": "kopf.' in logged  # kopf's own records, at DEBUG too
    assert '"action": "annotate"' in logged and '"name": "canary-opaque"' in logged
    assert leaks(logged) == []
    assert "canary-opaque" in as_console.getvalue()
    assert leaks(as_console.getvalue()) == []
    # before any redaction: no library logged a value in the first place
    assert raw.parts
    assert leaks("\n".join(raw.parts)) == [], "a raw log record carries secret data"


# ---- the CLI: audit and demo ------------------------------------------------------------------
@pytest.fixture
def snapshot(tmp_path: Path) -> tuple[Path, Path]:
    path = tmp_path / "cluster.yaml"
    document = {"apiVersion": "v1", "kind": "List", "items": planted_objects(now())}
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    policies = tmp_path / "policies.yaml"
    policies.write_text(scenario.EXAMPLE_POLICIES_YAML, encoding="utf-8")
    return path, policies


@pytest.mark.parametrize("output", ["table", "json", "markdown"])
def test_nothing_leaks_from_the_audit(
    snapshot: tuple[Path, Path], output: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster, policies = snapshot
    code = main(
        ["audit", "--snapshot", str(cluster), "--policy", str(policies), "--output", output]
    )
    assert code == 1  # violations found
    out, err = capsys.readouterr()
    for name in PLANTED:
        assert name in out, name
    if output != "table":  # the table cuts the findings column short
        assert "duplicate-secret" in out
    assert leaks(out + err) == []


def test_nothing_leaks_from_the_demo_and_its_dump(
    snapshot: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster, policies = snapshot
    dump = tmp_path / "dump.yaml"
    assert (
        main(["demo", "--snapshot", str(cluster), "--policy", str(policies), "--dump", str(dump)])
        == 0
    )
    out, err = capsys.readouterr()
    text = dump.read_text(encoding="utf-8")
    items = yaml.safe_load(text)["items"]
    names = {item["metadata"]["name"] for item in items}
    assert {"canary-opaque", "canary-registry", "ml-platform-previous"} <= names
    assert "canary-opaque" in out
    assert leaks(text) == []
    assert leaks(out + err) == []
