"""Telling people from workloads, and control-plane accounts from the rest.

A name alone never makes a finding: `human-identity` also needs that no workload runs as
the account (rules.py), because `kube-proxy` or `metrics-server` look like two words too.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from functools import lru_cache

# Common given names. A ServiceAccount called `<given>-<family>` (or `<given>.<family>`,
# `<given>_<family>`, `<initial>-<family>` is too vague and is left out) is likely a person.
GIVEN_NAMES = frozenset(
    """
    aaron adam adrian aidan alan albert alex alexander alexandra alice alicia alison amanda
    amber amy ana andrea andrew andy angela anna anne anthony antonio arthur ashley barbara
    ben benjamin beth betty bill bob bobby brad brandon brenda brian bruce bryan carl carlos
    carol caroline catherine charles charlie chris christian christina christine christopher
    cindy claire craig cynthia dan daniel danny david dean deborah debra denise dennis diana
    diane donald donna doris dorothy douglas dylan ed edward elena elizabeth ellen emily emma
    eric erin ethan eugene evelyn frank gabriel gary george gerald gloria grace greg gregory
    hannah harold harry heather helen henry ian isabella jack jacob jake james jamie jane janet
    janice jason jean jeff jeffrey jennifer jeremy jerry jessica jim jimmy joan joe joel john
    johnny jon jonathan jordan jose joseph josh joshua joyce juan judith judy julia julie justin
    karen kate katherine kathleen kathy keith kelly ken kenneth kevin kim kimberly kyle larry
    laura lauren lawrence linda lisa liz logan louis lucas luis luke madison marcus margaret
    maria marie marilyn mark martha martin mary matt matthew megan melissa michael michelle
    mike nancy natalie nathan nicholas nick nicole noah olivia oscar pamela patricia patrick
    paul peter philip priya rachel ralph randy raymond rebecca richard rick rob robert roger
    ronald rose roy russell ruth ryan sam samantha samuel sandra sara sarah scott sean sharon
    shirley sophia stephanie stephen steve steven susan tammy teresa terry thomas tim timothy
    tina todd tom tony tyler victoria vincent walter wayne william willie zachary
    """.split()
)
# Words that mark a workload, not a person, wherever they appear in the name.
WORKLOAD_WORDS = frozenset(
    """
    admission agent api app backup bot ci cd collector connector controller coredns cron csi
    daemon db deploy deployer dns driver exporter gateway grafana hook importer ingress job
    kube loader manager metrics monitor node operator pipeline plugin prometheus provisioner
    proxy reader reconciler registry runner scheduler server service sidecar sync syncer
    system token webhook worker writer
    """.split()
)
_SPLIT = re.compile(r"[-._]")

# Accounts the control plane creates in kube-system: kube-controller-manager's
# per-controller accounts and those of the usual add-ons.
CONTROL_PLANE_ACCOUNTS = (
    "default",
    "*-controller",
    "*-controller-manager",
    "attachdetach-controller",
    "bootstrap-signer",
    "certificate-controller",
    "clusterrole-aggregation-controller",
    "coredns",
    "expand-controller",
    "generic-garbage-collector",
    "horizontal-pod-autoscaler",
    "kube-dns",
    "kube-proxy",
    "legacy-service-account-token-cleaner",
    "metrics-server",
    "namespace-controller",
    "node-controller",
    "persistent-volume-binder",
    "pod-garbage-collector",
    "pv-protection-controller",
    "pvc-protection-controller",
    "resourcequota-controller",
    "root-ca-cert-publisher",
    "service-account-controller",
    "statefulset-controller",
    "token-cleaner",
    "ttl-after-finished-controller",
    "ttl-controller",
)


@lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except (re.error, OverflowError, RecursionError):  # e.g. a{4294967296}
        return None


def invalid_patterns(patterns: Sequence[str]) -> list[str]:
    return [pattern for pattern in patterns if _compiled(pattern) is None]


def looks_like_person(name: str, extra_patterns: Sequence[str] = ()) -> bool:
    """True for `john-smith`, `daniel.wilson`, `priya`-`admin`-style personal accounts."""
    return _looks_like_person(name, tuple(extra_patterns))


# the same few names (`default`, `builder`, `deployer`) recur in every namespace
@lru_cache(maxsize=8192)
def _looks_like_person(name: str, extra_patterns: tuple[str, ...]) -> bool:
    for pattern in extra_patterns:
        compiled = _compiled(pattern)
        if compiled is not None and compiled.fullmatch(name):
            return True
    words = [word for word in _SPLIT.split(name.lower()) if word]
    if not words or any(word in WORKLOAD_WORDS for word in words):
        return False
    if words[0] not in GIVEN_NAMES:
        return False
    # `john-smith`, `john`, `john-admin`, `john-smith-2`: a given name then at most two words
    return len(words) <= 3 and all(word.isalpha() or word.isdigit() for word in words)


def is_control_plane_account(name: str, extra: Sequence[str] = ()) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in (*CONTROL_PLANE_ACCOUNTS, *extra))
