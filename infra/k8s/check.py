#!/usr/bin/env python3
"""Checks Thinline's Kubernetes manifests against the deployment's floor.

    python3 infra/k8s/check.py            # every *.yaml under infra/k8s
    python3 infra/k8s/check.py DIR...     # or under these folders/files
    python3 infra/k8s/check.py --self-test

What must hold (issue 11, item 7), for every workload:
- every container has a securityContext with allowPrivilegeEscalation
  false, privileged not true, a read-only root file system and
  capabilities.drop [ALL]; hosts (pods labelled
  app.kubernetes.io/name=thinline-host) add back only HOST_CAPABILITIES,
  every other container adds none, runs as non-root and keeps a seccomp
  profile;
- every pod has automountServiceAccountToken false and runs under its own
  ServiceAccount, defined here with automountServiceAccountToken false;
- every container has resources.requests and resources.limits for cpu and
  memory;
- no container's command or args carry anything that looks like a secret
  (KEY=..., tokens, passwords, postgres://user:password@, --store, a
  $(VAR) expanding a Secret), and secret-looking environment variables
  come from a Secret, not a literal;
- no Secret with data is committed;
- every namespace that runs a workload has a default-deny NetworkPolicy
  for both ingress and egress;
- every container of a Deployment or StatefulSet has a readiness probe on
  /healthz and a liveness probe on /healthz, or on its port where /healthz
  reports the store (the directories': a restart cannot bring PostgreSQL
  back);
- hosts drain before they stop (issue 13): a preStop hook running
  `host-server drain`, THINLINE_CONTROL_SOCKET for it to reach the host
  by, and a terminationGracePeriodSeconds at least the hook's
  --timeout-secs plus DRAIN_OVERHEAD_SECONDS.

Files under a `variants/` folder are strategic merge patches: their
containers are held to the same rules for whatever they set.

Needs PyYAML (Debian: python3-yaml). Exits 1 after listing every
violation, 0 when everything holds.
"""

import copy
import re
import sys
from pathlib import Path

import yaml

# What a per-user host does between fork and exec and on homes; hosts.yaml
# says why for each. Nothing else may be added.
HOST_CAPABILITIES = {
    "CHOWN",
    "DAC_READ_SEARCH",
    "FOWNER",
    "KILL",
    "SETGID",
    "SETUID",
    "SYS_PTRACE",
}
HOST_LABEL = ("app.kubernetes.io/name", "thinline-host")

POD_TEMPLATE_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}

# Strings that must never be in a command line.
SECRET_IN_ARGV = [
    (re.compile(r"postgres(?:ql)?://[^/\s@:]*:[^/\s@]*@", re.I), "a database url with a password"),
    (re.compile(r"\b[A-Z][A-Z0-9_]*(?:KEY|TOKEN|SECRET|PASSWORD|PASSWD)[A-Z0-9_]*="), "a KEY=value assignment"),
    (re.compile(r"token", re.I), "a token"),
    (re.compile(r"passw(?:or)?d", re.I), "a password"),
    (re.compile(r"\bbearer\s", re.I), "a bearer credential"),
]
# Flags that carry a credential (a `-file` flag names a path instead).
SECRET_FLAG = re.compile(r"--([a-z0-9-]+)")
SECRET_FLAG_WORDS = ("token", "secret", "password", "passwd")
SECRET_FLAG_NAMES = {"store", "ticket-key"}
# Environment variables that hold credentials when they hold no path.
SECRET_ENV_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|_KEY$|^THINLINE_STORE$")
VAR_REFERENCE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")

PROBED_KINDS = {"Deployment", "StatefulSet"}
HEALTH_PATH = "/healthz"
# `host-server drain`'s default --timeout-secs.
DRAIN_TIMEOUT_SECONDS = 40
# A drain's steps besides the hook's wait for the sessions: telling the
# store (at most 2 s) and hanging up (5 s) before it, the connections SIGTERM
# closes (10 s) after it, and 3 s spare.
DRAIN_OVERHEAD_SECONDS = 20


class Manifest:
    def __init__(self, path, index, doc, patch):
        self.path, self.index, self.doc, self.patch = path, index, doc, patch

    def where(self):
        kind = self.doc.get("kind", "patch")
        meta = self.doc.get("metadata") or {}
        name = "/".join(p for p in (meta.get("namespace"), meta.get("name")) if p)
        return f"{self.path}: {kind} {name}".rstrip()


def load(paths):
    manifests = []
    for root in paths:
        root = Path(root)
        files = sorted(root.rglob("*.yaml")) + sorted(root.rglob("*.yml")) if root.is_dir() else [root]
        for path in files:
            try:
                docs = list(yaml.safe_load_all(path.read_text()))
            except yaml.YAMLError as error:
                raise SystemExit(f"{path}: not valid YAML: {error}")
            patch = "variants" in path.parts
            for index, doc in enumerate(docs):
                if doc is None:
                    continue
                if not isinstance(doc, dict):
                    raise SystemExit(f"{path}: document {index + 1} is not a mapping")
                manifests.append(Manifest(path, index, doc, patch))
    return manifests


def load_arguments(argv, program):
    """The manifests under the folders or files named, by default this one's; exits if there are none."""
    roots = argv or [Path(__file__).resolve().parent]
    manifests = load(roots)
    if not manifests:
        raise SystemExit(f"{program}: no manifests under {', '.join(map(str, roots))}")
    return manifests


def pod_spec(doc):
    kind = doc.get("kind")
    spec = doc.get("spec") or {}
    if kind == "Pod":
        return spec, (doc.get("metadata") or {}).get("labels") or {}
    if kind == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec")) or {}
        kind = "Job"
    if kind in POD_TEMPLATE_KINDS or kind is None:
        template = spec.get("template")
        if isinstance(template, dict):
            labels = (template.get("metadata") or {}).get("labels") or {}
            return template.get("spec") or {}, labels
    return None, None


def all_containers(spec):
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for container in spec.get(key) or []:
            yield container


def is_host(labels, container, patch):
    if patch:
        return container.get("name") == "host"
    return labels.get(HOST_LABEL[0]) == HOST_LABEL[1]


def argv_violations(strings, secret_vars):
    found = []
    for text in strings:
        text = str(text)
        for pattern, what in SECRET_IN_ARGV:
            if pattern.search(text):
                found.append(f"command/args hold {what}: {text!r}")
        for match in SECRET_FLAG.finditer(text):
            flag = match.group(1)
            if flag.endswith("-file"):
                continue
            if flag in SECRET_FLAG_NAMES or any(word in flag for word in SECRET_FLAG_WORDS):
                found.append(f"command/args pass a credential flag --{flag}: use its environment variable from a Secret")
        for match in VAR_REFERENCE.finditer(text):
            if match.group(1) in secret_vars:
                found.append(f"command/args expand $({match.group(1)}), which comes from a Secret, into the command line")
    return found


def env_violations(container):
    found = []
    for var in container.get("env") or []:
        name = str(var.get("name", ""))
        if "value" in var:
            value = str(var.get("value"))
            if SECRET_ENV_NAME.search(name) and not value.startswith("/"):
                found.append(f"env {name} is a literal: take it from a Secret (valueFrom.secretKeyRef)")
            if SECRET_IN_ARGV[0][0].search(value):
                found.append(f"env {name} holds a database url with a password as a literal")
        elif name == "THINLINE_STORE" and "secretKeyRef" not in (var.get("valueFrom") or {}):
            found.append("env THINLINE_STORE must come from a Secret (valueFrom.secretKeyRef)")
    return found


def secret_vars(container):
    return {
        str(var.get("name"))
        for var in container.get("env") or []
        if "secretKeyRef" in (var.get("valueFrom") or {})
    }


def container_violations(container, pod, host, patch):
    found = []
    sc = container.get("securityContext")
    pod_sc = pod.get("securityContext") or {}
    if not isinstance(sc, dict):
        if not patch:
            found.append("has no securityContext")
        sc = None
    if sc is not None:
        if sc.get("allowPrivilegeEscalation") is not False:
            found.append("securityContext.allowPrivilegeEscalation must be false")
        if sc.get("privileged") is True:
            found.append("securityContext.privileged must not be true")
        if not patch and sc.get("readOnlyRootFilesystem") is not True:
            found.append("securityContext.readOnlyRootFilesystem must be true")
        caps = sc.get("capabilities") or {}
        if not patch or "capabilities" in sc:
            if "ALL" not in (caps.get("drop") or []):
                found.append("securityContext.capabilities.drop must be [ALL]")
            added = set(caps.get("add") or [])
            allowed = HOST_CAPABILITIES if host else set()
            extra = sorted(added - allowed)
            if extra:
                who = "a host" if host else "this container"
                found.append(f"securityContext.capabilities.add has {', '.join(extra)}, which {who} may not add")
        if not host and not patch:
            if sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is not True:
                found.append("must set runAsNonRoot: true")
            seccomp = sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}
            if seccomp.get("type") not in ("RuntimeDefault", "Localhost"):
                found.append("must keep a seccomp profile (RuntimeDefault or Localhost)")
    if not patch:
        resources = container.get("resources") or {}
        for part in ("requests", "limits"):
            missing = [r for r in ("cpu", "memory") if r not in (resources.get(part) or {})]
            if missing:
                found.append(f"resources.{part} lacks {', '.join(missing)}")
    argv = list(container.get("command") or []) + list(container.get("args") or [])
    found += argv_violations(argv, secret_vars(container))
    found += env_violations(container)
    return found


def probe_violations(container):
    found = []
    ready = (container.get("readinessProbe") or {}).get("httpGet") or {}
    if ready.get("path") != HEALTH_PATH:
        found.append(f"readinessProbe must be an httpGet of {HEALTH_PATH}")
    live = container.get("livenessProbe") or {}
    if (live.get("httpGet") or {}).get("path") != HEALTH_PATH and "tcpSocket" not in live:
        found.append(
            f"livenessProbe must be an httpGet of {HEALTH_PATH} (or a tcpSocket where {HEALTH_PATH} "
            "fails without the store, as the directories')"
        )
    return found


def drain_violations(pod, container):
    hook = ((container.get("lifecycle") or {}).get("preStop") or {}).get("exec") or {}
    command = [str(word) for word in hook.get("command") or []]
    if command[:2] != ["host-server", "drain"]:
        return ["a host needs lifecycle.preStop.exec.command [host-server, drain, ...]: it drains before SIGTERM"]
    found = []
    if "THINLINE_CONTROL_SOCKET" not in {var.get("name") for var in container.get("env") or []}:
        found.append("a host needs env THINLINE_CONTROL_SOCKET: where its preStop `host-server drain` reaches it")
    timeout = DRAIN_TIMEOUT_SECONDS
    for index, word in enumerate(command):
        value = word.removeprefix("--timeout-secs=") if word.startswith("--timeout-secs=") else None
        if word == "--timeout-secs" and index + 1 < len(command):
            value = command[index + 1]
        if value is not None:
            if not value.isdigit():
                return found + [f"preStop's --timeout-secs {value!r} is not a number of seconds"]
            timeout = int(value)
    grace = pod.get("terminationGracePeriodSeconds", 30)
    if not isinstance(grace, int) or grace < timeout + DRAIN_OVERHEAD_SECONDS:
        found.append(
            f"terminationGracePeriodSeconds {grace} is shorter than a drain: the hook's {timeout} s "
            f"plus {DRAIN_OVERHEAD_SECONDS} s (raise it, or lower --timeout-secs)"
        )
    return found


def check(manifests):
    problems = []
    accounts = {}
    namespaces_with_pods = {}
    default_deny = set()
    for m in manifests:
        doc = m.doc
        kind = doc.get("kind")
        meta = doc.get("metadata") or {}
        namespace = meta.get("namespace", "default")
        if kind == "ServiceAccount":
            accounts[(namespace, meta.get("name"))] = doc.get("automountServiceAccountToken")
        if kind == "Secret" and (doc.get("data") or doc.get("stringData")):
            problems.append(f"{m.where()}: a Secret with data is committed: make it with `kubectl create secret`")
        if kind == "NetworkPolicy":
            spec = doc.get("spec") or {}
            selector = spec.get("podSelector")
            selects_all = isinstance(selector, dict) and not selector.get("matchLabels") and not selector.get("matchExpressions")
            types = set(spec.get("policyTypes") or [])
            if selects_all and {"Ingress", "Egress"} <= types and not spec.get("ingress") and not spec.get("egress"):
                default_deny.add(namespace)
    for m in manifests:
        spec, labels = pod_spec(m.doc)
        if spec is None:
            continue
        where = m.where()
        namespace = (m.doc.get("metadata") or {}).get("namespace", "default")
        if not m.patch:
            namespaces_with_pods.setdefault(namespace, where)
            if spec.get("automountServiceAccountToken") is not False:
                problems.append(f"{where}: the pod must set automountServiceAccountToken: false")
            account = spec.get("serviceAccountName")
            if not account:
                problems.append(f"{where}: the pod runs under the default ServiceAccount: give it its own")
            elif (namespace, account) not in accounts:
                problems.append(f"{where}: ServiceAccount {account} is not defined in {namespace}")
            elif accounts[(namespace, account)] is not False:
                problems.append(f"{where}: ServiceAccount {account} must set automountServiceAccountToken: false")
            for field in ("hostNetwork", "hostPID", "hostIPC"):
                if spec.get(field) is True:
                    problems.append(f"{where}: the pod must not set {field}")
        for container in all_containers(spec):
            host = is_host(labels, container, m.patch)
            for problem in container_violations(container, spec, host, m.patch):
                problems.append(f"{where}, container {container.get('name')}: {problem}")
        if m.patch or m.doc.get("kind") not in PROBED_KINDS:
            continue
        for container in spec.get("containers") or []:
            found = probe_violations(container)
            if is_host(labels, container, False):
                found += drain_violations(spec, container)
            problems += [f"{where}, container {container.get('name')}: {problem}" for problem in found]
    for namespace, where in sorted(namespaces_with_pods.items()):
        if namespace not in default_deny:
            problems.append(
                f"{where}: namespace {namespace} has no default-deny NetworkPolicy "
                "(podSelector: {}, policyTypes: [Ingress, Egress], no rules)"
            )
    return problems


def self_test():
    """The checker catches each violation it claims to, on a small set."""
    good = [
        {"kind": "ServiceAccount", "metadata": {"name": "h", "namespace": "n"}, "automountServiceAccountToken": False},
        {"kind": "NetworkPolicy", "metadata": {"name": "d", "namespace": "n"},
         "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}},
        {"kind": "StatefulSet", "metadata": {"name": "h", "namespace": "n"}, "spec": {"template": {
            "metadata": {"labels": {HOST_LABEL[0]: HOST_LABEL[1]}},
            "spec": {"serviceAccountName": "h", "automountServiceAccountToken": False,
                     "terminationGracePeriodSeconds": 60, "containers": [{
                "name": "host", "args": ["serve", "--session-network=none", "--tls-key=/run/k"],
                "env": [{"name": "THINLINE_STORE", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
                        {"name": "THINLINE_TLS_KEY", "value": "/run/secrets/tls.key"},
                        {"name": "THINLINE_CONTROL_SOCKET", "value": "/run/thinline/control.sock"}],
                "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8443}},
                "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8443}},
                "lifecycle": {"preStop": {"exec": {"command": ["host-server", "drain", "--timeout-secs=40"]}}},
                "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
                "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                    "capabilities": {"drop": ["ALL"], "add": ["SETUID", "KILL"]}},
            }]}}}},
    ]

    def run(docs):
        return check([Manifest(Path("self-test.yaml"), i, d, False) for i, d in enumerate(docs)])

    assert run(good) == [], run(good)

    def container(docs):
        return docs[2]["spec"]["template"]["spec"]["containers"][0]

    cases = [
        ("allowPrivilegeEscalation", lambda d: container(d)["securityContext"].pop("allowPrivilegeEscalation")),
        ("drop must be [ALL]", lambda d: container(d)["securityContext"]["capabilities"].update(drop=["NET_RAW"])),
        ("SYS_ADMIN", lambda d: container(d)["securityContext"]["capabilities"]["add"].append("SYS_ADMIN")),
        ("may not add", lambda d: d[2]["spec"]["template"]["metadata"]["labels"].clear()),
        ("automountServiceAccountToken", lambda d: d[2]["spec"]["template"]["spec"].pop("automountServiceAccountToken")),
        ("ServiceAccount h must set", lambda d: d[0].pop("automountServiceAccountToken")),
        ("resources.limits", lambda d: container(d)["resources"].pop("limits")),
        ("database url", lambda d: container(d)["args"].append("postgres://u:pw@db/x")),
        ("KEY=value", lambda d: container(d)["args"].append("THINLINE_TICKET_KEY=abc")),
        ("--store", lambda d: container(d)["args"].append("--store")),
        ("a token", lambda d: container(d).update(command=["sh", "-c", "exec host-server --host-token x"])),
        ("$(THINLINE_STORE)", lambda d: container(d)["args"].append("--x=$(THINLINE_STORE)")),
        ("is a literal", lambda d: container(d)["env"].append({"name": "THINLINE_HOST_TOKEN", "value": "x"})),
        ("default-deny", lambda d: d[1]["spec"].update(egress=[{}])),
        ("Secret with data", lambda d: d.append({"kind": "Secret", "metadata": {"name": "s"}, "stringData": {"k": "v"}})),
        ("readinessProbe", lambda d: container(d).pop("readinessProbe")),
        ("livenessProbe", lambda d: container(d)["livenessProbe"]["httpGet"].update(path="/")),
        ("preStop", lambda d: container(d).pop("lifecycle")),
        ("THINLINE_CONTROL_SOCKET", lambda d: container(d)["env"].pop()),
        ("terminationGracePeriodSeconds 59", lambda d: d[2]["spec"]["template"]["spec"].update(terminationGracePeriodSeconds=59)),
        ("terminationGracePeriodSeconds 60", lambda d: container(d)["lifecycle"]["preStop"]["exec"].update(
            command=["host-server", "drain", "--timeout-secs", "41"])),
    ]
    for expected, mutate in cases:
        docs = copy.deepcopy(good)
        mutate(docs)
        problems = run(docs)
        assert any(expected in p for p in problems), f"{expected!r} not caught: {problems}"
    print(f"check.py self-test: {len(cases)} violations caught, the good set passes")


def main(argv):
    if argv == ["--self-test"]:
        self_test()
        return 0
    manifests = load_arguments(argv, "check.py")
    problems = check(manifests)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"check.py: {len(problems)} violation(s) in {len(manifests)} documents", file=sys.stderr)
        return 1
    workloads = sum(1 for m in manifests if pod_spec(m.doc)[0] is not None)
    print(f"check.py: {len(manifests)} documents, {workloads} pod specs: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
