"""What kube-apiserver checks in a CRD's openAPIV3Schema, for tests that cannot run one.

Three parts, each modelled on apiextensions-apiserver (Kubernetes 1.30-era sources):

* `structural_errors`: the static checks applied when a CRD is created. From
  `pkg/apis/apiextensions/validation/validation.go` (ValidateCustomResourceDefinitionOpenAPISchema
  and specStandardValidatorV3), `pkg/apiserver/schema/validation.go` (ValidateStructural) and
  `pkg/apiserver/schema/defaulting/validation.go` (ValidateDefaults), plus the field list of
  JSONSchemaProps (anything else is an unknown field to the API).
* `apply_defaults`: request-time defaulting (`schema/defaulting/algorithm.go`), including the
  pruning of non-nullable nulls that runs before it.
* `validate_value` / `unknown_fields`: value validation (kube-openapi) and pruning.

Checks the API server does not make, but that catch generator bugs, are marked "(sanity)".
"""

from __future__ import annotations

import copy
import re
from typing import Any

Schema = dict[str, Any]

# The JSON names of apiextensions.k8s.io/v1 JSONSchemaProps: any other key is an unknown
# field and is rejected (strict field validation) or silently dropped.
SCHEMA_FIELDS = frozenset(
    {
        "id",
        "$schema",
        "$ref",
        "description",
        "type",
        "format",
        "title",
        "default",
        "maximum",
        "exclusiveMaximum",
        "minimum",
        "exclusiveMinimum",
        "maxLength",
        "minLength",
        "pattern",
        "maxItems",
        "minItems",
        "uniqueItems",
        "multipleOf",
        "enum",
        "maxProperties",
        "minProperties",
        "required",
        "items",
        "allOf",
        "oneOf",
        "anyOf",
        "not",
        "properties",
        "additionalProperties",
        "patternProperties",
        "dependencies",
        "additionalItems",
        "definitions",
        "externalDocs",
        "example",
        "nullable",
        "x-kubernetes-preserve-unknown-fields",
        "x-kubernetes-embedded-resource",
        "x-kubernetes-int-or-string",
        "x-kubernetes-list-map-keys",
        "x-kubernetes-list-type",
        "x-kubernetes-map-type",
        "x-kubernetes-validations",
    }
)
# specStandardValidatorV3.validate: "<field> is not supported".
UNSUPPORTED = ("id", "$ref", "definitions", "dependencies", "patternProperties", "additionalItems")
OPENAPI_TYPES = frozenset({"array", "boolean", "integer", "number", "object", "string"})
RULE_FIELDS = frozenset(
    {"rule", "message", "messageExpression", "reason", "fieldPath", "optionalOldSelf"}
)
RULE_REASONS = frozenset(
    {"FieldValueInvalid", "FieldValueForbidden", "FieldValueRequired", "FieldValueDuplicate"}
)
NESTED_KEYS = ("allOf", "anyOf", "oneOf", "not")
# Forbidden inside allOf/anyOf/oneOf/not (validateNestedValueValidation): these describe
# the structure, which must be given once, outside the logical junctors.
NESTED_FORBIDDEN = (
    "type",
    "default",
    "title",
    "description",
    "nullable",
    "externalDocs",
    "additionalProperties",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-embedded-resource",
    "x-kubernetes-int-or-string",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-list-type",
    "x-kubernetes-map-type",
    "x-kubernetes-validations",
)
INT_KEYWORDS = ("maxLength", "minLength", "maxItems", "minItems", "maxProperties", "minProperties")
META_FIELDS = ("apiVersion", "kind", "metadata")
# Go's RE2 has no lookaround and no backreferences; Python's `re` would accept them.
_NOT_RE2 = re.compile(r"\(\?[=!<]|\\[1-9]")


def structural_errors(root: Schema) -> list[str]:
    """Why kube-apiserver would reject `root` as a CRD version's openAPIV3Schema."""
    errors: list[str] = []
    _check(root, "openAPIV3Schema", "root", errors, meta_child=False, in_list=False)
    return errors


def _check(
    node: Any, path: str, level: str, errors: list[str], *, meta_child: bool, in_list: bool
) -> None:
    """One node of the structural part of the schema (properties, items, additionalProperties).

    `level` is root, field or item (the API server's levels); `meta_child` marks
    apiVersion/kind/metadata directly under the root, where defaults are forbidden;
    `in_list` marks nodes under a list's items, where rules cannot use oldSelf.
    """
    if not isinstance(node, dict):
        errors.append(f"{path}: must be a schema object")
        return
    _check_keywords(node, path, errors)
    preserve = node.get("x-kubernetes-preserve-unknown-fields") is True
    int_or_string = node.get("x-kubernetes-int-or-string") is True
    embedded = node.get("x-kubernetes-embedded-resource") is True
    kind = node.get("type")

    if not kind and not preserve and not int_or_string:
        errors.append(f"{path}.type: must not be empty ({level})")
    if level == "root" and kind not in (None, "object"):
        errors.append(f"{path}.type: must be object at the root")
    if kind == "array" and "items" not in node:
        errors.append(f"{path}.items: must be specified for type array")
    if embedded and kind != "object":
        errors.append(f"{path}.type: must be object if x-kubernetes-embedded-resource is true")
    if int_or_string and (preserve or embedded):
        errors.append(f"{path}: x-kubernetes-int-or-string excludes the other two extensions")
    if "additionalProperties" in node:
        extra = node["additionalProperties"]
        if level == "root":
            errors.append(f"{path}.additionalProperties: must not be used at the root")
        if node.get("properties") and (extra is False or isinstance(extra, dict)):
            errors.append(
                f"{path}.additionalProperties: additionalProperties and properties are "
                "mutual exclusive"
            )
        if embedded:
            errors.append(f"{path}.additionalProperties: not allowed on an embedded resource")
        if isinstance(extra, dict):
            _check(
                extra,
                f"{path}.additionalProperties",
                "field",
                errors,
                meta_child=False,
                in_list=in_list,
            )
    if "items" in node:
        if isinstance(node["items"], list):
            errors.append(f"{path}.items: must be a schema object and not an array")
        else:
            list_type = node.get("x-kubernetes-list-type", "atomic")
            _check(
                node["items"],
                f"{path}.items",
                "item",
                errors,
                meta_child=False,
                in_list=in_list or list_type != "map",
            )
    for name, child in (node.get("properties") or {}).items():
        _check(
            child,
            f"{path}.properties[{name}]",
            "field",
            errors,
            meta_child=level == "root" and name in META_FIELDS,
            in_list=in_list,
        )
    if level == "root" or embedded:
        _check_resource_meta(node, path, level, errors)
    for key in NESTED_KEYS:
        branches = node.get(key)
        if branches is None:
            continue
        for index, branch in enumerate(branches if key != "not" else [branches]):
            where = f"{path}.{key}[{index}]" if key != "not" else f"{path}.not"
            _check_nested(branch, node, where, errors)
    _check_rules(node, path, errors, in_list=in_list)
    _check_list_and_map_types(node, path, errors)
    _check_default(node, path, errors, meta_child=meta_child)
    _check_enum(node, path, errors)


def _check_keywords(node: Schema, path: str, errors: list[str]) -> None:
    for key in sorted(set(node) - SCHEMA_FIELDS):
        errors.append(f"{path}.{key}: unknown field in JSONSchemaProps")
    for key in UNSUPPORTED:
        if key in node:
            errors.append(f"{path}.{key}: {key} is not supported")
    if "$schema" in node:
        errors.append(f"{path}.$schema: leftover JSON Schema dialect marker (sanity)")
    if node.get("uniqueItems") is True:
        errors.append(f"{path}.uniqueItems: cannot be set to true (quadratic runtime)")
    kind = node.get("type")
    if kind == "null":
        errors.append(f"{path}.type: cannot be null, use nullable")
    elif kind is not None and kind not in OPENAPI_TYPES:
        errors.append(f"{path}.type: unsupported value {kind!r}")
    if node.get("x-kubernetes-preserve-unknown-fields") is False:
        errors.append(f"{path}.x-kubernetes-preserve-unknown-fields: must be true or undefined")
    for key in INT_KEYWORDS:
        value = node.get(key)
        if value is not None and (not _is_int(value) or value < 0):
            errors.append(f"{path}.{key}: must be a non-negative integer")
    for key in ("exclusiveMinimum", "exclusiveMaximum"):
        if key in node and not isinstance(node[key], bool):
            errors.append(f"{path}.{key}: must be a boolean in OpenAPI v3.0")
    if "required" in node and not (
        isinstance(node["required"], list) and all(isinstance(r, str) for r in node["required"])
    ):
        errors.append(f"{path}.required: must be a list of property names")
    pattern = node.get("pattern")
    if pattern is not None:
        try:
            re.compile(pattern)
        except re.error as error:
            errors.append(f"{path}.pattern: must be a valid regular expression: {error}")
        if _NOT_RE2.search(pattern):
            errors.append(f"{path}.pattern: lookaround/backreferences are not RE2 syntax")


def _check_resource_meta(node: Schema, path: str, level: str, errors: list[str]) -> None:
    """apiVersion and kind are strings; metadata is an object restricting at most its name."""
    properties = node.get("properties") or {}
    for name in ("apiVersion", "kind"):
        if name in properties and properties[name].get("type") != "string":
            errors.append(f"{path}.properties[{name}].type: must be string")
    if "metadata" not in properties:
        return
    metadata = properties["metadata"]
    where = f"{path}.properties[metadata]"
    if metadata.get("type") != "object":
        errors.append(f"{where}.type: must be object")
    if level != "root":
        return
    # validateStructuralMetadataInvariants: after dropping `type` and a `properties` of
    # exactly name and/or generateName, nothing may be left.
    rest = {key: value for key, value in metadata.items() if key != "type"}
    names = set(rest.get("properties") or {})
    if names and names <= {"name", "generateName"}:
        rest.pop("properties")
    if rest:
        errors.append(
            f"{where}: must not specify anything other than name and generateName "
            f"(found {sorted(rest)})"
        )


def _check_nested(branch: Any, structural: Schema, path: str, errors: list[str]) -> None:
    """A value validation under allOf/anyOf/oneOf/not: no structure of its own."""
    if not isinstance(branch, dict):
        errors.append(f"{path}: must be a schema object")
        return
    _check_keywords(branch, path, errors)
    for key in NESTED_FORBIDDEN:
        if key in branch:
            errors.append(f"{path}.{key}: must be undefined to be structural")
    properties = branch.get("properties") or {}
    if "metadata" in properties:
        errors.append(f"{path}.properties[metadata]: must not be specified in a nested context")
    known = structural.get("properties") or {}
    for name, child in properties.items():
        # validateStructuralCompleteness: a nested validation may only talk about fields
        # that the structural part of the schema also specifies.
        if name not in known:
            errors.append(f"{path}.properties[{name}]: must have a structural counterpart")
        else:
            _check_nested(child, known[name], f"{path}.properties[{name}]", errors)
    if "items" in branch:
        if "items" not in structural:
            errors.append(f"{path}.items: must have a structural counterpart")
        else:
            _check_nested(branch["items"], structural["items"], f"{path}.items", errors)
    for key in NESTED_KEYS:
        inner = branch.get(key)
        if inner is None:
            continue
        for index, sub in enumerate(inner if key != "not" else [inner]):
            _check_nested(sub, structural, f"{path}.{key}[{index}]", errors)


def _check_rules(node: Schema, path: str, errors: list[str], *, in_list: bool) -> None:
    rules = node.get("x-kubernetes-validations")
    if rules is None:
        return
    if not isinstance(rules, list):
        errors.append(f"{path}.x-kubernetes-validations: must be a list")
        return
    for index, rule in enumerate(rules):
        where = f"{path}.x-kubernetes-validations[{index}]"
        if not isinstance(rule, dict):
            errors.append(f"{where}: must be an object")
            continue
        for key in sorted(set(rule) - RULE_FIELDS):
            errors.append(f"{where}.{key}: unknown field")
        text = str(rule.get("rule", "")).strip()
        message = rule.get("message")
        if not text:
            errors.append(f"{where}.rule: rule is not specified")
        if message is not None and not str(message).strip():
            errors.append(f"{where}.message: must be non-empty if specified")
        if message is not None and re.search(r"[\n\r]", str(message).strip()):
            errors.append(f"{where}.message: must not contain line breaks")
        if re.search(r"[\n\r]", text) and not message:
            errors.append(f"{where}.message: must be specified if rule contains line breaks")
        if "reason" in rule and rule["reason"] not in RULE_REASONS:
            errors.append(f"{where}.reason: unsupported value {rule['reason']!r}")
        if in_list and re.search(r"\boldSelf\b", text):
            errors.append(f"{where}.rule: oldSelf cannot be used on uncorrelatable list items")


def _check_list_and_map_types(node: Schema, path: str, errors: list[str]) -> None:
    list_type = node.get("x-kubernetes-list-type")
    if list_type is not None:
        if node.get("type") != "array":
            errors.append(f"{path}.type: must be array if x-kubernetes-list-type is specified")
        if list_type not in ("atomic", "set", "map"):
            errors.append(f"{path}.x-kubernetes-list-type: unsupported value {list_type!r}")
    keys = node.get("x-kubernetes-list-map-keys") or []
    if keys and list_type != "map":
        errors.append(f"{path}.x-kubernetes-list-type: must be map if list-map-keys is set")
    if list_type == "map":
        items = node.get("items") or {}
        if not keys:
            errors.append(f"{path}.x-kubernetes-list-map-keys: must not be empty for a map list")
        if items.get("type") != "object":
            errors.append(f"{path}.items.type: must be object for a map list")
        for key in keys:
            prop = (items.get("properties") or {}).get(key)
            if prop is None:
                errors.append(f"{path}.x-kubernetes-list-map-keys: {key} is not a property")
            elif key not in items.get("required", []) and "default" not in prop:
                errors.append(f"{path}.items.properties[{key}]: map key needs required/default")
    map_type = node.get("x-kubernetes-map-type")
    if map_type is not None:
        if node.get("type") != "object":
            errors.append(f"{path}.type: must be object if x-kubernetes-map-type is specified")
        if map_type not in ("atomic", "granular"):
            errors.append(f"{path}.x-kubernetes-map-type: unsupported value {map_type!r}")


def _check_default(node: Schema, path: str, errors: list[str], *, meta_child: bool) -> None:
    if "default" not in node:
        return
    default = node["default"]
    if meta_child:
        errors.append(f"{path}.default: must not be set in top-level apiVersion/kind/metadata")
        return
    # ValidateDefaults: the default must be pruned already (no unknown fields) and must
    # validate against the schema it sits in, CEL rules aside.
    for problem in unknown_fields(default, node, f"{path}.default"):
        errors.append(f"{problem}: default must not have unknown fields")
    errors.extend(validate_value(default, node, f"{path}.default"))


def _check_enum(node: Schema, path: str, errors: list[str]) -> None:
    """(sanity) An enum value the node's own type rejects can never be stored."""
    if "enum" not in node:
        return
    if not isinstance(node["enum"], list) or not node["enum"]:
        errors.append(f"{path}.enum: must be a non-empty list")
        return
    kind = node.get("type")
    for value in node["enum"]:
        if kind and not _has_type(value, kind) and not (value is None and node.get("nullable")):
            errors.append(f"{path}.enum: {value!r} is not of type {kind}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _has_type(value: Any, kind: str) -> bool:
    if kind == "integer":
        return _is_int(value)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    python_type = {"object": dict, "array": list, "string": str, "boolean": bool}.get(kind)
    return python_type is not None and isinstance(value, python_type)


def validate_value(value: Any, node: Schema, path: str) -> list[str]:
    """Errors kube-openapi's validator reports for `value` (no CEL, no pruning)."""
    errors: list[str] = []
    if value is None:
        if not node.get("nullable"):
            errors.append(f"{path}: must not be null")
        return errors
    kind = node.get("type")
    if node.get("x-kubernetes-int-or-string"):
        if not (_is_int(value) or isinstance(value, str)):
            errors.append(f"{path}: must be an integer or a string")
    elif kind and not _has_type(value, kind):
        errors.append(f"{path}: must be of type {kind}, got {type(value).__name__}")
        return errors
    if "enum" in node and value not in node["enum"]:
        errors.append(f"{path}: {value!r} is not one of {node['enum']}")
    if isinstance(value, str):
        if "pattern" in node and not re.search(go_regex(node["pattern"]), value):
            errors.append(f"{path}: {value!r} does not match {node['pattern']}")
        if "maxLength" in node and len(value) > node["maxLength"]:
            errors.append(f"{path}: longer than {node['maxLength']}")
        if "minLength" in node and len(value) < node["minLength"]:
            errors.append(f"{path}: shorter than {node['minLength']}")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in node and (
            value < node["minimum"] or (node.get("exclusiveMinimum") and value == node["minimum"])
        ):
            errors.append(f"{path}: {value} is below the minimum {node['minimum']}")
        if "maximum" in node and (
            value > node["maximum"] or (node.get("exclusiveMaximum") and value == node["maximum"])
        ):
            errors.append(f"{path}: {value} is above the maximum {node['maximum']}")
        if "multipleOf" in node and value % node["multipleOf"]:
            errors.append(f"{path}: not a multiple of {node['multipleOf']}")
    if isinstance(value, list):
        if "maxItems" in node and len(value) > node["maxItems"]:
            errors.append(f"{path}: more than {node['maxItems']} items")
        if "minItems" in node and len(value) < node["minItems"]:
            errors.append(f"{path}: fewer than {node['minItems']} items")
        if isinstance(node.get("items"), dict):
            for index, item in enumerate(value):
                errors.extend(validate_value(item, node["items"], f"{path}[{index}]"))
    if isinstance(value, dict):
        if "maxProperties" in node and len(value) > node["maxProperties"]:
            errors.append(f"{path}: more than {node['maxProperties']} properties")
        if "minProperties" in node and len(value) < node["minProperties"]:
            errors.append(f"{path}: fewer than {node['minProperties']} properties")
        for name in node.get("required", []):
            if name not in value:
                errors.append(f"{path}.{name}: required")
        properties = node.get("properties") or {}
        extra = node.get("additionalProperties")
        for name, item in value.items():
            if name in properties:
                errors.extend(validate_value(item, properties[name], f"{path}.{name}"))
            elif isinstance(extra, dict):
                errors.extend(validate_value(item, extra, f"{path}.{name}"))
    return errors


def go_regex(pattern: str) -> str:
    """`pattern` with Go's meaning of `$`: end of text (Python's also matches before a
    final newline, so `^90d$` would accept "90d\\n" where the API server rejects it).
    """
    out: list[str] = []
    in_class = escaped = False
    for char in pattern:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "[":
            in_class = True
        elif char == "]":
            in_class = False
        elif char == "$" and not in_class:
            out.append(r"\Z")
            continue
        out.append(char)
    return "".join(out)


def unknown_fields(
    value: Any, node: Schema, path: str, *, resource_root: bool = False
) -> list[str]:
    """Paths of the fields structural pruning would drop from `value`.

    At a resource root, metadata is pruned against ObjectMeta, not the schema: skipped.
    """
    if resource_root and isinstance(value, dict):
        value = {key: item for key, item in value.items() if key != "metadata"}
    if node.get("x-kubernetes-preserve-unknown-fields") and not node.get("properties"):
        return []
    found: list[str] = []
    if isinstance(value, dict) and node.get("type") == "object":
        properties = node.get("properties") or {}
        extra = node.get("additionalProperties")
        for name, item in value.items():
            if name in properties:
                found.extend(unknown_fields(item, properties[name], f"{path}.{name}"))
            elif isinstance(extra, dict):
                found.extend(unknown_fields(item, extra, f"{path}.{name}"))
            elif extra is not True and not node.get("x-kubernetes-preserve-unknown-fields"):
                found.append(f"{path}.{name}")
    elif isinstance(value, list) and isinstance(node.get("items"), dict):
        for index, item in enumerate(value):
            found.extend(unknown_fields(item, node["items"], f"{path}[{index}]"))
    return found


def apply_defaults(value: Any, node: Schema) -> Any:
    """A copy of `value` as the API server stores it: nulls pruned, then defaults applied.

    Mirrors PruneNonNullableNullsWithoutDefaults followed by Default: a field that is
    absent (or a non-nullable null) gets a copy of its default, and defaulting recurses
    into the value it just set.
    """
    value = copy.deepcopy(value)
    _default(value, node)
    return value


def _default(value: Any, node: Schema) -> None:
    if isinstance(value, dict):
        properties = node.get("properties") or {}
        for name, prop in properties.items():
            if value.get(name, ...) is None and not prop.get("nullable"):
                del value[name]
            if name not in value and "default" in prop:
                value[name] = copy.deepcopy(prop["default"])
        extra = node.get("additionalProperties")
        for name, item in value.items():
            if name in properties:
                _default(item, properties[name])
            elif isinstance(extra, dict):
                _default(item, extra)
    elif isinstance(value, list) and isinstance(node.get("items"), dict):
        for item in value:
            _default(item, node["items"])
