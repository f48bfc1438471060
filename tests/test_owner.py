"""Who owns a credential, and where that answer came from."""

from __future__ import annotations

import pytest

from conftest import (
    ago,
    baseline_policy,
    build_inventory,
    cluster_policy,
    evaluate_objects,
    managed_field,
    namespace,
    opaque_secret,
    owner_reference,
    record_of,
    rules_of,
    service_account,
    tls_secret,
    token_secret,
)
from credwarden.facts import meta_of
from credwarden.owner import explicit_owner, infer_owner

OWNER = "credwarden.io/owner"
SOURCE = "credwarden.io/owner-source"
SA = "ServiceAccount"
HELM = {"meta.helm.sh/release-name": "grafana", "meta.helm.sh/release-namespace": "mon"}
ARGO_TRACKING = {"argocd.argoproj.io/tracking-id": "ml-platform:/Secret:ml/db"}
ARGO_LABEL = {"argocd.argoproj.io/instance": "ml-apps"}
CERT_MANAGER = {"cert-manager.io/certificate-name": "web-cert"}
EXTERNAL_SECRET = owner_reference(
    "ExternalSecret", "db-creds", api_version="external-secrets.io/v1beta1"
)


def owner_of(body, *others, policies=None, kind="Secret"):
    policies = policies if policies is not None else [baseline_policy()]
    evaluation = evaluate_objects([body, *others], policies)
    meta = body["metadata"]
    record = record_of(evaluation, meta["name"], meta["namespace"], kind)
    return record.owner, record.owner_source


# ---- the owner annotation: set by a person or by credwarden ----------------------------


def test_owner_annotation_set_by_a_person() -> None:
    assert owner_of(opaque_secret("s", annotations={OWNER: "data-team"})) == (
        "data-team",
        "annotation",
    )


def test_owner_annotation_set_by_a_person_according_to_managed_fields() -> None:
    body = opaque_secret(
        "s",
        labels={"team": "label-team"},
        # credwarden wrote a source once, but managedFields say a person set the owner
        annotations={OWNER: "alice-team", SOURCE: "label:team"},
        managed_fields=[
            managed_field("kubectl-annotate", ago(1), annotations=[OWNER]),
            managed_field("credwarden", ago(2), annotations=[SOURCE]),
        ],
    )
    assert owner_of(body) == ("alice-team", "annotation")


def test_owner_annotation_written_by_credwarden_is_not_an_input() -> None:
    body = opaque_secret(
        "s",
        labels={"team": "new-team"},
        annotations={OWNER: "old-team", SOURCE: "label:team"},
        managed_fields=[managed_field("credwarden", ago(1), annotations=[OWNER, SOURCE])],
    )
    assert owner_of(body) == ("new-team", "label:team")


def test_owner_annotation_written_by_credwarden_and_nothing_else_means_no_owner() -> None:
    body = opaque_secret(
        "s",
        annotations={OWNER: "gone-team", SOURCE: "label:team"},
        managed_fields=[managed_field("credwarden", ago(1), annotations=[OWNER, SOURCE])],
    )
    evaluation = evaluate_objects([body], [baseline_policy()])
    record = record_of(evaluation, "s")
    assert (record.owner, record.owner_source) == (None, None)
    assert "missing-owner" in rules_of(record)


@pytest.mark.parametrize(
    ("source", "explicit"),
    [
        (None, True),
        ("", True),
        ("annotation", True),
        ("label:team", False),
        ("namespace", False),
        ("helm", False),
    ],
)
def test_owner_source_decides_without_managed_fields(source, explicit) -> None:
    annotations = {OWNER: "someone"}
    if source is not None:
        annotations[SOURCE] = source
    meta = meta_of(opaque_secret("s", annotations=annotations))
    assert (explicit_owner(meta) == "someone") is explicit


def test_managed_fields_that_do_not_mention_the_owner_fall_back_to_the_source() -> None:
    body = opaque_secret(
        "s",
        annotations={OWNER: "someone", SOURCE: "namespace"},
        managed_fields=[managed_field("kubectl", ago(3), data=True)],
    )
    assert explicit_owner(meta_of(body)) is None


def test_empty_owner_annotation_is_no_owner() -> None:
    assert owner_of(opaque_secret("s", annotations={OWNER: ""})) == (None, None)


# ---- policy keys -----------------------------------------------------------------------


def test_policy_annotation_keys_come_after_the_owner_annotation() -> None:
    policies = [
        cluster_policy("p", ownership={"annotationKeys": ["example.com/team", "example.com/owner"]})
    ]
    body = opaque_secret(
        "s", annotations={"example.com/owner": "o", "example.com/team": "t"}, labels={"owner": "l"}
    )
    assert owner_of(body, policies=policies) == ("t", "annotation:example.com/team")
    body["metadata"]["annotations"][OWNER] = "explicit"
    assert owner_of(body, policies=policies) == ("explicit", "annotation")


def test_default_label_keys() -> None:
    assert owner_of(opaque_secret("s", labels={"owner": "o", "team": "t"})) == ("o", "label:owner")
    assert owner_of(opaque_secret("s", labels={"team": "t"})) == ("t", "label:team")


def test_custom_label_keys_replace_the_defaults() -> None:
    policies = [cluster_policy("p", ownership={"labelKeys": ["squad"]})]
    assert owner_of(opaque_secret("s", labels={"squad": "sq", "team": "t"}), policies=policies) == (
        "sq",
        "label:squad",
    )
    assert owner_of(opaque_secret("s", labels={"team": "t"}), policies=policies) == (None, None)


def test_keys_of_every_governing_policy_count() -> None:
    policies = [
        cluster_policy("a", ownership={"labelKeys": ["squad"]}),
        cluster_policy("b", ownership={"labelKeys": ["cost-center"]}),
    ]
    assert owner_of(opaque_secret("s", labels={"cost-center": "cc"}), policies=policies) == (
        "cc",
        "label:cost-center",
    )


def test_keys_of_a_policy_that_does_not_govern_do_not_count() -> None:
    policies = [
        cluster_policy("base", ownership={"labelKeys": []}),
        cluster_policy(
            "other", selector={"matchLabels": {"x": "y"}}, ownership={"labelKeys": ["squad"]}
        ),
    ]
    assert owner_of(opaque_secret("s", labels={"squad": "sq"}), policies=policies) == (None, None)


# ---- controllers and deployment tools --------------------------------------------------


def test_controller_owner_reference() -> None:
    body = opaque_secret("s", owner_references=[EXTERNAL_SECRET])
    assert owner_of(body) == ("ExternalSecret/db-creds", "ownerReference")


@pytest.mark.parametrize(
    ("kind", "api"),
    [("SealedSecret", "bitnami.com/v1alpha1"), ("Certificate", "cert-manager.io/v1")],
)
def test_other_controllers(kind, api) -> None:
    body = opaque_secret("s", owner_references=[owner_reference(kind, "x", api_version=api)])
    assert owner_of(body) == (f"{kind}/x", "ownerReference")


def test_non_controller_owner_reference_is_not_an_owner() -> None:
    body = opaque_secret(
        "s", owner_references=[owner_reference("ConfigMap", "cm", controller=False)]
    )
    assert owner_of(body) == (None, None)


def test_cert_manager_certificate_annotation() -> None:
    # cert-manager sets no ownerReference on its Secrets by default
    body = tls_secret("web-tls", annotations=CERT_MANAGER)
    assert owner_of(body) == ("Certificate/web-cert", "cert-manager")


def test_helm_and_argo() -> None:
    assert owner_of(opaque_secret("s", annotations=HELM)) == ("helm:grafana", "helm")
    assert owner_of(opaque_secret("s", annotations=ARGO_TRACKING)) == (
        "argocd:ml-platform",
        "argocd",
    )
    assert owner_of(opaque_secret("s", labels=ARGO_LABEL)) == ("argocd:ml-apps", "argocd")


def test_inference_order() -> None:
    everything = dict(
        labels={"team": "t", **ARGO_LABEL},
        annotations={OWNER: "explicit", **CERT_MANAGER, **HELM, **ARGO_TRACKING},
        owner_references=[EXTERNAL_SECRET],
    )
    expected = [
        ("explicit", "annotation"),
        ("t", "label:team"),
        ("ExternalSecret/db-creds", "ownerReference"),
        ("Certificate/web-cert", "cert-manager"),
        ("helm:grafana", "helm"),
        ("argocd:ml-platform", "argocd"),
        ("argocd:ml-apps", "argocd"),
        ("ns-owner", "namespace"),
    ]
    ns = namespace("default", annotations={OWNER: "ns-owner"})
    for answer in expected:
        body = opaque_secret("s", **everything)
        assert owner_of(body, ns) == answer
        # take away the source that answered and ask again
        if answer[1] == "annotation":
            del everything["annotations"][OWNER]
        elif answer[1].startswith("label"):
            del everything["labels"]["team"]
        elif answer[1] == "ownerReference":
            everything["owner_references"] = []
        elif answer[1] == "cert-manager":
            del everything["annotations"]["cert-manager.io/certificate-name"]
        elif answer[1] == "helm":
            for key in HELM:
                del everything["annotations"][key]
        elif answer[0] == "argocd:ml-platform":
            del everything["annotations"]["argocd.argoproj.io/tracking-id"]
        elif answer[0] == "argocd:ml-apps":
            everything["labels"] = {}


# ---- inherited owners ------------------------------------------------------------------


def test_token_secret_inherits_its_service_accounts_owner() -> None:
    account = service_account("ci", labels={"team": "ci-team"})
    tok = token_secret("ci-token", service_account="ci")
    assert owner_of(tok, account) == ("ci-team", "serviceaccount")
    # its own owner comes first
    own = token_secret("ci-token", service_account="ci", annotations={OWNER: "me"})
    assert owner_of(own, account) == ("me", "annotation")


def test_token_secret_inherits_an_explicit_account_owner_but_not_credwardens() -> None:
    explicit = service_account("ci", annotations={OWNER: "person-set"})
    assert owner_of(token_secret("t", service_account="ci"), explicit) == (
        "person-set",
        "serviceaccount",
    )
    written = service_account(
        "ci",
        annotations={OWNER: "ns-owner", SOURCE: "namespace"},
        managed_fields=[managed_field("credwarden", ago(1), annotations=[OWNER, SOURCE])],
    )
    ns = namespace("default", annotations={OWNER: "ns-owner"})
    assert owner_of(token_secret("t", service_account="ci"), written, ns) == (
        "ns-owner",
        "namespace",
    )


def test_token_of_a_missing_account_falls_back_to_the_namespace() -> None:
    ns = namespace("default", annotations={OWNER: "ns-owner"})
    assert owner_of(token_secret("t", service_account="gone"), ns) == ("ns-owner", "namespace")


def test_opaque_secret_does_not_inherit_from_an_account_of_the_same_name() -> None:
    account = service_account("app", labels={"team": "t"})
    assert owner_of(opaque_secret("app"), account) == (None, None)


def test_namespace_owner_for_accounts_and_secrets() -> None:
    ns = namespace("ml", annotations={OWNER: "ml-team"}, labels={"team": "label-is-not-used"})
    assert owner_of(opaque_secret("s", "ml"), ns) == ("ml-team", "namespace")
    assert owner_of(service_account("app", "ml"), ns, kind=SA) == ("ml-team", "namespace")
    other = namespace("ml", labels={"team": "x"})
    assert owner_of(opaque_secret("s", "ml"), other) == (None, None)


def test_infer_owner_directly() -> None:
    inventory = build_inventory(
        [service_account("ci", annotations={OWNER: "sa-owner"}), namespace("default")]
    )
    meta = meta_of(token_secret("t", service_account="ci"))
    assert infer_owner(meta, inventory, service_account="ci") == ("sa-owner", "serviceaccount")
    assert infer_owner(meta, inventory) == (None, None)
    assert infer_owner(meta_of(opaque_secret("s", labels={"team": "t"})), inventory) == (None, None)
    assert infer_owner(
        meta_of(opaque_secret("s", labels={"team": "t"})), inventory, label_keys=["team"]
    ) == ("t", "label:team")
