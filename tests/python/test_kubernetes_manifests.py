"""The Kubernetes manifests of deploy/kubernetes/ as specifications.

Every manifest, and both variants as kustomize renders them (plaintext: deploy/kubernetes; TLS: deploy/kubernetes/tls),
validates against the Kubernetes OpenAPI schemas of KUBERNETES_VERSION, strictly (an unknown or misplaced field is an
error), offline: the schemas ship inside the kubernetes-validate package. Then the properties that matter are pinned
one by one, and the real binary is started with the Deployment's own environment and files, laid out as the kubelet
lays out a ConfigMap, and asked exactly what the probes ask.

Rendering: a small kustomize of its own (resources, namespace and JSON 6902 patches, the only features the
kustomizations use, which a test pins), so the suite needs no kubectl; when kubectl is on PATH its `kubectl kustomize`
output must be the same.
"""

import copy
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import kubernetes_validate
import pytest
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

from conftest import REPO, free_port

DEPLOY = REPO / "deploy/kubernetes"
POLICIES = REPO / "policies"
# Native gRPC probes are GA since 1.27, lifecycle.preStop.sleep since 1.30 (beta, on by default): 1.31 is the oldest
# version these manifests are meant for, and kubernetes-validate ships its schemas.
KUBERNETES_VERSION = "1.31"
# The shared-counter settings are being added in parallel (issue #13): they are checked against their agreed names,
# not against the binary's --help.
COUNTER_VARIABLES = {
    "ROOMGUARD_COUNTERS_BACKEND": "redis",
    "ROOMGUARD_COUNTERS_REDIS_URL": "redis://roomguard-redis:6379/0",
    "ROOMGUARD_COUNTERS_REDIS_PASSWORD_FILE": None,
    "ROOMGUARD_COUNTERS_FALLBACK": "local",
    "ROOMGUARD_COUNTERS_REDIS_TIMEOUT_MS": None,
}
KUSTOMIZATION_KEYS = {"apiVersion", "kind", "namespace", "resources", "patches"}
# Kinds that live in no namespace (kustomize leaves them alone).
CLUSTER_KINDS = {"Namespace"}


# === loading and rendering ===


def documents(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [doc for doc in yaml.safe_load_all(f) if doc]


def kustomization_dirs() -> list[Path]:
    return sorted(p.parent for p in DEPLOY.rglob("kustomization.yaml"))


def patch_files() -> set[Path]:
    return {
        (d / patch["path"]).resolve()
        for d in kustomization_dirs()
        for patch in documents(d / "kustomization.yaml")[0].get("patches", [])
    }


def manifest_files() -> list[Path]:
    """Every YAML file under deploy/kubernetes/ that holds Kubernetes objects (not kustomizations, not patches)."""
    patches = patch_files()
    return sorted(
        p for p in DEPLOY.rglob("*.yaml") if p.name != "kustomization.yaml" and p.resolve() not in patches
    )


def json_pointer(doc, pointer: str):
    """The parent container and last key of an RFC 6901 pointer."""
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.lstrip("/").split("/")]
    parent = doc
    for part in parts[:-1]:
        parent = parent[int(part)] if isinstance(parent, list) else parent[part]
    return parent, parts[-1]


def apply_json_patch(doc: dict, ops: list[dict]) -> dict:
    doc = copy.deepcopy(doc)
    for op in ops:
        parent, key = json_pointer(doc, op["path"])
        if op["op"] == "add" and isinstance(parent, list):
            parent.insert(len(parent) if key == "-" else int(key), copy.deepcopy(op["value"]))
        elif op["op"] in ("add", "replace"):
            if op["op"] == "replace":
                assert (int(key) < len(parent)) if isinstance(parent, list) else key in parent, op["path"]
            if isinstance(parent, list):
                parent[int(key)] = copy.deepcopy(op["value"])
            else:
                parent[key] = copy.deepcopy(op["value"])
        elif op["op"] == "remove":
            del parent[int(key) if isinstance(parent, list) else key]
        else:
            raise AssertionError(f"JSON patch op {op['op']!r} is not supported by this renderer")
    return doc


def render(directory: Path) -> list[dict]:
    """What `kubectl kustomize DIRECTORY` gives, for the features the kustomizations use."""
    k = documents(directory / "kustomization.yaml")[0]
    out = []
    for resource in k.get("resources", []):
        path = (directory / resource).resolve()
        out += render(path) if path.is_dir() else documents(path)
    for patch in k.get("patches", []):
        ops = documents(directory / patch["path"])[0]
        target = patch["target"]
        matched = 0
        for i, obj in enumerate(out):
            if obj["kind"] == target["kind"] and obj["metadata"]["name"] == target["name"]:
                out[i] = apply_json_patch(obj, ops)
                matched += 1
        assert matched == 1, f"patch {patch['path']} matched {matched} objects"
    if "namespace" in k:
        for obj in out:
            if obj["kind"] not in CLUSTER_KINDS:
                obj["metadata"]["namespace"] = k["namespace"]
    return out


VARIANTS = {"plaintext": DEPLOY, "tls": DEPLOY / "tls"}


def find(objects: list[dict], kind: str, name: str) -> dict:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def container(deployment: dict, name: str) -> dict:
    return next(c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == name)


def env_of(c: dict) -> dict[str, str]:
    return {e["name"]: e.get("value") for e in c.get("env", [])}


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def variant(request):
    return request.param, render(VARIANTS[request.param])


@pytest.fixture(scope="module")
def base():
    return render(DEPLOY)


@pytest.fixture(scope="module")
def tls():
    return render(DEPLOY / "tls")


def roomguard_container(objects):
    return container(find(objects, "Deployment", "roomguard"), "roomguard")


def port_named(c: dict, name: str) -> int:
    return next(p["containerPort"] for p in c["ports"] if p["name"] == name)


# === schemas ===


@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_manifest_file_validates_strictly_against_the_kubernetes_schemas(path):
    """Each object of each manifest file is valid for Kubernetes KUBERNETES_VERSION, unknown fields refused."""
    objects = documents(path)
    assert objects, f"{path} holds no object"
    for obj in objects:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_every_rendered_object_validates_strictly(variant):
    """Both variants as applied (namespace set, the TLS patch applied) are valid too."""
    name, objects = variant
    for obj in objects:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_the_schemas_are_used_and_can_fail():
    """The validator is not a no-op: a misspelt field and a wrong type are refused."""
    deployment = find(render(DEPLOY), "Deployment", "roomguard")
    broken = copy.deepcopy(deployment)
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["grpc"]["serivce"] = "x"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)
    broken = copy.deepcopy(deployment)
    broken["spec"]["replicas"] = "three"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_every_yaml_file_is_applied_or_an_example():
    """No manifest lies unused: each is a kustomization, reached from one (resource or patch), or `*.example.yaml`."""
    reached = set()

    def walk(directory: Path):
        k = documents(directory / "kustomization.yaml")[0]
        assert set(k) <= KUSTOMIZATION_KEYS, f"{directory}: {set(k) - KUSTOMIZATION_KEYS} not rendered by this test"
        for resource in k.get("resources", []):
            path = (directory / resource).resolve()
            assert path.exists(), f"{directory}/kustomization.yaml: {resource} does not exist"
            if path.is_dir():
                walk(path)
            else:
                reached.add(path)
        for patch in k.get("patches", []):
            reached.add((directory / patch["path"]).resolve())

    for d in VARIANTS.values():
        walk(d)
    for path in DEPLOY.rglob("*.yaml"):
        if path.name == "kustomization.yaml" or path.name.endswith(".example.yaml"):
            continue
        assert path.resolve() in reached, f"{path.relative_to(DEPLOY)} is in no kustomization"


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed: the built-in renderer only")
@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_the_renderer_agrees_with_kubectl_kustomize(name):
    """Where kubectl is at hand, its kustomize renders the same objects as this test's renderer."""
    out = subprocess.run(["kubectl", "kustomize", str(VARIANTS[name])], capture_output=True, text=True, check=True)
    key = lambda o: (o["kind"], o["metadata"]["name"])  # noqa: E731
    assert sorted(yaml.safe_load_all(out.stdout), key=key) == sorted(render(VARIANTS[name]), key=key)


# === the Deployment ===


def test_three_replicas_rolled_without_losing_capacity(base):
    """Three replicas, one new pod at a time and none taken away before its successor is ready."""
    spec = find(base, "Deployment", "roomguard")["spec"]
    assert spec["replicas"] == 3
    assert spec["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}


def test_roomguard_runs_unprivileged_on_a_read_only_root(variant):
    """uid 10001 (the image's), non-root enforced, no escalation, no capability, seccomp, read-only root."""
    pod = find(variant[1], "Deployment", "roomguard")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    for c in pod["containers"]:
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"]["drop"] == ["ALL"]
        assert not sc.get("privileged", False)
        assert "add" not in sc["capabilities"]
    dockerfile = (REPO / "Dockerfile").read_text()
    assert re.search(r"^USER 10001$", dockerfile, re.M), "the image's user is the uid the pod runs as"


def test_no_writable_volume_since_roomguard_writes_nothing(variant):
    """Decision log on stdout, no Unix socket: roomguard needs no writable directory, so it has none."""
    pod = find(variant[1], "Deployment", "roomguard")["spec"]["template"]["spec"]
    env = env_of(roomguard_container(variant[1]))
    assert env["ROOMGUARD_DECISION_LOG"] == "stdout"
    assert "ROOMGUARD_UNIX_SOCKET" not in env
    for volume in pod["volumes"]:
        assert set(volume) - {"name"} <= {"configMap", "secret"}, volume
    for mount in roomguard_container(variant[1])["volumeMounts"]:
        assert mount["readOnly"] is True, mount


def test_requests_and_limits_are_set(variant):
    """CPU and memory requested, memory limited (a scan burst must not take the node)."""
    for c in find(variant[1], "Deployment", "roomguard")["spec"]["template"]["spec"]["containers"]:
        assert {"cpu", "memory"} <= set(c["resources"]["requests"])
        assert "memory" in c["resources"]["limits"]


def test_service_links_are_off_so_no_service_variable_looks_like_a_setting(variant):
    """Service links would inject ROOMGUARD_*_PORT variables for the Services named roomguard-*."""
    assert find(variant[1], "Deployment", "roomguard")["spec"]["template"]["spec"]["enableServiceLinks"] is False


def test_replicas_spread_across_nodes(base):
    """A hard spread over nodes (maxSkew 1), selecting the Deployment's own pods."""
    pod = find(base, "Deployment", "roomguard")["spec"]["template"]
    constraints = pod["spec"]["topologySpreadConstraints"]
    by_node = [c for c in constraints if c["topologyKey"] == "kubernetes.io/hostname"]
    assert by_node and by_node[0]["whenUnsatisfiable"] == "DoNotSchedule" and by_node[0]["maxSkew"] == 1
    for c in constraints:
        assert c["labelSelector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()


def test_grpc_probes_ask_the_health_service_on_the_grpc_port(base):
    """Readiness asks for roomguard.v1.PolicyService, liveness and startup for the whole server, on the grpc port."""
    c = roomguard_container(base)
    grpc_port = port_named(c, "grpc")
    assert c["readinessProbe"]["grpc"] == {"port": grpc_port, "service": "roomguard.v1.PolicyService"}
    assert c["livenessProbe"]["grpc"] == {"port": grpc_port, "service": ""}
    assert c["startupProbe"]["grpc"] == {"port": grpc_port, "service": ""}
    assert env_of(c)["ROOMGUARD_LISTEN"] == f"0.0.0.0:{grpc_port}"
    assert env_of(c)["ROOMGUARD_METRICS_LISTEN"] == f"0.0.0.0:{port_named(c, 'metrics')}"


def test_with_tls_the_probes_are_roomguard_health_over_tls(tls):
    """Native gRPC probes cannot speak TLS: the TLS variant probes through `roomguard health` over https."""
    c = roomguard_container(tls)
    env = env_of(c)
    assert env["ROOMGUARD_TLS_CERT"] and env["ROOMGUARD_TLS_KEY"]
    assert env["ROOMGUARD_HEALTH_ADDR"] == f"https://127.0.0.1:{port_named(c, 'grpc')}"
    for probe, service in [("readinessProbe", "roomguard.v1.PolicyService"), ("livenessProbe", ""),
                           ("startupProbe", "")]:
        assert set(c[probe]) & {"grpc", "httpGet", "tcpSocket"} == set(), probe
        command = c[probe]["exec"]["command"]
        assert command[:2] == ["roomguard", "health"], probe
        assert command[command.index("--service") + 1] == service, probe
        # The client gives up before the kubelet does, so a slow answer is a failed probe, not a hung one.
        timeout_ms = int(command[command.index("--timeout-ms") + 1])
        assert timeout_ms < c[probe]["timeoutSeconds"] * 1000, probe


def test_the_shutdown_fits_in_the_termination_grace(variant):
    """preStop sleep, then roomguard's own drain (limits.shutdown_grace_ms), end before the kubelet's SIGKILL."""
    pod = find(variant[1], "Deployment", "roomguard")["spec"]["template"]["spec"]
    c = roomguard_container(variant[1])
    sleep = c["lifecycle"]["preStop"]["sleep"]["seconds"]
    grace_s = int(env_of(c)["ROOMGUARD_SHUTDOWN_GRACE_MS"]) / 1000
    assert sleep >= 5, "endpoints need a few seconds to drop the pod before roomguard stops accepting"
    assert pod["terminationGracePeriodSeconds"] >= sleep + grace_s + 2


# === settings ===


@pytest.fixture(scope="module")
def known_variables(binary):
    """Every ROOMGUARD_* variable the binary declares (serve and health), plus the counters' agreed names."""
    names = set()
    for command in (["serve", "--help"], ["health", "--help"]):
        out = subprocess.run([str(binary), *command], capture_output=True, text=True, check=True).stdout
        names |= set(re.findall(r"\[env: (ROOMGUARD_[A-Z0-9_]+)=", out))
    assert "ROOMGUARD_LISTEN" in names and "ROOMGUARD_HEALTH_ADDR" in names, "--help no longer lists variables"
    return names | set(COUNTER_VARIABLES)


def test_every_variable_is_a_roomguard_setting(variant, known_variables):
    """A misspelt variable would be ignored silently: each one set is one roomguard knows."""
    env = env_of(roomguard_container(variant[1]))
    unknown = set(env) - known_variables
    assert not unknown, f"not roomguard settings: {sorted(unknown)}"
    # The token from a file: a variable would show wherever the environment is shown.
    assert "ROOMGUARD_AUTH_TOKEN" not in env and env["ROOMGUARD_AUTH_TOKEN_FILE"]


def test_the_join_counter_is_shared_through_the_redis_service(base):
    """The counter settings as agreed, the URL naming the Redis Service and port, the password from a file."""
    env = env_of(roomguard_container(base))
    for name, value in COUNTER_VARIABLES.items():
        if value is not None:
            assert env[name] == value, name
    redis_service = find(base, "Service", "roomguard-redis")
    host, port = re.match(r"redis://([^:/]+):(\d+)/", env["ROOMGUARD_COUNTERS_REDIS_URL"]).groups()
    assert host == redis_service["metadata"]["name"]
    assert int(port) in [p["port"] for p in redis_service["spec"]["ports"]]
    assert env["ROOMGUARD_COUNTERS_REDIS_PASSWORD_FILE"].startswith("/")


def test_every_file_setting_points_into_a_mounted_volume(variant):
    """Policies, token, Redis password and TLS files are where a volume is mounted, from the right source."""
    deployment = find(variant[1], "Deployment", "roomguard")
    c = roomguard_container(variant[1])
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    expected_source = {
        "ROOMGUARD_POLICIES": ("configMap", "roomguard-policies"),
        "ROOMGUARD_AUTH_TOKEN_FILE": ("secret", "roomguard-token"),
        "ROOMGUARD_COUNTERS_REDIS_PASSWORD_FILE": ("secret", "roomguard-redis"),
        "ROOMGUARD_TLS_CERT": ("secret", "roomguard-tls"),
        "ROOMGUARD_TLS_KEY": ("secret", "roomguard-tls"),
        "ROOMGUARD_HEALTH_CA": ("secret", "roomguard-tls"),
    }
    for name, value in env_of(c).items():
        if name not in expected_source:
            continue
        mount = next((m for m in mounts if value == m or value.startswith(m + "/")), None)
        assert mount, f"{name}={value} is in no mounted volume"
        kind, source = expected_source[name]
        volume = volumes[mounts[mount]]
        assert kind in volume, f"{name}: volume {volume['name']} is not a {kind}"
        assert volume[kind].get("name", volume[kind].get("secretName")) == source, name


# === the policies ConfigMap ===


def shipped_policy_files() -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(POLICIES.iterdir())
            if p.is_file() and p.suffix != ".md"}


def policies_configmap() -> dict:
    return find(documents(DEPLOY / "base/policies-configmap.yaml"), "ConfigMap", "roomguard-policies")


def test_the_configmap_holds_exactly_the_shipped_policy_files():
    """The ConfigMap's keys and texts are policies/' top-level files (not tests/, not the README): no drift."""
    assert policies_configmap()["data"] == shipped_policy_files(), (
        "deploy/kubernetes/base/policies-configmap.yaml differs from policies/: "
        "run deploy/kubernetes/generate-policies-configmap.py"
    )


def test_the_generator_reproduces_the_committed_configmap():
    """The committed file is the generator's output byte for byte (its --check agrees)."""
    script = DEPLOY / "generate-policies-configmap.py"
    done = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_the_configmap_fits_in_one_etcd_object():
    """A ConfigMap is at most 1 MiB; keep room for growth (README: a large users.csv goes elsewhere)."""
    size = (DEPLOY / "base/policies-configmap.yaml").stat().st_size
    assert size < 900 * 1024, f"{size} bytes"


def kubelet_layout(directory: Path, files: dict[str, str]):
    """Writes `files` as the kubelet's atomic writer does: a timestamped directory, `..data` linking to it, and each
    key a symlink through `..data`."""
    directory.mkdir(parents=True, exist_ok=True)
    stamped = directory / "..2026_01_01_00_00_00.000000001"
    stamped.mkdir()
    for name, text in files.items():
        (stamped / name).write_text(text, encoding="utf-8")
    (directory / "..data").symlink_to(stamped.name)
    for name in files:
        (directory / name).symlink_to(f"..data/{name}")


def test_the_configmap_loads_as_a_flat_directory(binary, tmp_path):
    """roomguard validates the ConfigMap's keys as the kubelet mounts them: flat, each file a symlink."""
    kubelet_layout(tmp_path / "policies", policies_configmap()["data"])
    done = subprocess.run([str(binary), "validate", str(tmp_path / "policies")], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "valid" in done.stdout


# === Services, budget, network ===


def test_a_clusterip_and_a_headless_service_select_the_pods_on_the_grpc_port(base):
    """`roomguard` (ClusterIP) and `roomguard-headless` (clusterIP None, ready pods only) reach the grpc port."""
    deployment = find(base, "Deployment", "roomguard")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    c = roomguard_container(base)
    for name in ("roomguard", "roomguard-headless"):
        service = find(base, "Service", name)["spec"]
        assert service["selector"].items() <= labels.items(), name
        grpc_port = next(p for p in service["ports"] if p["name"] == "grpc")
        assert grpc_port["port"] == port_named(c, "grpc") and grpc_port["targetPort"] == "grpc", name
    assert find(base, "Service", "roomguard")["spec"].get("type", "ClusterIP") == "ClusterIP"
    headless = find(base, "Service", "roomguard-headless")["spec"]
    assert headless["clusterIP"] == "None"
    assert not headless.get("publishNotReadyAddresses", False)


def test_the_disruption_budget_keeps_two_of_three(base):
    """Drains take one replica at a time, and the budget covers exactly the Deployment's pods."""
    pdb = find(base, "PodDisruptionBudget", "roomguard")["spec"]
    labels = find(base, "Deployment", "roomguard")["spec"]["template"]["metadata"]["labels"]
    assert pdb.get("maxUnavailable") == 1 or pdb.get("minAvailable") == 2
    assert pdb["selector"]["matchLabels"].items() <= labels.items()


def rules_by_port(rules: list[dict]) -> dict[int, list[dict]]:
    out = {}
    for rule in rules:
        for port in rule["ports"]:
            out.setdefault(port["port"], []).extend(rule.get("from", rule.get("to", [])))
    return out


def test_roomguard_admits_the_homeserver_to_grpc_and_monitoring_to_metrics_only(base):
    """Default deny both ways; in: grpc from homeserver pods, metrics from the monitoring namespace; out: DNS, Redis."""
    c = roomguard_container(base)
    policy = find(base, "NetworkPolicy", "roomguard")["spec"]
    assert policy["podSelector"]["matchLabels"].items() <= \
        find(base, "Deployment", "roomguard")["spec"]["template"]["metadata"]["labels"].items()
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"}
    ingress = rules_by_port(policy["ingress"])
    assert set(ingress) == {port_named(c, "grpc"), port_named(c, "metrics")}
    for peer in ingress[port_named(c, "grpc")]:
        assert peer["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "synapse"}
        assert "ipBlock" not in peer
    for peer in ingress[port_named(c, "metrics")]:
        assert peer["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "monitoring"}
        assert "podSelector" not in peer and "ipBlock" not in peer
    egress = rules_by_port(policy["egress"])
    assert set(egress) == {53, 6379}
    assert all(peer["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "roomguard-redis"}
               for peer in egress[6379])


def test_redis_admits_roomguard_only_and_opens_nothing(base):
    """Redis' NetworkPolicy: in, roomguard's pods on 6379; out, nothing."""
    policy = find(base, "NetworkPolicy", "roomguard-redis")["spec"]
    redis_labels = find(base, "Deployment", "roomguard-redis")["spec"]["template"]["metadata"]["labels"]
    assert policy["podSelector"]["matchLabels"].items() <= redis_labels.items()
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"}
    assert policy.get("egress", []) == []
    ingress = rules_by_port(policy["ingress"])
    assert list(ingress) == [6379]
    assert ingress[6379] == [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "roomguard"}}}]


def test_redis_is_unprivileged_unpersisted_and_password_protected(base):
    """One replica, non-root, read-only root with /data an emptyDir, no persistence, requirepass from the Secret
    roomguard reads its password from."""
    deployment = find(base, "Deployment", "roomguard-redis")
    pod = deployment["spec"]["template"]["spec"]
    redis = container(deployment, "redis")
    assert deployment["spec"]["replicas"] == 1
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert redis["securityContext"]["readOnlyRootFilesystem"] is True
    assert redis["securityContext"]["allowPrivilegeEscalation"] is False
    assert redis["securityContext"]["capabilities"]["drop"] == ["ALL"]
    data = next(m for m in redis["volumeMounts"] if m["mountPath"] == "/data")
    assert "emptyDir" in next(v for v in pod["volumes"] if v["name"] == data["name"])
    args = redis["args"]
    assert args[args.index("--save") + 1] == "" and args[args.index("--appendonly") + 1] == "no"
    password_variable = re.fullmatch(r"\$\((\w+)\)", args[args.index("--requirepass") + 1]).group(1)
    source = next(e for e in redis["env"] if e["name"] == password_variable)["valueFrom"]["secretKeyRef"]
    roomguard_volumes = find(base, "Deployment", "roomguard")["spec"]["template"]["spec"]["volumes"]
    assert any(v.get("secret", {}).get("secretName") == source["name"]
               and any(i["key"] == source["key"] for i in v["secret"]["items"]) for v in roomguard_volumes)


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")
def test_the_redis_arguments_start_a_redis_that_requires_the_password(base, tmp_path):
    """The container's command and args, $(VAR) expanded as Kubernetes does, start a real redis-server that refuses
    a client without the password and answers one with it; the password is not in its command line."""
    redis = container(find(base, "Deployment", "roomguard-redis"), "redis")
    password = "redis-test-password"
    env = {e["name"]: password for e in redis["env"]}
    args = [re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], a) for a in redis["args"]]
    args[args.index("--dir") + 1] = str(tmp_path)
    port = free_port()
    proc = subprocess.Popen([*redis["command"], *args, "--port", str(port), "--bind", "127.0.0.1"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        import socket

        def ask(*commands: bytes) -> bytes:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                for command in commands:
                    s.sendall(command + b"\r\n")
                    time.sleep(0.05)
                return s.recv(4096)

        deadline = time.monotonic() + 10
        while True:
            assert proc.poll() is None, proc.stdout.read().decode()
            try:
                answer = ask(b"PING")
                break
            except OSError:
                assert time.monotonic() < deadline, "redis-server did not listen"
                time.sleep(0.1)
        assert answer.startswith(b"-NOAUTH"), answer
        assert b"+PONG" in ask(f"AUTH {password}".encode(), b"PING")
        assert password not in Path(f"/proc/{proc.pid}/cmdline").read_bytes().decode(errors="replace")
        assert b"\r\n$0\r\n\r\n" in ask(f"AUTH {password}".encode(), b"CONFIG GET save")
    finally:
        proc.kill()
        proc.wait()


def test_everything_lands_in_the_roomguard_namespace(variant):
    """kustomize puts every namespaced object in `roomguard`, and the namespace enforces the restricted standard."""
    for obj in variant[1]:
        if obj["kind"] not in CLUSTER_KINDS:
            assert obj["metadata"]["namespace"] == "roomguard", obj["metadata"]["name"]
    ns = find(variant[1], "Namespace", "roomguard")
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_the_example_secrets_are_the_ones_mounted(variant):
    """secrets.example.yaml shows every Secret the pods use (but the TLS one, from cert-manager), with those keys."""
    examples = {s["metadata"]["name"]: s for s in documents(DEPLOY / "secrets.example.yaml")}
    for deployment in (o for o in variant[1] if o["kind"] == "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        for v in pod["volumes"]:
            if "secret" in v and v["secret"]["secretName"] != "roomguard-tls":
                example = examples[v["secret"]["secretName"]]
                assert {i["key"] for i in v["secret"]["items"]} <= set(example["stringData"])
        for c in pod["containers"]:
            for e in c.get("env", []):
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["key"] in examples[ref["name"]]["stringData"]


# === the binary under the Deployment's environment ===


def image_environment() -> dict[str, str]:
    """The Dockerfile's ENV: a pod starts with it, under the Deployment's env."""
    text = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    env = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            env.update(dict(re.findall(r"(\w+)=(\S+)", line)))
    return env


class Pod:
    """roomguard started as the pod would start it: image env, then the Deployment's env, every mounted volume laid
    out as the kubelet does under a temporary root, addresses moved to free loopback ports."""

    def __init__(self, binary, objects, root: Path, secrets: dict[str, dict[str, str]]):
        deployment = find(objects, "Deployment", "roomguard")
        pod = deployment["spec"]["template"]["spec"]
        self.container = c = roomguard_container(objects)
        self.binary = binary
        self.grpc_port = free_port()
        volumes = {v["name"]: v for v in pod["volumes"]}
        paths = {}
        for mount in c["volumeMounts"]:
            volume = volumes[mount["name"]]
            local = root / mount["name"]
            if "configMap" in volume:
                data = find(objects, "ConfigMap", volume["configMap"]["name"])["data"]
            else:
                data = secrets[volume["secret"]["secretName"]]
                items = volume["secret"].get("items")
                data = {i["path"]: data[i["key"]] for i in items} if items else data
            kubelet_layout(local, data)
            paths[mount["mountPath"]] = str(local)
        env = {**image_environment(), **env_of(c)}
        for name, value in env.items():
            for mount_path, local in paths.items():
                if value.startswith(mount_path + "/") or value == mount_path:
                    env[name] = local + value[len(mount_path):]
        assert env["ROOMGUARD_LISTEN"].endswith(f":{port_named(c, 'grpc')}")
        env["ROOMGUARD_LISTEN"] = f"127.0.0.1:{self.grpc_port}"
        env["ROOMGUARD_METRICS_LISTEN"] = f"127.0.0.1:{free_port()}"
        env["ROOMGUARD_HEALTH_ADDR"] = re.sub(r":\d+$", f":{self.grpc_port}", env["ROOMGUARD_HEALTH_ADDR"])
        # roomguard-redis resolves only in the cluster: a closed local port stands for a Redis that is down.
        env["ROOMGUARD_COUNTERS_REDIS_URL"] = f"redis://127.0.0.1:{free_port()}/0"
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env}
        self.stderr = (root / "stderr").open("w+b")
        self.proc = subprocess.Popen(
            [str(binary), *c["args"]], env=self.env, stdout=subprocess.DEVNULL, stderr=self.stderr
        )

    def log(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read().decode("utf-8", "replace")

    def run_probe(self, name: str) -> subprocess.CompletedProcess:
        """Runs an exec probe's command in the container's environment (`roomguard` is the binary under test)."""
        command = self.container[name]["exec"]["command"]
        assert command[0] == "roomguard"
        return subprocess.run([str(self.binary), *command[1:]], env=self.env, capture_output=True, text=True,
                              timeout=self.container[name]["timeoutSeconds"] + 5)

    def wait_for(self, ready, timeout=30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"roomguard exited {self.proc.returncode}:\n{self.log()}"
            if ready():
                return
            time.sleep(0.2)
        raise AssertionError(f"not ready in {timeout} s:\n{self.log()}")

    def terminate(self) -> float:
        """SIGTERM, as the kubelet sends after preStop; returns the seconds until exit."""
        start = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)
        return time.monotonic() - start

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def grpc_probe(port: int, service: str) -> bool:
    """What the kubelet's native gRPC probe does: Health/Check, plaintext, SERVING or not."""
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            answer = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=2
            )
        except grpc.RpcError:
            return False
        return answer.status == health_pb2.HealthCheckResponse.SERVING


def test_the_pod_starts_and_passes_its_grpc_probes(binary, base, pb, tmp_path):
    """With the Deployment's env and files (policies through the kubelet's `..data` links, token and Redis password
    from Secret files), roomguard starts, every probe passes, the token is enforced, and SIGTERM ends it well
    within the termination grace that remains after preStop."""
    token = "k8s-test-token"
    pod = Pod(binary, base, tmp_path, {"roomguard-token": {"token": token + "\n"},
                                       "roomguard-redis": {"password": "redis-test-password"}})
    try:
        c = pod.container
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert c[probe]["grpc"]["port"] == port_named(c, "grpc")
        pod.wait_for(lambda: grpc_probe(pod.grpc_port, c["startupProbe"]["grpc"]["service"]))
        assert grpc_probe(pod.grpc_port, c["readinessProbe"]["grpc"]["service"])
        assert grpc_probe(pod.grpc_port, c["livenessProbe"]["grpc"]["service"])
        policy_pb2, policy_pb2_grpc = pb
        with grpc.insecure_channel(f"127.0.0.1:{pod.grpc_port}") as channel:
            stub = policy_pb2_grpc.PolicyServiceStub(channel)
            with pytest.raises(grpc.RpcError) as refused:
                stub.GetPolicyStatus(policy_pb2.GetPolicyStatusRequest(), timeout=5)
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
            status = stub.GetPolicyStatus(policy_pb2.GetPolicyStatusRequest(), timeout=5,
                                          metadata=[("authorization", f"Bearer {token}")])
            assert status.policy_version.startswith("sha256:")
        spec = find(base, "Deployment", "roomguard")["spec"]["template"]["spec"]
        remaining = spec["terminationGracePeriodSeconds"] - c["lifecycle"]["preStop"]["sleep"]["seconds"]
        took = pod.terminate()
        assert pod.proc.returncode == 0, pod.log()
        assert took < remaining, f"{took:.1f} s after SIGTERM, {remaining} s left before SIGKILL"
    finally:
        pod.kill()


def test_the_tls_pod_passes_its_exec_probes(binary, tls, tmp_path):
    """The TLS variant, with a certificate for the probes' --domain: each exec probe's exact command exits 0; with
    another CA it fails (the probes do check the certificate)."""
    trustme = pytest.importorskip("trustme")
    c = roomguard_container(tls)
    command = c["readinessProbe"]["exec"]["command"]
    domain = command[command.index("--domain") + 1]
    ca = trustme.CA()
    cert = ca.issue_cert(domain)
    tls_secret = {
        "tls.crt": "".join(pem.bytes().decode() for pem in cert.cert_chain_pems),
        "tls.key": cert.private_key_pem.bytes().decode(),
        "ca.crt": ca.cert_pem.bytes().decode(),
    }
    pod = Pod(binary, tls, tmp_path, {"roomguard-token": {"token": "t"}, "roomguard-redis": {"password": "p"},
                                      "roomguard-tls": tls_secret})
    try:
        pod.wait_for(lambda: pod.run_probe("startupProbe").returncode == 0)
        for probe in ("readinessProbe", "livenessProbe"):
            done = pod.run_probe(probe)
            assert done.returncode == 0, f"{probe}: {done.stdout}{done.stderr}"
        assert not grpc_probe(pod.grpc_port, ""), "a plaintext probe must fail against the TLS listener"
        other = tmp_path / "other-ca.crt"
        other.write_bytes(trustme.CA().cert_pem.bytes())
        pod.env["ROOMGUARD_HEALTH_CA"] = str(other)
        assert pod.run_probe("readinessProbe").returncode != 0
    finally:
        pod.kill()
