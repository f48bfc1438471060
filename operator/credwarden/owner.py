"""Who owns a credential, and where that answer came from.

Order (first hit wins): an explicit `credwarden.io/owner` annotation; the policy's extra
annotation keys; its label keys; the controller in ownerReferences (ExternalSecret,
SealedSecret, Certificate, ...); cert-manager's certificate-name annotation; Helm;
Argo CD; for a token Secret, its ServiceAccount's owner; the namespace's
`credwarden.io/owner` annotation.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from credwarden.facts import OWNER_ANNOTATION as OWNER_ANNOTATION  # re-exported
from credwarden.facts import Meta
from credwarden.inventory import Inventory

OWNER_SOURCE_ANNOTATION = "credwarden.io/owner-source"
FIELD_MANAGER = "credwarden"
HELM_RELEASE = "meta.helm.sh/release-name"
CERT_MANAGER_CERTIFICATE = "cert-manager.io/certificate-name"
ARGOCD_TRACKING = "argocd.argoproj.io/tracking-id"
ARGOCD_INSTANCE = "argocd.argoproj.io/instance"

Owner = tuple[str | None, str | None]
# Owners and sources built here repeat across a cluster's credentials (a team, a Helm
# release): interned, every record shares one copy of each.
_intern = sys.intern


def explicit_owner(meta: Meta) -> str | None:
    """The `credwarden.io/owner` annotation when a person set it, not credwarden.

    credwarden writes the owner it infers into the same annotation. Where managedFields
    say who set it, that decides; otherwise `credwarden.io/owner-source` does (credwarden
    writes a source other than `annotation` beside an inferred owner).
    """
    value = meta.annotation(OWNER_ANNOTATION)
    if not value:
        return None
    manager = meta.owner_annotation_manager
    if manager:
        return None if manager == FIELD_MANAGER else value
    source = meta.annotation(OWNER_SOURCE_ANNOTATION)
    return value if source in (None, "", "annotation") else None


def _own_owner(meta: Meta, annotation_keys: Sequence[str], label_keys: Sequence[str]) -> Owner:
    explicit = explicit_owner(meta)
    if explicit:
        return explicit, "annotation"
    for key in annotation_keys:
        if value := meta.annotation(key):
            return value, _intern(f"annotation:{key}")
    for key in label_keys:
        if value := meta.labels.get(key):
            return value, _intern(f"label:{key}")
    controller = meta.controller
    if controller is not None and controller.kind and controller.name:
        return _intern(f"{controller.kind}/{controller.name}"), "ownerReference"
    # cert-manager sets no ownerReference by default, but names its Certificate
    if certificate := meta.annotation(CERT_MANAGER_CERTIFICATE):
        return _intern(f"Certificate/{certificate}"), "cert-manager"
    if release := meta.annotation(HELM_RELEASE):
        return _intern(f"helm:{release}"), "helm"
    if tracking := meta.annotation(ARGOCD_TRACKING):
        return _intern(f"argocd:{tracking.split(':', 1)[0]}"), "argocd"
    if instance := meta.labels.get(ARGOCD_INSTANCE):
        return _intern(f"argocd:{instance}"), "argocd"
    return None, None


def infer_owner(
    meta: Meta,
    inventory: Inventory,
    service_account: str | None = None,
    annotation_keys: Sequence[str] = (),
    label_keys: Sequence[str] = (),
) -> Owner:
    owner = _own_owner(meta, annotation_keys, label_keys)
    if owner[0]:
        return owner
    if service_account:
        account = inventory.service_accounts.get((meta.namespace, service_account))
        if account is not None:
            inherited, _ = _own_owner(account.meta, annotation_keys, label_keys)
            if inherited:
                return inherited, "serviceaccount"
    namespace = inventory.namespaces.get(meta.namespace)
    if namespace is not None and (value := namespace.annotations.get(OWNER_ANNOTATION)):
        return value, "namespace"
    return None, None
