"""Structured logs: structlog for credwarden's own events and for everything else.

`configure()` installs one handler on the root logger whose formatter is structlog's
`ProcessorFormatter`: credwarden's structlog events and plain `logging` records (kopf,
aiohttp, credwarden's older `logging` calls) come out in one format, JSON lines by default
or a console rendering when the log stream is a terminal. kopf's object context
(`k8s_ref`) becomes top-level `kind`, `namespace`, `name` and `uid` fields, the same
fields `action()` writes, so one query finds everything about a credential.

Redaction. Secret values must never reach a log line, at any level. kopf at DEBUG puts
whole bodies and patches into its messages (f-strings, so the values are in the text), so
there are two guards, both in the formatter every line passes through:

- structured: any `data`/`stringData` mapping in the event (or in a record's arguments)
  keeps its keys, its values become `<redacted>`; the annotations
  `kubectl.kubernetes.io/last-applied-configuration` and
  `kopf.zalando.org/last-handled-configuration` (both copies of a Secret's data) are
  replaced whole;
- textual: in every string field (the message, an exception), the same keys are found in
  Python-repr or JSON form and their values cut out.

On top, kopf's loggers are never set below INFO unless asked (`kopf_level`), and
tracebacks are rendered without local variables (structlog's rich and dict tracebacks show
them by default). docs/logging.md describes the fields.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
from collections.abc import Iterator, Mapping, MutableMapping
from typing import IO, Any

import structlog

from credwarden.records import RULES, LifecycleRecord

FORMATS = ("json", "console")
REDACTED = "<redacted>"
SECRET_FIELDS = frozenset({"data", "stringData", "binaryData"})
# annotations that hold a copy of an object's data
COPY_ANNOTATIONS = frozenset(
    {
        "kubectl.kubernetes.io/last-applied-configuration",
        "kopf.zalando.org/last-handled-configuration",
    }
)
HANDLER_NAME = "credwarden"
ACTIONS_LOGGER = "credwarden.actions"
# results logged at INFO; any other (error, ...) at WARNING
INFO_RESULTS = frozenset({"success", "planned", "skipped", "unchanged", "conflict", "not-found"})
_REASON_TO_RULE = {reason: rule for rule, (_, reason) in RULES.items()}


# ---- structured redaction ------------------------------------------------------------------
def redact(value: Any, _depth: int = 0) -> Any:
    """A copy of `value` with secret data blanked: any `data`/`stringData`/`binaryData`
    mapping keeps its keys with `<redacted>` values; the copy-of-data annotations are
    replaced. Mappings (kopf's Body included) become dicts; other values are kept."""
    if _depth > 32:
        return REDACTED
    if isinstance(value, Mapping):
        copied: dict[Any, Any] = {}
        for key, item in value.items():
            if key in SECRET_FIELDS and isinstance(item, Mapping):
                copied[key] = dict.fromkeys(item, REDACTED)
            elif key in COPY_ANNOTATIONS or (
                key in SECRET_FIELDS and isinstance(item, str | bytes)
            ):
                copied[key] = REDACTED
            else:
                copied[key] = redact(item, _depth + 1)
        return copied
    if isinstance(value, list | tuple):
        items = [redact(item, _depth + 1) for item in value]
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, str):
        return redact_text(value)
    return value


# ---- textual redaction --------------------------------------------------------------------
# a key in repr or JSON form, possibly with escaped quotes (JSON inside a JSON string)
_Q = r"(?:\\*[\"'])"
_SECRET_KEY = re.compile(_Q + r"(?:data|stringData|binaryData)" + _Q + r"\s*:\s*(?=\{)")
_COPY_KEY = re.compile(
    _Q
    + r"(?:kubectl\.kubernetes\.io/last-applied-configuration"
    + r"|kopf\.zalando\.org/last-handled-configuration)"
    + _Q
    + r"\s*:\s*"
)


def _end_of_braces(text: str, start: int) -> int:
    """Index after the `}` matching the `{` at `start`, skipping quoted strings."""
    depth = 0
    quote: str | None = None
    index = start
    while index < len(text):
        char = text[index]
        if quote is not None:
            if char == "\\":
                index += 2
                continue
            if char == quote:
                quote = None
        elif char in "\"'":
            quote = char
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return index + 1
        index += 1
    return len(text)  # unbalanced (a cut message): redact to the end


def _end_of_value(text: str, start: int) -> int:
    """Index after the value at `start`: a quoted string (with escapes), a `{...}`, or up
    to the next `,` or `}`."""
    if start >= len(text):
        return start
    char = text[start]
    if char == "{":
        return _end_of_braces(text, start)
    backslashes = 0
    while start + backslashes < len(text) and text[start + backslashes] == "\\":
        backslashes += 1
    if start + backslashes < len(text) and text[start + backslashes] in "\"'":
        quote = text[start + backslashes]
        closing = "\\" * backslashes + quote
        index = start + backslashes + 1
        while index < len(text):
            if backslashes == 0 and text[index] == "\\":
                index += 2
                continue
            if text.startswith(closing, index) and (
                backslashes > 0 or text[index - 1 : index] != "\\"
            ):
                return index + len(closing)
            index += 1
        return len(text)
    found = re.search(r"[,}]", text[start:])
    return start + found.start() if found else len(text)


def redact_text(text: str) -> str:
    """Cut secret data out of a message that has a body or a patch formatted into it."""
    if "ata" not in text and "configuration" not in text:
        return text  # the common case: nothing that could hold data
    parts: list[str] = []
    position = 0
    while True:
        secret = _SECRET_KEY.search(text, position)
        copy = _COPY_KEY.search(text, position)
        found = min(
            (m for m in (secret, copy) if m is not None), key=lambda m: m.start(), default=None
        )
        if found is None:
            parts.append(text[position:])
            return "".join(parts)
        value_start = found.end()
        value_end = _end_of_value(text, value_start)
        parts.append(text[position:value_start])
        parts.append("{" + REDACTED + "}" if found is secret else f'"{REDACTED}"')
        position = value_end


# ---- processors ----------------------------------------------------------------------------
def redact_event(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: no secret data in any field of the event."""
    for key in list(event_dict):
        if key.startswith("_"):
            continue  # structlog's own (_record, _from_structlog)
        value = event_dict[key]
        if key in SECRET_FIELDS or key in COPY_ANNOTATIONS:
            event_dict[key] = REDACTED
        elif isinstance(value, str):
            event_dict[key] = redact_text(value)
        elif isinstance(value, Mapping | list | tuple):
            event_dict[key] = redact(value)
    return event_dict


def object_context(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """kopf's `k8s_ref` (from ExtraAdder) as top-level kind/namespace/name/uid fields."""
    ref = event_dict.pop("k8s_ref", None)
    if isinstance(ref, Mapping):
        for field in ("kind", "namespace", "name", "uid"):
            value = ref.get(field)
            if value:
                event_dict.setdefault(field, value)
    return event_dict


class _RedactingFormatter(structlog.stdlib.ProcessorFormatter):
    """ProcessorFormatter that blanks secret data in a plain record's arguments before
    the message is formatted (after that, only the textual guard can help)."""

    def format(self, record: logging.LogRecord) -> str:
        if record.args and not hasattr(record, "_logger"):
            record = logging.makeLogRecord(record.__dict__)
            args: Any = record.args
            record.args = redact(args) if isinstance(args, Mapping) else tuple(map(redact, args))
        return super().format(record)


def _shared() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def _route_structlog_to_logging() -> None:
    structlog.configure(
        processors=[
            *_shared(),
            structlog.stdlib.PositionalArgumentsFormatter(),
            # before any handler sees the event (not only credwarden's own)
            redact_event,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


def _renderer(fmt: str) -> Any:
    if fmt == "console":
        return structlog.dev.ConsoleRenderer(
            colors=False, exception_formatter=structlog.dev.plain_traceback
        )
    return structlog.processors.JSONRenderer(default=str, sort_keys=False)


def formatter(fmt: str) -> logging.Formatter:
    """The formatter of credwarden's handler (json or console)."""
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    return _RedactingFormatter(
        foreign_pre_chain=[
            *_shared(),
            structlog.stdlib.ExtraAdder(allow=["k8s_ref"]),
            object_context,
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            # a plain traceback string: no local variables (they may hold a body)
            structlog.processors.format_exc_info,
            redact_event,
            _renderer(fmt),
        ],
    )


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is when a record comes (pytest swaps it per test)."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self) -> IO[str]:
        return sys.stderr

    @stream.setter
    def stream(self, _: IO[str]) -> None:
        pass


def configure(
    fmt: str | None = None,
    *,
    level: int = logging.INFO,
    stream: IO[str] | None = None,
    kopf_level: int = logging.INFO,
) -> logging.Handler:
    """Route every log record through structlog to `stream` (default stderr).

    `fmt` None picks `console` when the stream is a terminal, else `json`. kopf's loggers
    are kept at `kopf_level` or above (INFO: kopf's DEBUG lines carry whole bodies).
    Calling it again replaces the handler it installed; other handlers are left alone.
    """
    chosen = fmt or ("console" if _isatty(stream or sys.stderr) else "json")
    _route_structlog_to_logging()
    handler = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    handler.set_name(HANDLER_NAME)
    handler.setFormatter(formatter(chosen))
    root = logging.getLogger()
    for existing in list(root.handlers):
        if existing.get_name() == HANDLER_NAME:
            root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("kopf").setLevel(max(level, kopf_level))
    # one line per HTTP request of a probe or a scrape is noise
    logging.getLogger("aiohttp.access").setLevel(max(level, logging.WARNING))
    return handler


@contextlib.contextmanager
def configured(
    fmt: str | None = None,
    *,
    level: int = logging.INFO,
    stream: IO[str] | None = None,
    kopf_level: int = logging.INFO,
) -> Iterator[logging.Handler]:
    """configure() for the duration of a block (the demo, tests): then as it was."""
    root, kopf = logging.getLogger(), logging.getLogger("kopf")
    access = logging.getLogger("aiohttp.access")
    saved = (root.level, kopf.level, access.level)
    handler = configure(fmt, level=level, stream=stream, kopf_level=kopf_level)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(saved[0])
        kopf.setLevel(saved[1])
        access.setLevel(saved[2])


# ---- one event per action ------------------------------------------------------------------
def rule_of(reason: str) -> str | None:
    """The rule id behind an Event reason (LongLivedToken -> long-lived-token)."""
    return _REASON_TO_RULE.get(reason)


def action(
    name: str,
    record: LifecycleRecord,
    *,
    result: str,
    policy: str | None = None,
    rule: str | None = None,
    **fields: Any,
) -> None:
    """Log one action on a credential: annotate, event, revoke, rotate, ...

    Fields: action, kind, namespace, name, uid, policy (default: the record's deciding
    policy), rule, result, plus `fields` (e.g. reason, error). INFO for a result in
    INFO_RESULTS, else WARNING. Never pass a value or a body: names, ids and reasons only.
    """
    key = record.key
    level = logging.INFO if result in INFO_RESULTS else logging.WARNING
    structlog.get_logger(ACTIONS_LOGGER).log(
        level,
        "action",
        action=name,
        kind=key.kind,
        namespace=key.namespace,
        name=key.name,
        uid=record.uid,
        policy=policy if policy is not None else record.policy,
        rule=rule,
        result=result,
        **fields,
    )


if not structlog.is_configured():
    # without configure() (tests, embedding), structlog events still go through `logging`
    _route_structlog_to_logging()
