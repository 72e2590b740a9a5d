#!/usr/bin/env python3
"""Validates Thinline's Kubernetes manifests against the API's schemas, offline.

    target/tools/kubernetes-validate/bin/python3 infra/k8s/validate.py [--self-test]

`cargo xtask test` runs both (xtask/src/k8s.rs), after installing the
pinned kubernetes-validate into that venv.

`check.py` holds the manifests to the security floor; this holds them to
the API: every field name, type and enum, with unknown fields refused
(`kubernetes-validate` strict schemas), so a typo such as
`readOnlyRootFilesytem` fails here instead of being dropped by the API
server, or refused at `kubectl apply` time in production.

Against which Kubernetes: KUBERNETES_VERSION, the oldest release hosts.yaml
says the manifests need (user namespaces for pods, `hostUsers: false`, on
by default from 1.33). A field added after it would break that promise and
fails here; newer releases keep every field 1.33 has in these kinds.

What is not a plain API object is validated for what it is:
- files under `variants/` are strategic merge patches. Each names the
  `kubectl -n NAMESPACE patch KIND NAME` that applies it; the patch is
  merged onto that object here (the subset of strategic merge patch the
  API's pod types use: lists of containers, volumes, env and mounts merge
  by their key, `null` deletes) and the result is validated as the object
  the cluster would hold.
- custom resources have no schema in kubernetes-validate. Each kind used
  here has a schema in CUSTOM_SCHEMAS written from its project's API
  reference, covering the fields these files use, unknown fields refused;
  a kind with neither schema fails, it is never skipped.

Exits 1 after listing every failure, 0 when every document validates.
"""

import copy
import re
import sys
from pathlib import Path

import jsonschema
import kubernetes_validate
from kubernetes_validate.utils import SchemaNotFoundError, ValidationError

import check

KUBERNETES_VERSION = "1.33.0"

# The list fields of the pod types whose items a strategic merge patch
# merges by a key (the API's `patchMergeKey`); any other list is replaced.
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "env": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "ports": "containerPort",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
}

PATCH_COMMAND = re.compile(r"kubectl\s+-n\s+(\S+)\s+patch\s+(\S+)\s+(\S+)")

STRING = {"type": "string"}
STRINGS = {"type": "array", "items": STRING}
STRING_MAP = {"type": "object", "additionalProperties": STRING}


def closed(properties, required=()):
    """An object schema that refuses fields it does not name."""
    return {
        "type": "object",
        "properties": properties,
        "required": list(required),
        "additionalProperties": False,
    }


# cert-manager.io/v1 Certificate, from cert-manager's API reference
# (cert-manager.io/docs/reference/api-docs): the fields a Certificate for
# these servers needs. A field used here that is missing from this schema
# fails: add it, from the reference, with its type.
CERTIFICATE = closed(
    {
        "apiVersion": {"const": "cert-manager.io/v1"},
        "kind": {"const": "Certificate"},
        "metadata": closed(
            {"name": STRING, "namespace": STRING, "labels": STRING_MAP, "annotations": STRING_MAP},
            required=["name"],
        ),
        "spec": closed(
            {
                "secretName": STRING,
                "commonName": STRING,
                "dnsNames": STRINGS,
                "ipAddresses": STRINGS,
                "duration": STRING,
                "renewBefore": STRING,
                "usages": STRINGS,
                "secretTemplate": closed({"labels": STRING_MAP, "annotations": STRING_MAP}),
                "privateKey": closed(
                    {
                        "algorithm": {"enum": ["RSA", "ECDSA", "Ed25519"]},
                        "size": {"type": "integer"},
                        "encoding": {"enum": ["PKCS1", "PKCS8"]},
                        "rotationPolicy": {"enum": ["Never", "Always"]},
                    }
                ),
                "issuerRef": closed({"name": STRING, "kind": STRING, "group": STRING}, required=["name"]),
            },
            required=["secretName", "issuerRef"],
        ),
    },
    required=["apiVersion", "kind", "metadata", "spec"],
)

CUSTOM_SCHEMAS = {("cert-manager.io/v1", "Certificate"): CERTIFICATE}


class PatchError(Exception):
    pass


def strategic_merge(base, patch, field=None):
    """`patch` merged onto `base` as a strategic merge patch would be."""
    if isinstance(patch, dict):
        for key in patch:
            if str(key).startswith("$"):
                raise PatchError(f"the directive {key} is not supported here: write the patch without it")
        if not isinstance(base, dict):
            return copy.deepcopy(patch)
        merged = copy.deepcopy(base)
        for key, value in patch.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = strategic_merge(base.get(key), value, key)
        return merged
    if isinstance(patch, list) and isinstance(base, list) and field in MERGE_KEYS:
        key = MERGE_KEYS[field]
        merged = copy.deepcopy(base)
        for item in patch:
            if not isinstance(item, dict) or key not in item:
                raise PatchError(f"an item of {field} has no {key}, which strategic merge patches match it by")
            match = [i for i, old in enumerate(merged) if isinstance(old, dict) and old.get(key) == item[key]]
            if match:
                merged[match[0]] = strategic_merge(merged[match[0]], item, field)
            else:
                merged.append(copy.deepcopy(item))
        return merged
    return copy.deepcopy(patch)


def patch_target(path):
    """The (namespace, kind, name) a variant's header says to patch."""
    found = PATCH_COMMAND.search(Path(path).read_text())
    if not found:
        raise PatchError(
            "a patch must name what it patches in its header, as the command that applies it: "
            "`kubectl -n NAMESPACE patch KIND NAME --patch-file ...`"
        )
    return found.groups()


def what_to_validate(manifests):
    """(label, object) pairs: every plain document, and every patch merged onto its target."""
    objects, failures = [], []
    for m in manifests:
        if not m.patch:
            objects.append((m.where(), m.doc))
            continue
        try:
            namespace, kind, name = patch_target(m.path)
            bases = [
                b.doc
                for b in manifests
                if not b.patch
                and str(b.doc.get("kind", "")).lower() == kind.lower()
                and (b.doc.get("metadata") or {}).get("namespace") == namespace
                and (b.doc.get("metadata") or {}).get("name") == name
            ]
            if len(bases) != 1:
                raise PatchError(f"its header patches {kind} {namespace}/{name}, which is not defined (once) here")
            objects.append((f"{m.path} applied to {bases[0]['kind']} {namespace}/{name}", strategic_merge(bases[0], m.doc)))
        except PatchError as error:
            failures.append(f"{m.path}: {error}")
    return objects, failures


def validate_object(doc):
    """None when `doc` validates, else why not."""
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        return None
    except ValidationError as error:
        where = ".".join(str(part) for part in error.path) or "(top)"
        return f"{where}: {error.message}"
    except SchemaNotFoundError as not_found:
        schema = CUSTOM_SCHEMAS.get((doc.get("apiVersion"), doc.get("kind")))
        if schema is None:
            return (
                f"{not_found.message}, and validate.py has no schema for it: add one to CUSTOM_SCHEMAS "
                "from that project's API reference"
            )
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(doc), key=lambda e: list(e.path))
    if errors:
        where = ".".join(str(part) for part in errors[0].path) or "(top)"
        return f"{where}: {errors[0].message} (schema: validate.py CUSTOM_SCHEMAS)"
    return None


def validate(manifests):
    objects, failures = what_to_validate(manifests)
    for label, doc in objects:
        problem = validate_object(doc)
        if problem:
            failures.append(f"{label}: {problem}")
    return len(objects), failures


def self_test():
    """The validator refuses what it claims to, on the real manifests."""
    here = Path(__file__).resolve().parent
    manifests = check.load([here])
    count, failures = validate(manifests)
    assert failures == [], failures

    def host_set(docs):
        return next(m.doc for m in docs if m.doc.get("kind") == "StatefulSet")

    def broken(mutate, patch=False):
        docs = copy.deepcopy(manifests)
        mutate(next(m for m in docs if m.patch) if patch else docs)
        return validate(docs)[1]

    def typo(docs):
        context = host_set(docs)["spec"]["template"]["spec"]["containers"][0]["securityContext"]
        context["readOnlyRootFilesytem"] = context.pop("readOnlyRootFilesystem")

    def certificate_typo(docs):
        certificate = next(m.doc for m in docs if m.doc.get("kind") == "Certificate")
        certificate["spec"]["dnsName"] = certificate["spec"].pop("dnsNames")

    def patch_typo(variant):
        variant.doc["spec"]["template"]["spec"]["containers"][0]["securityContext"]["runAsUsr"] = 1000

    def unknown_kind(docs):
        docs[0].doc = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}

    def wrong_type(docs):
        host_set(docs)["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = "sixty"

    cases = [
        ("readOnlyRootFilesytem", broken(typo)),
        ("dnsName", broken(certificate_typo)),
        ("runAsUsr", broken(patch_typo, patch=True)),
        ("add one to CUSTOM_SCHEMAS", broken(unknown_kind)),
        ("terminationGracePeriodSeconds", broken(wrong_type)),
    ]
    for expected, problems in cases:
        assert any(expected in p for p in problems), f"{expected!r} not caught: {problems}"

    # The merge itself: containers by name, null deletes, other lists replaced.
    base = {"spec": {"containers": [{"name": "a", "args": ["x"], "securityContext": {"capabilities": {"add": ["KILL"]}}}]}}
    patch = {"spec": {"containers": [{"name": "a", "args": ["y"], "securityContext": {"capabilities": {"add": None}}}]}}
    assert strategic_merge(base, patch) == {"spec": {"containers": [{"name": "a", "args": ["y"], "securityContext": {"capabilities": {}}}]}}
    variant = strategic_merge(host_set(manifests), next(m for m in manifests if m.patch).doc)
    host = variant["spec"]["template"]["spec"]["containers"][0]
    assert host["securityContext"]["runAsUser"] == 1000 and "add" not in host["securityContext"]["capabilities"]
    assert {"name": "THINLINE_ISOLATION", "value": "shared-uid"} in host["env"] and len(host["env"]) > 1
    print(f"validate.py self-test: {len(cases)} broken manifests refused, {count} good objects pass, patches merge")


def main(argv):
    if argv == ["--self-test"]:
        self_test()
        return 0
    manifests = check.load_arguments(argv, "validate.py")
    count, failures = validate(manifests)
    for failure in failures:
        print(failure, file=sys.stderr)
    if failures:
        print(
            f"validate.py: {len(failures)} of {count} objects do not validate against Kubernetes "
            f"{KUBERNETES_VERSION}: fix the fields named above",
            file=sys.stderr,
        )
        return 1
    print(f"validate.py: {count} objects valid against Kubernetes {KUBERNETES_VERSION} (strict), patches applied")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
