#!/usr/bin/env python3
"""The pod shapes of infra/k8s, made playable by `podman kube play` (4.3) on one machine.

    PYTHON infra/k8s/playable.py --image IMAGE --work DIR --prefix PREFIX

Run by `cargo xtask k8s-play` (xtask/src/k8s.rs), which plays what this
writes, reads each pod's /healthz, runs the hosts' preStop hook and takes
everything down again. PYTHON needs PyYAML and kubernetes-validate (the
variants are merged by validate.py), as in the venv `cargo xtask test`
makes.

Each workload's pod template becomes one Pod (the first replica's), and so
does every variant under `variants/`, merged onto its target. Everything
else of the template is kept as written. What podman 4.3 cannot honour
here is changed, each change in ADAPTATIONS with its reason, so that a
reader can tell what the play proves and what it does not.

Writes DIR/pods/NAME.yaml and prints, one line each, tab-separated:
    pod     NAME FILE CONTAINER ROLE HEALTH_PORT HOST_ID PUBLIC_URL ISOLATION [PRESTOP...]
    secret  PODMAN_NAME KEY...            (a podman secret to create, its keys)
    file    PATH SECRET KEY MODE UID GID  (a Secret's key, written as a file)
    dir     PATH UID GID MODE             (a hostPath folder to make first)
HEALTH_PORT is a free port on 127.0.0.1 where the pod's https port is
published.
ROLE is `directory` or `host`; HOST_ID and PUBLIC_URL are `-` for a
directory. Secret values are never written by this script: xtask makes
throwaway ones for the play and fills them in.
"""

import argparse
import copy
import re
import socket
import sys
from pathlib import Path

import yaml

import check
import validate

# What differs from the manifests, and why. Keys name what is adapted.
ADAPTATIONS = {
    "image": "no registry is reachable here: the image under test, built on this machine",
    "kind": "podman plays Pods and Deployments, not StatefulSets: each template becomes "
    "one Pod, named as its first replica is (thinline-host-0), which is what "
    "metadata.name gives THINLINE_HOST_ID",
    "hostUsers": "podman turns `hostUsers: false` into --userns=auto, which needs subordinate "
    "id ranges (/etc/subuid) this machine does not have: hosts run as real root in "
    "their container, still with every capability but the seven dropped",
    "seccompProfile": "podman 4.3 ignores the field and reads the pre-1.19 annotation "
    "(seccomp.security.alpha.kubernetes.io/pod): the profile is moved there",
    "procMount": "podman 4.3 ignores `procMount: Unmasked` and has no other way in kube play "
    "to unmask /proc, which bwrap needs to mount a /proc for each session: such a "
    "container is played `privileged`, so the play proves everything of the host's "
    "shape but its capability set and seccomp (the containerised cluster runs hosts "
    "with exactly the seven capabilities, through `podman run --security-opt unmask=ALL`)",
    "appArmorProfile": "podman 4.3 does not know the field (this machine has no AppArmor)",
    "probes": "podman runs no readiness or startup probe and turns a liveness probe into a "
    "`curl` inside the container (not in the image) on a systemd timer (not on this "
    "machine), with a named port resolved to 0: the probes are removed and xtask reads "
    "each pod's /healthz itself, as the readiness probe would",
    "tls": "no certificate for *.example.com exists here and podman 4.3 mounts no Secret "
    "volume: the servers serve plain HTTP (TLS is tested in host-server and directory), "
    "so THINLINE_TLS_*, THINLINE_HOST_CA and the CA volumes go",
    "secret-volumes": "podman 4.3 mounts hostPath, emptyDir and PVC volumes only: each "
    "remaining Secret volume is a hostPath of files with the Secret's mode, and a "
    "subPathExpr mount (which podman ignores) is a hostPath of that pod's own file",
    "homes": "the ReadWriteMany volume is a folder on this machine, one per host pod, owned "
    "by its uid: per-user and shared-uid homes must never share a volume (the variant's "
    "header), and a root host without DAC_OVERRIDE cannot write into uid 1000's folder",
    "store": "no PostgreSQL is reachable from inside a pod here: every pod shares one "
    "SQLite file on a hostPath, in a folder anyone may write (a directory runs as uid "
    "1000, a host as root without DAC_OVERRIDE); the store url stays a Secret",
    "env-expansion": "podman 4.3 does not expand $(VAR) in env values: expanded here, as "
    "the kubelet would",
    "emptyDir": "podman 4.3 makes an emptyDir a named volume called as the volume is, which "
    "every pod naming one alike then shares (two hosts' /run/thinline), owned by root: "
    "each is a folder of this play's instead, mode 0777 as a kubelet makes one (not tmpfs)",
    "ports": "each pod's https port is published on 127.0.0.1 only, for xtask's /healthz reads",
    "names": "pod and Secret names get a prefix of this run, so a play never meets another's "
    "pods or a cluster's containers (a host's id, its pod's name, has it too)",
}

DROPPED_VOLUMES = {"tls", "host-ca", "postgres-ca"}
DROPPED_ENV = {"THINLINE_TLS_CERT", "THINLINE_TLS_KEY", "THINLINE_HOST_CA"}
PROBES = ("readinessProbe", "livenessProbe", "startupProbe")
STORE_MOUNT = "/var/lib/thinline"
VARIABLE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def workloads(manifests, prefix):
    """(name, role, labels, pod spec) of every workload and variant, as Kubernetes would run it."""
    found = []
    for m in manifests:
        if m.patch:
            continue
        spec, labels = check.pod_spec(m.doc)
        if spec is not None:
            found.append((m.doc, labels))
    objects, failures = validate.what_to_validate(manifests)
    if failures:
        raise SystemExit("\n".join(failures))
    for label, doc in objects:
        if " applied to " in label:
            found.append((doc, check.pod_spec(doc)[1]))
    pods, seen = [], set()
    for doc, labels in found:
        role = "host" if labels.get(check.HOST_LABEL[0]) == check.HOST_LABEL[1] else "directory"
        base = doc["metadata"]["name"]
        index = 0
        while f"{prefix}{base}-{index}" in seen:
            index += 1
        name = f"{prefix}{base}-{index}"
        seen.add(name)
        pods.append((name, role, labels, copy.deepcopy(check.pod_spec(doc)[0])))
    return pods


def expand(value, env):
    return VARIABLE.sub(lambda m: env.get(m.group(1), m.group(0)), value)


def owner(pod_security, container_security):
    """The uid and gid a container reads its Secret files as (podman ignores fsGroup)."""
    def pick(field):
        return container_security.get(field, pod_security.get(field))

    uid = pick("runAsUser") or 0
    return uid, pod_security.get("fsGroup", pick("runAsGroup") or 0)


def free_port():
    """A port nothing listens on now; podman binds it a moment later."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def adapt(name, labels, spec, args, port):
    """The Pod podman plays for this template, and what xtask needs to know of it."""
    work = Path(args.work)
    spec.pop("hostUsers", None)
    pod_security = spec.get("securityContext") or {}
    pod_seccomp = (pod_security.pop("seccompProfile", None) or {}).get("type")
    containers = spec.get("containers") or []
    if len(containers) != 1:
        raise SystemExit(f"{name}: one container expected, {len(containers)} found")
    container = containers[0]
    container["image"] = args.image
    for probe in PROBES:
        container.pop(probe, None)
    hook = (container.pop("lifecycle", None) or {}).get("preStop") or {}
    pre_stop = [str(word) for word in (hook.get("exec") or {}).get("command") or []]
    security = container.get("securityContext") or {}
    annotations = {}
    if ((security.pop("seccompProfile", None) or {}).get("type") or pod_seccomp) == "Unconfined":
        annotations["seccomp.security.alpha.kubernetes.io/pod"] = "unconfined"
    security.pop("appArmorProfile", None)
    if security.pop("procMount", None) == "Unmasked":
        security["privileged"] = True
    uid, gid = owner(pod_security, security)

    # The environment: secrets under this run's names, $(VAR) expanded.
    env, values, secrets = [], {"THINLINE_HOST_ID": name}, {}
    for var in container.get("env") or []:
        if var["name"] in DROPPED_ENV:
            continue
        ref = (var.get("valueFrom") or {}).get("secretKeyRef")
        if ref:
            renamed = f"{args.prefix}{ref['name']}"
            secrets.setdefault(renamed, set()).add(ref["key"])
            var = {"name": var["name"], "valueFrom": {"secretKeyRef": {"name": renamed, "key": ref["key"]}}}
        elif "value" in var:
            var = {"name": var["name"], "value": expand(str(var["value"]), values)}
            values[var["name"]] = var["value"]
        env.append(var)
    container["env"] = env

    # Volumes: TLS gone, Secrets and the claim as hostPaths, the store added.
    volumes, files, dirs = {}, [], [(work / "store", 0, 0, 0o777)]
    for volume in spec.get("volumes") or []:
        if volume["name"] not in DROPPED_VOLUMES:
            volumes[volume["name"]] = volume
    mounts = []
    for mount in container.get("volumeMounts") or []:
        volume = volumes.get(mount["name"])
        if volume is None:
            continue
        sub = mount.pop("subPathExpr", None)
        if "emptyDir" in volume:
            empty = work / "empty" / name / mount["name"]
            dirs.append((empty, 0, 0, 0o777))
            volumes[mount["name"]] = {"name": mount["name"], "hostPath": {"path": str(empty), "type": "Directory"}}
        elif "persistentVolumeClaim" in volume:
            homes = work / "homes" / name
            dirs.append((homes, uid, gid, 0o755))
            volumes[mount["name"]] = {"name": mount["name"], "hostPath": {"path": str(homes), "type": "Directory"}}
        elif "secret" in volume:
            secret = volume["secret"]
            folder = work / "secrets" / name / mount["name"]
            mode = secret.get("defaultMode", 0o644)
            if sub is not None:
                key = expand(sub, values)
                files.append((folder / key, secret["secretName"], key, mode, uid, gid))
                source = {"path": str(folder / key), "type": "File"}
            elif secret.get("items"):
                for item in secret["items"]:
                    files.append((folder / item["path"], secret["secretName"], item["key"], mode, uid, gid))
                source = {"path": str(folder), "type": "Directory"}
            else:
                raise SystemExit(f"{name}: the Secret volume {mount['name']} names no items, which this cannot copy")
            volumes[mount["name"]] = {"name": mount["name"], "hostPath": source}
        mounts.append(mount)
    mounts.append({"name": "store", "mountPath": STORE_MOUNT})
    container["volumeMounts"] = mounts
    spec["volumes"] = list(volumes.values()) + [
        {"name": "store", "hostPath": {"path": str(work / "store"), "type": "Directory"}}
    ]
    for declared in container.get("ports") or []:
        declared.update(hostPort=port, hostIP="127.0.0.1")
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels, "annotations": annotations},
        "spec": spec,
    }
    facts = {
        "container": f"{name}-{container['name']}",
        "public_url": values.get("THINLINE_PUBLIC_URL", "-"),
        "isolation": values.get("THINLINE_ISOLATION", "-"),
        "pre_stop": pre_stop,
    }
    return pod, facts, secrets, files, dirs


def main(argv):
    parser = argparse.ArgumentParser()
    parser.add_argument("--image", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--prefix", required=True)
    args = parser.parse_args(argv)
    manifests = check.load_arguments([], "playable.py")
    pods = workloads(manifests, args.prefix)
    (Path(args.work) / "pods").mkdir(parents=True, exist_ok=True)
    all_secrets, all_files, all_dirs = {}, [], {}
    for name, role, labels, spec in pods:
        port = free_port()
        pod, facts, secrets, files, dirs = adapt(name, labels, spec, args, port)
        path = Path(args.work) / "pods" / f"{name}.yaml"
        path.write_text(yaml.safe_dump(pod, sort_keys=False))
        host_id = name if role == "host" else "-"
        url = facts["public_url"] if role == "host" else "-"
        fields = [name, str(path), facts["container"], role, str(port), host_id, url, facts["isolation"]]
        print("\t".join(["pod"] + fields + facts["pre_stop"]))
        for secret, keys in secrets.items():
            all_secrets.setdefault(secret, set()).update(keys)
        all_files += files
        all_dirs.update((path, rest) for path, *rest in dirs)
    for path, (uid, gid, mode) in all_dirs.items():
        print("\t".join(["dir", str(path), str(uid), str(gid), oct(mode)[2:]]))
    for secret, keys in sorted(all_secrets.items()):
        print("\t".join(["secret", secret] + sorted(keys)))
    for path, secret, key, mode, uid, gid in all_files:
        print("\t".join(["file", str(path), secret, key, oct(mode)[2:], str(uid), str(gid)]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
