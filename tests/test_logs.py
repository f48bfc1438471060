"""Structured logs: the formats, kopf's object context, one event per action, redaction."""

from __future__ import annotations

import base64
import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import kopf
import pytest
import structlog
from kopf._core.actions.loggers import ObjectLogger

from conftest import lifecycle_record
from credwarden import logs
from credwarden.inventory import CredentialKey
from credwarden.records import Finding, LifecycleRecord

CANARY = "CANARY-logs-0b7e4c21-never-log-me"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def forms(value: str) -> list[str]:
    raw = value.encode()
    return [value, base64.b64encode(raw).decode(), raw.hex()]


def assert_clean(text: str) -> None:
    for form in forms(CANARY):
        assert form not in text, f"{form!r} leaked into: {text[:500]}"


def secret_body() -> dict[str, Any]:
    """A Secret as the API returns it, with the canary in data, in stringData (as it was
    sent) and in kubectl's last-applied annotation (as `kubectl apply` writes it)."""
    data = {"password": base64.b64encode(CANARY.encode()).decode(), "user": "YWRtaW4="}
    applied = {"apiVersion": "v1", "kind": "Secret", "data": data, "metadata": {"name": "db"}}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "db",
            "namespace": "team",
            "uid": "uid-db",
            "annotations": {
                LAST_APPLIED: json.dumps(applied),
                "kopf.zalando.org/last-handled-configuration": json.dumps({"data": data}),
                "note": "kept",
            },
        },
        "type": "Opaque",
        "data": data,
        "stringData": {"token": CANARY},
    }


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    with logs.configured("json", level=logging.DEBUG, stream=stream, kopf_level=logging.DEBUG):
        yield stream


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def record(**changes: Any) -> LifecycleRecord:
    fields: dict[str, Any] = {
        "owner": "team-a",
        "owner_source": "label:team",
        "policy": "platform-baseline",
        "policies": ("platform-baseline",),
        "findings": (Finding.of("credential-expired", "expired (policy platform-baseline)"),),
    }
    fields.update(changes)
    return lifecycle_record(fields.pop("key", CredentialKey("Secret", "team", "db")), **fields)


# ---- formats -----------------------------------------------------------------------------
def test_json_lines_from_structlog_and_from_plain_logging(captured: io.StringIO) -> None:
    structlog.get_logger("credwarden.test").info("hello", answer=42)
    logging.getLogger("credwarden.reconciler").warning("status of %s not written", "p")
    first, second = lines(captured)
    assert first["event"] == "hello" and first["answer"] == 42
    assert first["level"] == "info" and first["logger"] == "credwarden.test"
    assert first["timestamp"].endswith("Z")
    assert second["event"] == "status of p not written"
    assert second["level"] == "warning" and second["logger"] == "credwarden.reconciler"


def test_kopf_records_carry_their_object_context(captured: io.StringIO) -> None:
    body = kopf.Body(secret_body())
    ObjectLogger(body=body, settings=kopf.OperatorSettings()).info("Handler succeeded.")
    (line,) = lines(captured)
    assert line["event"] == "Handler succeeded."
    assert line["logger"] == "kopf.objects"
    assert (line["kind"], line["namespace"], line["name"], line["uid"]) == (
        "Secret",
        "team",
        "db",
        "uid-db",
    )
    assert "settings" not in line and "k8s_ref" not in line  # only k8s_ref is taken


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_console_on_a_terminal_json_otherwise_and_the_flag_overrides() -> None:
    terminal = _Terminal()
    with logs.configured(stream=terminal):
        logging.getLogger("credwarden").warning("to a person")
    assert "to a person" in terminal.getvalue()
    with pytest.raises(json.JSONDecodeError):
        json.loads(terminal.getvalue())
    forced = _Terminal()
    with logs.configured("json", stream=forced):
        logging.getLogger("credwarden").warning("to a machine")
    assert json.loads(forced.getvalue())["event"] == "to a machine"
    piped = io.StringIO()
    with logs.configured(stream=piped):
        logging.getLogger("credwarden").warning("to a file")
    assert json.loads(piped.getvalue())["event"] == "to a file"
    with pytest.raises(ValueError, match="json, console"):
        logs.formatter("xml")


def test_kopf_stays_at_info_unless_asked_and_the_state_comes_back() -> None:
    root_before = logging.getLogger().level
    kopf_before = logging.getLogger("kopf").level
    stream = io.StringIO()
    with logs.configured("json", level=logging.DEBUG, stream=stream):
        assert logging.getLogger("kopf").getEffectiveLevel() == logging.INFO
        logging.getLogger("kopf.objects").debug("a body would be here")
        logging.getLogger("credwarden.test").debug("ours at debug")
    assert [line["event"] for line in lines(stream)] == ["ours at debug"]
    assert logging.getLogger().level == root_before
    assert logging.getLogger("kopf").level == kopf_before
    assert not [h for h in logging.getLogger().handlers if h.get_name() == logs.HANDLER_NAME]


# ---- one event per action -----------------------------------------------------------------------
def test_an_action_is_one_event_with_policy_rule_and_result(captured: io.StringIO) -> None:
    logs.action(
        "event",
        record(),
        result="success",
        rule=logs.rule_of("CredentialExpired"),
        reason="CredentialExpired",
    )
    logs.action("annotate", record(), result="error", error="PATCH ...: 500 boom")
    logs.action("revoke", record(policy="financial-ml/p"), result="conflict")
    event, annotate, revoke = lines(captured)
    assert event == {
        **event,
        "event": "action",
        "action": "event",
        "kind": "Secret",
        "namespace": "team",
        "name": "db",
        "uid": "uid-db",
        "policy": "platform-baseline",
        "rule": "credential-expired",
        "result": "success",
        "reason": "CredentialExpired",
        "level": "info",
        "logger": "credwarden.actions",
    }
    assert (annotate["level"], annotate["result"], annotate["error"]) == (
        "warning",
        "error",
        "PATCH ...: 500 boom",
    )
    assert (revoke["policy"], revoke["level"]) == ("financial-ml/p", "info")
    assert logs.rule_of("LongLivedToken") == "long-lived-token"
    assert logs.rule_of("CredentialCompliant") is None


# ---- redaction ----------------------------------------------------------------------------------
def test_a_secret_passed_as_a_field_keeps_its_keys_not_its_values(captured: io.StringIO) -> None:
    structlog.get_logger("credwarden.test").debug("seen", body=secret_body(), data={"k": CANARY})
    (line,) = lines(captured)
    assert_clean(json.dumps(line))
    assert line["body"]["data"] == {"password": logs.REDACTED, "user": logs.REDACTED}
    assert line["body"]["stringData"] == {"token": logs.REDACTED}
    annotations = line["body"]["metadata"]["annotations"]
    assert annotations[LAST_APPLIED] == logs.REDACTED
    assert annotations["note"] == "kept"
    assert line["data"] == logs.REDACTED


@pytest.mark.parametrize(
    "emit",
    [
        # kopf's own shapes: f-strings with the body's repr (processing.py, patching.py)
        lambda log, body: log.debug(f"Handling cycle is in progress: {body!r}"),
        lambda log, body: log.debug(f"Merge-patching the resource with: {body!r}"),
        lambda log, body: log.warning(f"Ignoring an unsupported event type: {dict(object=body)!r}"),
        # %-style arguments, a kopf Body among them
        lambda log, body: log.debug("event %s: %r", "ADDED", kopf.Body(body)),
        lambda log, body: log.debug("raw: %s", {"type": "ADDED", "object": body}),
        # the body as JSON, and as JSON inside JSON (an API error's message)
        lambda log, body: log.info("got %s", json.dumps(body)),
        lambda log, body: log.error("failed: %s", json.dumps({"message": json.dumps(body)})),
        # a rotation patch
        lambda log, body: log.debug("patch %r", {"data": {"password": body["data"]["password"]}}),
    ],
)
def test_secret_data_formatted_into_a_message_is_cut_out(captured: io.StringIO, emit: Any) -> None:
    emit(logging.getLogger("kopf.objects"), secret_body())
    output = captured.getvalue()
    assert output.strip(), "nothing was logged: the test would prove nothing"
    assert_clean(output)
    assert "redacted" in output


def test_an_exception_with_a_body_in_it_is_logged_without_it(captured: io.StringIO) -> None:
    def fails(body: dict[str, Any]) -> None:
        raise ValueError(f"cannot read {body!r}")

    try:
        fails(secret_body())
    except ValueError:
        logging.getLogger("credwarden.test").exception("reading failed")
    structlog.get_logger("credwarden.test").error("again", exc_info=True)
    output = captured.getvalue()
    assert "ValueError" in output and "Traceback" in output
    assert_clean(output)


def test_redaction_leaves_ordinary_messages_alone() -> None:
    for text in (
        "metadata of Secret team/db changed",
        "Merge-patching the status with: {'status': {'matched': 3}}",
        "annotations on Secret/team/db not written: PATCH /api/v1/...: 409 Conflict",
        "value of key data also stored in Secret x/y",
    ):
        assert logs.redact_text(text) == text


def test_redact_text_cuts_each_form() -> None:
    body = secret_body()
    for text in (repr(body), json.dumps(body), json.dumps(json.dumps(body)), str(kopf.Body(body))):
        redacted = logs.redact_text(text)
        assert CANARY not in redacted and body["data"]["password"] not in redacted, redacted
        assert "team" in redacted  # the rest is kept
