"""Prometheus metrics: rendered from the reconciler's records at scrape time.

Every operator gets its own `CollectorRegistry` (never prometheus-client's global one: the
demo and the tests run several operators in one process). The credential series are not
kept anywhere: `CredentialCollector` reads `Reconciler.records` when Prometheus scrapes,
so a deleted credential's series are gone from the next scrape, and there is no per-series
bookkeeping to leak. The cost is one pass over the records per family per scrape.

Two ways out, same series:

- `OperatorMetrics.registry` is a standard registry: `generate_latest(registry)` works
  (tests, anyone embedding credwarden). Building prometheus-client's objects for 100k
  credentials takes seconds, during which the event loop would stand still.
- `/metrics` (`serve_metrics`) writes the credential families with a dedicated text
  renderer that yields to the event loop every `CHUNK` records, and prometheus-client's
  own exposition for everything else. A test checks both give the same samples.

Hooks (`OperatorMetrics.attach`): the reconciler's `listeners` (last event time) and
`pass_listeners` (reconcile duration), the enforcer's `listeners` (revocations, rotations,
held-back actions) and the API client's `on_error` (API errors, chained). Other code can
count actions with `count_revocation`, `count_rotation` and `count_blocked`.

Labels carry names, kinds, types, statuses, rule ids and policy names: never a value, an
owner or a message. docs/metrics.md lists the series, their label values, and the series
count and scrape cost per 10k credentials.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import zlib
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client import (
    GC_COLLECTOR,
    CollectorRegistry,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from credwarden import __version__
from credwarden.records import (
    COMPLIANT,
    EXPIRING,
    NON_COMPLIANT,
    STATUS_ORDER,
    LifecycleRecord,
)

if TYPE_CHECKING:
    from credwarden.controller import OperatorState
    from credwarden.inventory import CredentialKey
    from credwarden.kube import KubeClient
    from credwarden.reconciler import Reconciler

DEFAULT_PORT = 9402
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
CHUNK = 2000  # records rendered between two yields to the event loop
GOVERNED = frozenset({COMPLIANT, EXPIRING, NON_COMPLIANT})
STATUSES = tuple(sorted(STATUS_ORDER, key=STATUS_ORDER.__getitem__))
KINDS = ("Secret", "ServiceAccount")
DAY = 86400.0
# credwarden_namespace_expiring_credentials{window}: expired, or expiring within (cumulative)
WINDOWS = (("7d", 7 * DAY), ("30d", 30 * DAY))
# result label values of the revocation and rotation counters, as the Enforcer reports
# them (docs/metrics.md): `conflict` is retried after a re-read, `error` is a failure
SUCCESS, CONFLICT, ERROR = "success", "conflict", "error"
PREFILLED_RESULTS = (SUCCESS, ERROR)
RECONCILE_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# a label value set by other code must be a short token: a policy name, a result, a reason
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/-]{0,126}")
OTHER = "other"


@dataclass(frozen=True)
class Family:
    name: str
    type: str  # gauge | counter | histogram
    help: str
    labels: tuple[str, ...]
    per_credential: bool = False

    @property
    def samples(self) -> tuple[str, ...]:
        """The sample names Prometheus stores for this family."""
        if self.type == "counter":
            return (f"{self.name}_total",)
        if self.type == "histogram":
            return (f"{self.name}_bucket", f"{self.name}_sum", f"{self.name}_count")
        return (self.name,)


_CREDENTIAL = ("namespace", "name", "kind")
FAMILIES: tuple[Family, ...] = (
    # per credential (off with per_credential=False)
    Family(
        "credwarden_credential_expiration_timestamp_seconds",
        "gauge",
        "Unix time at which the credential expires under its deciding policy.",
        (*_CREDENTIAL, "type", "policy"),
        per_credential=True,
    ),
    Family(
        "credwarden_credential_last_rotation_timestamp_seconds",
        "gauge",
        "Unix time of the credential's last rotation (creation if never rotated).",
        (*_CREDENTIAL, "type", "policy"),
        per_credential=True,
    ),
    Family(
        "credwarden_credential_status",
        "gauge",
        "1 for the credential's current status (only the current status is exported).",
        (*_CREDENTIAL, "status"),
        per_credential=True,
    ),
    Family(
        "credwarden_credential_findings",
        "gauge",
        "Number of current findings of a rule on the credential.",
        (*_CREDENTIAL, "policy", "rule", "severity"),
        per_credential=True,
    ),
    # aggregates (always)
    Family(
        "credwarden_tracked_credentials",
        "gauge",
        "Credentials (ServiceAccounts and Secrets) credwarden tracks.",
        ("kind",),
    ),
    Family(
        "credwarden_namespace_credentials",
        "gauge",
        "Credentials per namespace, kind and status.",
        ("namespace", "kind", "status"),
    ),
    Family(
        "credwarden_namespace_next_expiration_timestamp_seconds",
        "gauge",
        "Earliest expiry among the namespace's credentials of a kind and type.",
        ("namespace", "kind", "type"),
    ),
    Family(
        "credwarden_namespace_expiring_credentials",
        "gauge",
        "Credentials already expired (window=expired) or expiring within 7d or 30d "
        "(cumulative) at scrape time.",
        ("namespace", "kind", "window"),
    ),
    Family(
        "credwarden_findings",
        "gauge",
        "Current findings per deciding policy, rule, severity and namespace.",
        ("policy", "rule", "severity", "namespace"),
    ),
    # operator (always)
    Family(
        "credwarden_revocations",
        "counter",
        "Legacy token Secrets revoked (deleted), by policy and result.",
        ("policy", "result"),
    ),
    Family(
        "credwarden_rotations",
        "counter",
        "Secret rotations, by policy and result.",
        ("policy", "result"),
    ),
    Family(
        "credwarden_actions_blocked",
        "counter",
        "Revocations and rotations the operator planned but did not carry out, by reason.",
        ("policy", "reason"),
    ),
    Family(
        "credwarden_api_errors",
        "counter",
        "Failed Kubernetes API requests (each attempt), by verb and HTTP code or error.",
        ("verb", "code"),
    ),
    Family(
        "credwarden_reconcile_duration_seconds",
        "histogram",
        "Duration of one reconcile pass (evaluate a batch, queue its plans).",
        (),
    ),
    Family(
        "credwarden_last_event_timestamp_seconds",
        "gauge",
        "Unix time of the last change the operator processed (a watch event or a deadline "
        "that led to an evaluation).",
        (),
    ),
    Family("credwarden_evaluations", "counter", "Credential evaluations.", ()),
    Family("credwarden_writes", "counter", "Writes to the API (annotations, status).", ()),
    Family("credwarden_events_posted", "counter", "Kubernetes Events posted.", ()),
    Family(
        "credwarden_write_queue_plans",
        "gauge",
        "Credentials whose writes wait, by lane: fresh (changes, deadlines, retries) and "
        "backlog (a first start's or a policy change's pass).",
        ("lane",),
    ),
    Family(
        "credwarden_ready",
        "gauge",
        "1 once every watched kind has been listed and the reconcile loop runs.",
        (),
    ),
    Family("credwarden_build_info", "gauge", "credwarden's version; always 1.", ("version",)),
)
FAMILY = {family.name: family for family in FAMILIES}


def exported_sample_names(*, per_credential: bool = True) -> frozenset[str]:
    """Every credwarden_ sample name /metrics can carry (process_/python_ come on top)."""
    return frozenset(
        sample
        for family in FAMILIES
        if per_credential or not family.per_credential
        for sample in family.samples
    )


def label_token(value: str) -> str:
    """A label value set by callers: a short token, else `other` (bounded cardinality, and
    a message or a value passed by mistake never reaches a label)."""
    return value if _TOKEN.fullmatch(value) else OTHER


# ---- the text format ---------------------------------------------------------------------
def _escape(value: str) -> str:
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return value


def _number(value: float) -> str:
    if value != value:  # NaN
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _header(family: Family) -> str:
    return f"# HELP {family.name} {family.help}\n# TYPE {family.name} {family.type}\n"


def _line(name: str, labels: Sequence[str], values: Sequence[str], value: float) -> str:
    if not labels:
        return f"{name} {_number(value)}\n"
    pairs = ",".join(f'{k}="{_escape(v)}"' for k, v in zip(labels, values, strict=True))
    return f"{name}{{{pairs}}} {_number(value)}\n"


# ---- what a credential contributes -----------------------------------------------------------
Sample = tuple[tuple[str, ...], float]


def _timestamp(record: LifecycleRecord, attribute: str) -> float | None:
    moment = getattr(record, attribute)
    return None if moment is None else float(moment.timestamp())


def credential_samples(family: str, record: LifecycleRecord) -> Iterator[Sample]:
    """The samples of one per-credential family for one record (label values in order)."""
    key = record.key
    if family == "credwarden_credential_status":
        yield (key.namespace, key.name, key.kind, record.status), 1.0
        return
    policy = record.policy or ""
    if family == "credwarden_credential_expiration_timestamp_seconds":
        expires = _timestamp(record, "expires_at")
        if expires is not None:
            yield (key.namespace, key.name, key.kind, record.type, policy), expires
    elif family == "credwarden_credential_last_rotation_timestamp_seconds":
        rotated = _timestamp(record, "last_rotated_at")
        if rotated is not None and record.status in GOVERNED:
            yield (key.namespace, key.name, key.kind, record.type, policy), rotated
    elif family == "credwarden_credential_findings":
        counts: dict[tuple[str, str], int] = {}
        for finding in record.findings:
            rule = (finding.rule, finding.severity)
            counts[rule] = counts.get(rule, 0) + 1
        for (rule_id, severity), count in sorted(counts.items()):
            yield (key.namespace, key.name, key.kind, policy, rule_id, severity), float(count)


def identity(record: LifecycleRecord) -> str:
    """The labels every per-credential series starts with, escaped once per scrape."""
    key = record.key
    return f'namespace="{_escape(key.namespace)}",name="{_escape(key.name)}",kind="{key.kind}"'


# The renderers take records and their identity() strings side by side: a list of
# strings is invisible to the garbage collector, 100k (record, identity) tuples alive for a
# whole scrape are not, and at that size they set off full collections of the process.


# The renderers are credential_samples() unrolled for speed; a test checks they agree.
def _timestamp_renderer(
    metric: str, moment_of: Callable[[LifecycleRecord], datetime | None]
) -> Callable[[Sequence[LifecycleRecord], Sequence[str], list[str]], None]:
    """A renderer for a per-credential instant (expiry, last rotation)."""
    prefix = metric + "{"

    def render(records: Sequence[LifecycleRecord], idents: Sequence[str], out: list[str]) -> None:
        for record, ident in zip(records, idents, strict=True):
            moment = moment_of(record)
            if moment is not None:
                policy = _escape(record.policy or "")
                value = _number(moment.timestamp())
                out.append(
                    f'{prefix}{ident},type="{_escape(record.type)}",policy="{policy}"}} {value}\n'
                )

    return render


_render_expiration = _timestamp_renderer(
    "credwarden_credential_expiration_timestamp_seconds", lambda r: r.expires_at
)
_render_last_rotation = _timestamp_renderer(
    "credwarden_credential_last_rotation_timestamp_seconds",
    lambda r: r.last_rotated_at if r.status in GOVERNED else None,
)


def _render_status(
    records: Sequence[LifecycleRecord], idents: Sequence[str], out: list[str]
) -> None:
    prefix = "credwarden_credential_status{"
    for record, ident in zip(records, idents, strict=True):
        out.append(f'{prefix}{ident},status="{record.status}"}} 1\n')


def _render_findings(
    records: Sequence[LifecycleRecord], idents: Sequence[str], out: list[str]
) -> None:
    prefix = "credwarden_credential_findings{"
    for record, ident in zip(records, idents, strict=True):
        if not record.findings:
            continue
        counts: dict[tuple[str, str], int] = {}
        for finding in record.findings:
            rule = (finding.rule, finding.severity)
            counts[rule] = counts.get(rule, 0) + 1
        policy = _escape(record.policy or "")
        for (rule_id, severity), count in sorted(counts.items()):
            out.append(
                f'{prefix}{ident},policy="{policy}",rule="{rule_id}",severity="{severity}"}} '
                f"{count}\n"
            )


RENDERERS: dict[str, Callable[[Sequence[LifecycleRecord], Sequence[str], list[str]], None]] = {
    "credwarden_credential_expiration_timestamp_seconds": _render_expiration,
    "credwarden_credential_last_rotation_timestamp_seconds": _render_last_rotation,
    "credwarden_credential_status": _render_status,
    "credwarden_credential_findings": _render_findings,
}
PER_CREDENTIAL = tuple(family.name for family in FAMILIES if family.per_credential)


# ---- aggregates ------------------------------------------------------------------------------
@dataclass
class Aggregates:
    """The per-namespace and per-kind families, folded from the records in one pass."""

    now: float
    tracked: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    by_status: dict[tuple[str, str, str], int] = field(default_factory=dict)
    next_expiry: dict[tuple[str, str, str], float] = field(default_factory=dict)
    expiring: dict[tuple[str, str, str], int] = field(default_factory=dict)
    findings: dict[tuple[str, str, str, str], int] = field(default_factory=dict)

    def add(self, records: Iterable[LifecycleRecord]) -> None:
        now = self.now
        tracked, by_status, next_expiry = self.tracked, self.by_status, self.next_expiry
        expiring, findings = self.expiring, self.findings
        for record in records:
            key = record.key
            namespace, kind = key.namespace, key.kind
            tracked[kind] = tracked.get(kind, 0) + 1
            status_key = (namespace, kind, record.status)
            by_status[status_key] = by_status.get(status_key, 0) + 1
            if record.expires_at is not None:
                expires = record.expires_at.timestamp()
                type_key = (namespace, kind, record.type)
                if expires < next_expiry.get(type_key, float("inf")):
                    next_expiry[type_key] = expires
                left = expires - now
                if left <= 0:
                    window_key = (namespace, kind, "expired")
                    expiring[window_key] = expiring.get(window_key, 0) + 1
                else:
                    for window, span in WINDOWS:
                        if left <= span:
                            window_key = (namespace, kind, window)
                            expiring[window_key] = expiring.get(window_key, 0) + 1
            if record.findings:
                policy = record.policy or ""
                for finding in record.findings:
                    finding_key = (policy, finding.rule, finding.severity, namespace)
                    findings[finding_key] = findings.get(finding_key, 0) + 1

    def samples(self) -> Iterator[tuple[str, list[Sample]]]:
        yield "credwarden_tracked_credentials", [((k,), float(n)) for k, n in self.tracked.items()]
        yield "credwarden_namespace_credentials", _sorted(self.by_status)
        yield "credwarden_namespace_next_expiration_timestamp_seconds", _sorted(self.next_expiry)
        yield "credwarden_namespace_expiring_credentials", _sorted(self.expiring)
        yield "credwarden_findings", _sorted(self.findings)


def _sorted(values: dict[Any, Any]) -> list[Sample]:
    return [(key, float(value)) for key, value in sorted(values.items())]


class CredentialCollector(Collector):
    """The families derived from the records: aggregates, and per credential if asked."""

    def __init__(
        self,
        reconciler: Reconciler,
        *,
        per_credential: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.reconciler = reconciler
        self.per_credential = per_credential
        self.clock = clock

    def _records(self) -> list[LifecycleRecord]:
        # a list copy: records are immutable, the dict is not (the reconciler runs between
        # two chunks of an async render)
        return list(self.reconciler.records.values())

    def collect(self) -> Iterator[Metric]:
        records = self._records()
        aggregates = Aggregates(self.clock())
        aggregates.add(records)
        for name, samples in aggregates.samples():
            yield _family(name, samples)
        if self.per_credential:
            for name in PER_CREDENTIAL:
                family_samples = [
                    sample for record in records for sample in credential_samples(name, record)
                ]
                yield _family(name, family_samples)

    async def render(self) -> AsyncIterator[str]:
        """The same families as text, yielding to the event loop every CHUNK records."""
        records = self._records()
        aggregates = Aggregates(self.clock())
        idents: list[str] = []
        for start in range(0, len(records), CHUNK):
            chunk = records[start : start + CHUNK]
            aggregates.add(chunk)
            if self.per_credential:
                idents.extend(map(identity, chunk))
            await asyncio.sleep(0)
        out: list[str] = []
        for name, samples in aggregates.samples():
            family = FAMILY[name]
            out.append(_header(family))
            for index, (values, value) in enumerate(samples, start=1):
                out.append(_line(name, family.labels, values, value))
                if index % CHUNK == 0:
                    yield "".join(out)
                    out.clear()
                    await asyncio.sleep(0)
        yield "".join(out)
        if not self.per_credential:
            return
        for name in PER_CREDENTIAL:
            render = RENDERERS[name]
            out = [_header(FAMILY[name])]
            for start in range(0, len(records), CHUNK):
                end = start + CHUNK
                render(records[start:end], idents[start:end], out)
                yield "".join(out)
                out.clear()
                await asyncio.sleep(0)


def _family(name: str, samples: Iterable[Sample]) -> Metric:
    family = FAMILY[name]
    metric: GaugeMetricFamily | CounterMetricFamily
    if family.type == "counter":
        metric = CounterMetricFamily(name, family.help, labels=family.labels)
    else:
        metric = GaugeMetricFamily(name, family.help, labels=family.labels)
    for values, value in samples:
        metric.add_metric(list(values), value)
    return metric


class Histogram:
    """A histogram without prometheus-client's `_created` series (its own Histogram adds
    one, and turning that off is process-wide)."""

    def __init__(self, name: str, buckets: Sequence[float]) -> None:
        self.name = name
        self.bounds = tuple(sorted(buckets))
        self.counts = [0] * (len(self.bounds) + 1)  # the last: above every bound (+Inf)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        index = next((i for i, bound in enumerate(self.bounds) if value <= bound), -1)
        self.counts[index] += 1
        self.sum += value

    def family(self) -> Metric:
        cumulative, running = [], 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += count
            cumulative.append((_number(bound) if bound != float("inf") else "+Inf", running))
        return HistogramMetricFamily(
            self.name, FAMILY[self.name].help, buckets=cumulative, sum_value=self.sum
        )


class OperatorCollector(Collector):
    """Counters, the last event time, readiness and build info."""

    def __init__(self, metrics: OperatorMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        metrics = self.metrics
        policies = metrics.policy_names()
        for name, counts, prefilled in (
            ("credwarden_revocations", metrics.revocations, PREFILLED_RESULTS),
            ("credwarden_rotations", metrics.rotations, PREFILLED_RESULTS),
            ("credwarden_actions_blocked", metrics.blocked, ()),
        ):
            # zero for every current policy: increase() then sees a counter's first step
            values = {(policy, result): 0.0 for policy in policies for result in prefilled}
            values.update(counts)
            yield _family(name, _sorted(values))
        yield _family("credwarden_api_errors", _sorted(metrics.api_errors))
        yield metrics.reconcile_duration.family()
        stats = metrics.reconciler.stats
        yield _family("credwarden_evaluations", [((), float(stats.evaluations))])
        yield _family("credwarden_writes", [((), float(stats.writes))])
        yield _family("credwarden_events_posted", [((), float(stats.events_posted))])
        if metrics.last_event is not None:
            yield _family("credwarden_last_event_timestamp_seconds", [((), metrics.last_event)])
        waiting = metrics.reconciler.queue.waiting_by_lane()
        yield _family(
            "credwarden_write_queue_plans",
            [((lane.name.lower(),), float(count)) for lane, count in waiting.items()],
        )
        ready = 1.0 if metrics.reconciler.ready.is_set() else 0.0
        yield _family("credwarden_ready", [((), ready)])
        yield _family("credwarden_build_info", [((__version__,), 1.0)])


# ---- one operator's metrics --------------------------------------------------------------------
_ACTIVE: list[OperatorMetrics] = []


class OperatorMetrics:
    """The metrics of one operator: its registry, its counters and its hooks."""

    def __init__(
        self,
        state: OperatorState,
        *,
        per_credential: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.state = state
        self.reconciler = state.reconciler
        self.client: KubeClient = state.client
        self.per_credential = per_credential
        self.clock = clock
        self.revocations: dict[tuple[str, str], float] = {}
        self.rotations: dict[tuple[str, str], float] = {}
        self.blocked: dict[tuple[str, str], float] = {}
        self.api_errors: dict[tuple[str, str], float] = {}
        self.last_event: float | None = None
        self.credentials = CredentialCollector(
            self.reconciler, per_credential=per_credential, clock=clock
        )
        # `base`: everything but the credential families (the server renders those itself)
        self.base = CollectorRegistry(auto_describe=False)
        self.registry = CollectorRegistry(auto_describe=False)
        self.reconcile_duration = Histogram(
            "credwarden_reconcile_duration_seconds", RECONCILE_BUCKETS
        )
        operator = OperatorCollector(self)
        for registry in (self.base, self.registry):
            registry.register(operator)
            ProcessCollector(registry=registry)
            PlatformCollector(registry=registry)
            if GC_COLLECTOR is not None:
                GCCollector(registry=registry)
        self.registry.register(self.credentials)
        self._previous_on_error: Callable[[str, str], None] | None = None
        self._attached = False

    # ---- hooks -----------------------------------------------------------------------------
    def attach(self) -> OperatorMetrics:
        """Hook into the reconciler (listeners, pass listeners) and the client (on_error)."""
        if self._attached:
            return self
        self.reconciler.listeners.append(self._evaluated)
        self.reconciler.pass_listeners.append(self._pass_done)
        enforcer = getattr(self.reconciler, "enforcer", None)
        if enforcer is not None:
            enforcer.listeners.append(self._enforced)
        self._previous_on_error = self.client.on_error
        self.client.on_error = self._api_error
        _ACTIVE.append(self)
        self._attached = True
        return self

    def close(self) -> None:
        if not self._attached:
            return
        with contextlib.suppress(ValueError):
            self.reconciler.listeners.remove(self._evaluated)
        with contextlib.suppress(ValueError):
            self.reconciler.pass_listeners.remove(self._pass_done)
        enforcer = getattr(self.reconciler, "enforcer", None)
        if enforcer is not None:
            with contextlib.suppress(ValueError):
                enforcer.listeners.remove(self._enforced)
        if self.client.on_error == self._api_error:
            self.client.on_error = self._previous_on_error
        with contextlib.suppress(ValueError):
            _ACTIVE.remove(self)
        self._attached = False

    def _evaluated(self, record: LifecycleRecord | None, key: CredentialKey) -> None:
        self.last_event = self.clock()

    def _pass_done(self, seconds: float, credentials: int) -> None:
        self.reconcile_duration.observe(seconds)

    def _enforced(self, kind: str, policy: str, result: str) -> None:
        """The Enforcer's listener: (revocation|rotation|blocked, policy, result or reason)."""
        if kind == "revocation":
            self.count_revocation(policy, result)
        elif kind == "rotation":
            self.count_rotation(policy, result)
        elif kind == "blocked":
            self.count_blocked(policy, result)

    def _api_error(self, verb: str, code: str) -> None:
        key = (label_token(verb), label_token(code))
        self.api_errors[key] = self.api_errors.get(key, 0.0) + 1
        if self._previous_on_error is not None:
            self._previous_on_error(verb, code)

    # ---- counters the enforcement code increments ---------------------------------------------
    def count_revocation(self, policy: str, result: str) -> None:
        _increment(self.revocations, policy, result)

    def count_rotation(self, policy: str, result: str) -> None:
        _increment(self.rotations, policy, result)

    def count_blocked(self, policy: str, reason: str) -> None:
        _increment(self.blocked, policy, reason)

    def policy_names(self) -> list[str]:
        return sorted(
            label_token(policy.display_name)
            for policy in self.state.inventory.policies.values()
            if not policy.error
        )

    # ---- exposition ----------------------------------------------------------------------------
    def generate(self) -> bytes:
        """The whole exposition through prometheus-client (slow at scale: tests, embedding)."""
        return generate_latest(self.registry)

    async def render(self) -> AsyncIterator[bytes]:
        """The exposition /metrics serves: chunks, with the event loop free in between."""
        yield generate_latest(self.base)
        async for text in self.credentials.render():
            yield text.encode()


def _increment(counts: dict[tuple[str, str], float], policy: str, label: str) -> None:
    key = (label_token(policy), label_token(label))
    counts[key] = counts.get(key, 0.0) + 1


def _targets(source: object | None) -> list[OperatorMetrics]:
    return [
        m
        for m in _ACTIVE
        if source is None
        or source is m.reconciler
        or source is m.client
        or source is getattr(m.reconciler, "enforcer", None)
    ]


# The Enforcer's listeners already feed these counters (OperatorMetrics.attach). The
# functions below are for any other code that revokes, rotates or holds an action back.
def count_revocation(policy: str, result: str, *, source: object | None = None) -> None:
    """A revocation was attempted: result `success`, `conflict` or `error`.

    Counted by the metrics of the operator `source` belongs to (its reconciler, enforcer or
    API client), else by every operator serving metrics in this process (in production,
    the one). A no-op when no metrics are served."""
    for metrics in _targets(source):
        metrics.count_revocation(policy, result)


def count_rotation(policy: str, result: str, *, source: object | None = None) -> None:
    """A rotation was attempted: result `success`, `conflict` or `error`."""
    for metrics in _targets(source):
        metrics.count_rotation(policy, result)


def count_blocked(policy: str, reason: str, *, source: object | None = None) -> None:
    """A planned revocation or rotation was held back; `reason` is a short token such as
    `budget`."""
    for metrics in _targets(source):
        metrics.count_blocked(policy, reason)


def metrics_of(source: object) -> OperatorMetrics | None:
    """The metrics attached to this reconciler (or its enforcer or client), if any."""
    found = _targets(source)
    return found[0] if found else None


# ---- the HTTP endpoint -------------------------------------------------------------------------
@dataclass
class MetricsServer:
    """A running /metrics endpoint; `await server.stop()` ends it and detaches the hooks."""

    metrics: OperatorMetrics
    runner: web.AppRunner
    host: str
    port: int

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}/metrics"

    async def stop(self) -> None:
        self.metrics.close()
        await self.runner.cleanup()

    async def __aenter__(self) -> MetricsServer:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()


def _accepts_gzip(request: web.Request) -> bool:
    return "gzip" in request.headers.get("Accept-Encoding", "").lower()


async def _serve(metrics: OperatorMetrics, request: web.Request) -> web.StreamResponse:
    gzip = _accepts_gzip(request)
    response = web.StreamResponse(headers={"Content-Type": CONTENT_TYPE})
    if gzip:
        response.headers["Content-Encoding"] = "gzip"
    await response.prepare(request)
    # level 1: at 100k credentials the text is ~40 MB; level 6 would cost seconds per scrape
    compressor = zlib.compressobj(1, zlib.DEFLATED, 31) if gzip else None
    async for chunk in metrics.render():
        await response.write(compressor.compress(chunk) if compressor else chunk)
    if compressor is not None:
        await response.write(compressor.flush())
    await response.write_eof()
    return response


async def serve_metrics(
    state: OperatorState,
    port: int = DEFAULT_PORT,
    host: str = "0.0.0.0",
    per_credential: bool = True,
) -> MetricsServer:
    """Serve /metrics for this operator on aiohttp (the event loop kopf runs in: no thread).

    Port 0 picks a free port (`server.port` says which). Returns the running server; stop
    it with `await server.stop()` before the operator stops.
    """
    metrics = OperatorMetrics(state, per_credential=per_credential).attach()

    async def handle(request: web.Request) -> web.StreamResponse:
        return await _serve(metrics, request)

    app = web.Application()
    app.add_routes([web.get("/metrics", handle)])
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except BaseException:
        metrics.close()
        await runner.cleanup()
        raise
    bound = next((int(address[1]) for address in runner.addresses), port)  # port 0: the OS's
    return MetricsServer(metrics, runner, host, bound)
