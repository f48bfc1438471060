"""`credwarden`: one entry point for every command."""

from __future__ import annotations

import argparse
import secrets
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from credwarden import __version__
from credwarden.engine import evaluate
from credwarden.facts import PolicyFacts, parse_time
from credwarden.gcpause import paused_collection
from credwarden.policies import POLICY_KINDS
from credwarden.records import Evaluation
from credwarden.report import RENDERERS
from credwarden.snapshot import (
    InputError,
    Snapshot,
    load_objects,
    load_policy_files,
    load_snapshot,
    parse_policy,
    policy_documents_of,
)

EXIT_OK, EXIT_FINDINGS, EXIT_BAD_INPUT = 0, 1, 2


def baseline_documents() -> list[dict[str, Any]]:
    text = resources.files("credwarden").joinpath("data/baseline.yaml").read_text()
    return [document for document in yaml.safe_load_all(text) if document]


def baseline_policies() -> list[PolicyFacts]:
    """The documented built-in baseline (data/baseline.yaml)."""
    return [
        parse_policy(document, f"baseline.yaml: document {index}")
        for index, document in enumerate(baseline_documents(), start=1)
    ]


def _parse_now(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC).replace(microsecond=0)
    parsed = parse_time(text)
    if parsed is None:
        raise InputError(
            f"--now: expected an RFC 3339 time such as 2026-01-31T12:00:00Z, got {text!r}"
        )
    return parsed


def _fails(evaluation: Evaluation, fail_on: str) -> bool:
    if fail_on == "never":
        return False
    severities = {"violation"} if fail_on == "violation" else {"violation", "warning"}
    return any(
        finding.severity in severities
        for record in evaluation.records
        for finding in record.findings
    )


def run_audit(
    snapshot: Snapshot, policy_files: Sequence[Path], now: datetime
) -> tuple[Evaluation, str]:
    """Evaluate a snapshot. Policies: --policy files, else the snapshot's own, else baseline."""
    if policy_files:
        policies, source = load_policy_files(policy_files), "--policy files"
    elif snapshot.policies:
        policies, source = snapshot.policies, "the snapshot's policies"
    else:
        policies, source = baseline_policies(), "the built-in baseline"
    for policy in policies:
        snapshot.inventory.upsert_policy(policy)
    return evaluate(snapshot.inventory, now), source


def cmd_audit(args: argparse.Namespace) -> int:
    now = _parse_now(args.now)
    # values are hashed under a key that exists only for this run
    hash_key = secrets.token_bytes(32)
    # a one-shot run whose objects all live until it exits: the cyclic GC stays paused
    # throughout (see gcpause), so it never walks the whole result after the evaluation
    with paused_collection():
        if args.snapshot:
            snapshot = load_snapshot(args.snapshot, hash_key)
        else:
            from credwarden.live import read_cluster

            snapshot = read_cluster(hash_key)
        evaluation, _ = run_audit(snapshot, args.policy or [], now)
        sys.stdout.write(RENDERERS[args.output](evaluation))
        return EXIT_FINDINGS if _fails(evaluation, args.fail_on) else EXIT_OK


def cmd_crds(args: argparse.Namespace) -> int:
    from credwarden import crdgen

    if args.output_dir:
        for path in crdgen.write_crds(Path(args.output_dir)):
            print(path)
    else:
        sys.stdout.write(crdgen.render_yaml())
    return EXIT_OK


def cmd_version(_: argparse.Namespace) -> int:
    print(f"credwarden {__version__}")
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    import asyncio
    import logging

    from credwarden import logs, scenario
    from credwarden.demo import run_demo, with_mode

    now = _parse_now(None)
    if args.snapshot:
        objects = load_objects(args.snapshot)
        policy_documents = (
            [*policy_documents_of(args.policy)]
            if args.policy
            else [d for d in objects if d.get("kind") in POLICY_KINDS] or baseline_documents()
        )
        objects = [d for d in objects if d.get("kind") not in POLICY_KINDS]
    else:
        objects = scenario.build_objects(now)
        policy_documents = (
            [*policy_documents_of(args.policy)] if args.policy else scenario.example_policies()
        )
    policies = with_mode(policy_documents, args.mode)
    for index, policy in enumerate(policies, start=1):
        parse_policy(policy, f"policy {index}")  # bad input: one line, before anything runs
    # the report goes to stdout; log lines (warnings and worse) to stderr, as structured logs
    with logs.configured(level=logging.WARNING):
        return asyncio.run(
            run_demo(
                [*objects, *policies],
                now=now,
                seconds=args.seconds,
                dump=args.dump,
                metrics_port=args.metrics_port,
            )
        )


def cmd_run(args: argparse.Namespace) -> int:
    from credwarden.operate import run_operator

    return run_operator(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="credwarden",
        description="Enforce the lifecycle of Kubernetes credentials.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    audit = commands.add_parser(
        "audit",
        help="evaluate every credential once and report",
        description="Evaluate every ServiceAccount and Secret of a snapshot (or of the live "
        "cluster named by the kubeconfig) and report owner, expiry, status and findings.",
    )
    audit.add_argument(
        "--snapshot",
        action="append",
        type=Path,
        metavar="FILE",
        help="YAML or JSON from `kubectl get ... -A -o yaml` (repeatable); "
        "default: read the live cluster",
    )
    audit.add_argument(
        "--policy",
        action="append",
        type=Path,
        metavar="FILE",
        help="policy manifests (repeatable); default: the snapshot's policies, "
        "else the built-in baseline",
    )
    audit.add_argument("--now", metavar="RFC3339", help="evaluate as of this time (default: now)")
    audit.add_argument("--output", choices=sorted(RENDERERS), default="table")
    audit.add_argument(
        "--fail-on",
        choices=("warning", "violation", "never"),
        default="violation",
        help="exit 1 when a finding of this severity or worse exists (default: violation)",
    )
    audit.set_defaults(func=cmd_audit)

    demo = commands.add_parser(
        "demo",
        help="run the operator against an in-process cluster (the example MLOps cluster)",
        description="Run the real operator against an in-process Kubernetes API preloaded with "
        "the example MLOps cluster (or --snapshot), print the lifecycle table and the Events "
        "it posted, and exit once converged.",
    )
    demo.add_argument("--snapshot", action="append", type=Path, metavar="FILE")
    demo.add_argument(
        "--policy",
        action="append",
        type=Path,
        metavar="FILE",
        help="default: the example policies; with --snapshot, the snapshot's or the baseline",
    )
    demo.add_argument("--mode", choices=("Audit", "Enforce"), help="force every policy's mode")
    demo.add_argument(
        "--for",
        dest="seconds",
        type=float,
        metavar="SECONDS",
        help="keep running this long (default: until converged, then exit)",
    )
    demo.add_argument(
        "--dump",
        type=Path,
        metavar="FILE",
        help="write every object and event at the end as a v1 List (Secret values emptied)",
    )
    demo.add_argument("--metrics-port", type=int, metavar="PORT", help="serve /metrics here")
    demo.set_defaults(func=cmd_demo)

    run = commands.add_parser(
        "run",
        help="run the operator against the cluster",
        description="Run the operator against the cluster of the in-cluster ServiceAccount or "
        "the kubeconfig: cluster-wide unless --namespace is given.",
    )
    run.add_argument(
        "--namespace",
        action="append",
        default=[],
        metavar="PATTERN",
        help="watch only matching namespaces: comma-separated globs, `!` negates "
        "(e.g. 'team-*,!team-sandbox'); repeatable",
    )
    run.add_argument("--health-port", type=int, default=8080, help="/healthz and /readyz")
    run.add_argument("--metrics-port", type=int, default=9402, help="/metrics (0: off)")
    run.add_argument("--qps", type=float, default=20.0, help="client-side write rate limit")
    run.add_argument("--burst", type=int, default=50)
    run.add_argument("--log-format", choices=("json", "console"), default=None)
    run.add_argument(
        "--no-leader-election",
        dest="leader_election",
        action="store_false",
        help="act without holding the credwarden-leader Lease (one replica only)",
    )
    run.add_argument(
        "--no-per-credential-metrics",
        dest="per_credential_metrics",
        action="store_false",
        help="export per-namespace aggregates only (very large clusters)",
    )
    run.set_defaults(func=cmd_run)

    crds = commands.add_parser("crds", help="print the CustomResourceDefinitions")
    crds.add_argument("--output-dir", metavar="DIR", help="write one file per CRD into DIR")
    crds.set_defaults(func=cmd_crds)

    version = commands.add_parser("version", help="print the version")
    version.set_defaults(func=cmd_version)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except InputError as error:
        print(f"credwarden: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:
        return EXIT_OK
    return code


if __name__ == "__main__":
    sys.exit(main())
