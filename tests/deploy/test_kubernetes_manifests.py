"""Offline checks of deploy/kubernetes (no cluster, no kubectl, no network): the kustomization
builds; every document validates against the Kubernetes schemas (kubernetes-validate's
vendored ones) or, for KEDA's resources, against KEDA's CRD schemas vendored in schemas/;
every MEMESWAP_* variable the manifests and deploy/compose.yaml set is a real setting, and
each container's environment, as Kubernetes would give it, builds a valid `Settings`; and the
pieces agree with each other and with the code (ports, probes, the jobs stream's name)."""

from __future__ import annotations

import base64
import copy
import os
import re
import socket
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from memeswap.bot.settings import Settings
from memeswap.inference.jobs.redis_protocol import StreamKeys

ROOT = Path(__file__).resolve().parents[2]
KUBE = ROOT / "deploy" / "kubernetes"
COMPOSE = ROOT / "deploy" / "compose.yaml"
SCHEMAS = Path(__file__).parent / "schemas"
# The oldest Kubernetes the manifests support (the pod-index label is 1.28's) and the newest
# whose schemas kubernetes-validate carries.
KUBERNETES_VERSIONS = ("1.28", kubernetes_validate.latest_version())
KEDA_SCHEMAS = {
    "ScaledObject": "keda.sh_scaledobjects.v1alpha1.yaml",
    "TriggerAuthentication": "keda.sh_triggerauthentications.v1alpha1.yaml",
}
# What the offline build below does of kustomize; anything else in kustomization.yaml is refused,
# so a manifest change cannot rely on a feature these checks do not see.
KUSTOMIZE_FIELDS = {"apiVersion", "kind", "namespace", "resources", "secretGenerator", "generatorOptions"}
POD_INDEX = "metadata.labels['apps.kubernetes.io/pod-index']"
PREFIX = "MEMESWAP_"


# --- the offline build ------------------------------------------------------------------------

def read_env_file(path: Path) -> dict[str, str]:
    """KEY=value lines, as kustomize's `envs` reads them (no quotes, `#` comments)."""
    pairs = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            pairs[key] = value
    return pairs


def build(directory: Path = KUBE) -> list[dict[str, Any]]:
    """`kustomize build`, for the features kustomization.yaml uses. The Secret is made from
    secret.example.env: secret.env holds real tokens and is never committed."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    assert set(kustomization) <= KUSTOMIZE_FIELDS, set(kustomization) - KUSTOMIZE_FIELDS
    documents = []
    for name in kustomization["resources"]:
        documents += [doc for doc in yaml.safe_load_all((directory / name).read_text()) if doc]
    for generator in kustomization.get("secretGenerator", []):
        data = {}
        for env_file in generator["envs"]:
            example = directory / env_file.replace(".env", ".example.env")
            data.update(read_env_file(example))
        documents.append({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": generator["name"]},
                          "type": "Opaque",
                          "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}})
    assert kustomization["generatorOptions"] == {"disableNameSuffixHash": True}
    for doc in documents:
        if doc["kind"] != "Namespace":
            doc["metadata"]["namespace"] = kustomization["namespace"]
    return documents


def test_the_kustomization_lists_every_manifest_but_the_one_off_jobs():
    listed = set(yaml.safe_load((KUBE / "kustomization.yaml").read_text())["resources"])
    files = {path.name for path in KUBE.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == {name for name in files if not name.endswith(".job.yaml")}


@pytest.fixture(scope="module")
def documents() -> list[dict[str, Any]]:
    return build()


def the(documents: list[dict], kind: str, name: str | None = None) -> dict:
    found = [d for d in documents if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"{len(found)} {kind} {name or ''}"
    return found[0]


def every(documents: list[dict], *kinds: str) -> list[dict]:
    return [d for d in documents if d["kind"] in kinds]


def workloads(documents: list[dict]) -> list[dict]:
    return every(documents, "StatefulSet", "Deployment", "Job")


def loose_manifests() -> list[dict]:
    """The one-off manifests beside the kustomization (applied by hand, checked the same)."""
    return [doc for path in sorted(KUBE.glob("*.job.yaml")) for doc in yaml.safe_load_all(path.read_text()) if doc]


# --- schema validation ----------------------------------------------------------------------

@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Every check here runs with the network refused: the schemas are local."""
    def refuse(*args, **kwargs):
        raise AssertionError("a manifest check tried to use the network")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def forbid_unnamed_properties(schema: Any) -> Any:
    """A copy of an OpenAPI schema that refuses properties it does not name (strict field
    validation: a misspelt field is an error, not silently dropped)."""
    if isinstance(schema, dict):
        strict = {key: forbid_unnamed_properties(value) for key, value in schema.items()}
        if "properties" in schema and "additionalProperties" not in schema:
            strict["additionalProperties"] = False
        return strict
    if isinstance(schema, list):
        return [forbid_unnamed_properties(item) for item in schema]
    return schema


def keda_validator(kind: str) -> jsonschema.Draft202012Validator:
    schema = yaml.safe_load((SCHEMAS / KEDA_SCHEMAS[kind]).read_text())
    return jsonschema.Draft202012Validator(forbid_unnamed_properties(schema))


def validate(doc: dict, version: str) -> None:
    """Raises a jsonschema.ValidationError (kubernetes-validate's is one) for a bad document."""
    if doc["apiVersion"].startswith("keda.sh/"):
        assert doc["apiVersion"] == "keda.sh/v1alpha1"
        keda_validator(doc["kind"]).validate(doc)
    else:
        kubernetes_validate.validate(doc, version, strict=True)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_document_validates_against_its_schema(documents, version):
    kinds = set()
    for doc in documents + loose_manifests():
        validate(doc, version)
        kinds.add(doc["kind"])
    assert {"Namespace", "ConfigMap", "Secret", "PersistentVolumeClaim", "StatefulSet", "Deployment", "Service",
            "Ingress", "PodDisruptionBudget", "ScaledObject", "TriggerAuthentication", "Job"} <= kinds


@pytest.mark.parametrize("break_it", [
    lambda d: d["spec"]["template"]["spec"].update(container=d["spec"]["template"]["spec"].pop("containers")),
    lambda d: d["spec"]["template"]["spec"].update(terminationGracePeriodSeconds="130"),
    lambda d: d["spec"]["template"]["spec"]["containers"][0]["ports"][0].update(containerPort="ops"),
], ids=["containers misspelt", "a string for an int", "a name for a port number"])
def test_the_kubernetes_check_refuses_a_broken_manifest(documents, break_it):
    broken = copy.deepcopy(the(documents, "Deployment", "memeswap-worker"))
    break_it(broken)
    with pytest.raises(jsonschema.ValidationError):
        validate(broken, KUBERNETES_VERSIONS[0])


@pytest.mark.parametrize("kind, break_it", [
    ("ScaledObject", lambda d: d["spec"]["triggers"][0]["metadata"].update(streamLength=2)),
    ("ScaledObject", lambda d: d["spec"].update(minReplicas=d["spec"].pop("minReplicaCount"))),
    ("ScaledObject", lambda d: d["spec"]["scaleTargetRef"].pop("name")),
    ("TriggerAuthentication", lambda d: d["spec"]["secretTargetRef"][0].pop("key")),
    ("TriggerAuthentication", lambda d: d["spec"].update(secretTargetRefs=d["spec"].pop("secretTargetRef"))),
], ids=["a number where KEDA takes strings", "minReplicas misspelt", "no target name", "no secret key",
        "secretTargetRef misspelt"])
def test_the_keda_check_refuses_a_broken_resource(documents, kind, break_it):
    broken = copy.deepcopy(the(documents, kind))
    break_it(broken)
    with pytest.raises(jsonschema.ValidationError):
        validate(broken, KUBERNETES_VERSIONS[0])


# --- MEMESWAP_* variables -------------------------------------------------------------------

def unknown_settings(names: set[str]) -> set[str]:
    """The MEMESWAP_* names among `names` that no field of Settings reads."""
    known = {PREFIX + field.upper() for field in Settings.model_fields}
    return {name for name in names if name.startswith(PREFIX) and name not in known}


def containers(documents: list[dict]) -> list[tuple[dict, dict]]:
    return [(workload, container) for workload in workloads(documents)
            for container in workload["spec"]["template"]["spec"]["containers"]]


def manifest_variables(documents: list[dict]) -> set[str]:
    names = set(the(documents, "ConfigMap", "memeswap-config")["data"])
    names |= set(read_env_file(KUBE / "secret.example.env"))
    for _, container in containers(documents + loose_manifests()):
        names |= {variable["name"] for variable in container.get("env", [])}
    return names


def compose_variables(compose: dict) -> set[str]:
    """The variables compose sets in containers: each service's `environment` (a mapping, or
    a list of KEY=value), and the keys of the examples beside it of its `env_file`s."""
    names = set()
    for service in (compose.get("services") or {}).values():
        environment = service.get("environment") or {}
        if isinstance(environment, dict):
            names |= set(environment)
        else:
            names |= {entry.partition("=")[0] for entry in environment}
        env_files = service.get("env_file") or []
        for entry in [env_files] if isinstance(env_files, (str, dict)) else env_files:
            name = Path(entry["path"] if isinstance(entry, dict) else entry).name  # .env: example.env, .env.example
            for example in {*COMPOSE.parent.glob(name + "*example*"), *COMPOSE.parent.glob("*example*" + name)}:
                names |= example_names(example)
    return names


def example_names(path: Path) -> set[str]:
    """The names an env-file example sets, commented-out ones (`# MEMESWAP_X=`) included."""
    return {match[1] for match in re.finditer(r"^#?\s*([A-Z][A-Z0-9_]*)=", path.read_text(), re.MULTILINE)}


def test_every_memeswap_variable_set_by_the_manifests_is_a_setting(documents):
    names = manifest_variables(documents)
    assert {"MEMESWAP_DATA_DIR", "MEMESWAP_REDIS_URL", "MEMESWAP_DISCORD_SHARD_IDS"} <= names
    assert unknown_settings(names) == set()


def test_every_memeswap_variable_set_by_compose_is_a_setting():
    names = set()
    for path in COMPOSE.parent.glob("**/compose*.yaml"):  # the file, its overrides, the smoke test's
        names |= compose_variables(yaml.safe_load(path.read_text()))
    assert {"MEMESWAP_REDIS_URL", "MEMESWAP_TELEGRAM_TOKEN"} <= names  # (the token from the env-file example)
    assert unknown_settings(names) == set()


def test_the_variable_check_catches_a_made_up_setting():
    assert unknown_settings({"MEMESWAP_NOPE", "MEMESWAP_DATA_DIR", "POSTGRES_USER"}) == {"MEMESWAP_NOPE"}
    as_mapping = {"services": {"bot": {"environment": {"MEMESWAP_NOPE": "1", "MEMESWAP_LOG_FORMAT": "json"}}}}
    as_list = {"services": {"bot": {"environment": ["MEMESWAP_NOPE=1", "MEMESWAP_LOG_FORMAT=json"]}}}
    for compose in (as_mapping, as_list):
        assert unknown_settings(compose_variables(compose)) == {"MEMESWAP_NOPE"}


def container_environment(documents: list[dict], workload: dict, container: dict, index: int = 0) -> dict[str, str]:
    """The environment Kubernetes gives `container` of pod `index` of `workload`."""
    secret = the(documents, "Secret", "memeswap-secrets")
    environment = {}
    for source in container.get("envFrom", []):
        environment.update(the(documents, "ConfigMap", source["configMapRef"]["name"])["data"])
    for variable in container.get("env", []):
        if "value" in variable:
            environment[variable["name"]] = variable["value"]
        elif "secretKeyRef" in variable["valueFrom"]:
            ref = variable["valueFrom"]["secretKeyRef"]
            assert ref["name"] == secret["metadata"]["name"]
            environment[variable["name"]] = base64.b64decode(secret["data"][ref["key"]]).decode()
        else:
            assert variable["valueFrom"]["fieldRef"]["fieldPath"] == POD_INDEX
            environment[variable["name"]] = str(index)
    return environment


def settings_of(environment: dict[str, str], monkeypatch) -> Settings:
    with monkeypatch.context() as patch:
        for name in [name for name in os.environ if name.startswith(PREFIX)]:
            patch.delenv(name)
        for name, value in environment.items():
            patch.setenv(name, value)
        return Settings(_env_file=None)


def test_every_container_environment_makes_valid_settings(documents, monkeypatch):
    for workload, container in containers(documents + loose_manifests()):
        settings_of(container_environment(documents, workload, container), monkeypatch)  # raises if not


def test_the_settings_check_catches_a_value_that_does_not_parse(documents, monkeypatch):
    workload, container = containers(documents)[0]
    environment = container_environment(documents, workload, container)
    environment["MEMESWAP_JOB_DEADLINE_S"] = "two minutes"
    with pytest.raises(ValueError, match="job_deadline_s"):
        settings_of(environment, monkeypatch)


# --- the pieces agree -----------------------------------------------------------------------

def pod_spec(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]


def port_number(container: dict, port: int | str) -> int:
    if isinstance(port, int):
        return port
    return next(p["containerPort"] for p in container["ports"] if p["name"] == port)


def selects(selector: dict, labels: dict) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def test_probes_ask_healthz_on_the_ops_port(documents, monkeypatch):
    for workload, container in containers(documents):
        settings = settings_of(container_environment(documents, workload, container), monkeypatch)
        assert settings.ops_host == "0.0.0.0"
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            check = container[probe]["httpGet"]
            assert check["path"] == "/healthz", (workload["metadata"]["name"], probe)
            assert port_number(container, check["port"]) == settings.ops_port == 9464
        # liveness waits for start-up, and tolerates a stretch of "degraded" (Redis away)
        startup, liveness = container["startupProbe"], container["livenessProbe"]
        assert startup["periodSeconds"] * startup["failureThreshold"] >= settings.startup_wait_s + 60  # + models
        assert liveness["periodSeconds"] * liveness["failureThreshold"] >= 120


def test_pods_run_unprivileged(documents):
    for workload in workloads(documents) + loose_manifests():
        spec = pod_spec(workload)
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] == 10001
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert spec["automountServiceAccountToken"] is False
        empty_dirs = {v["name"] for v in spec["volumes"] if "emptyDir" in v}
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["capabilities"]["drop"] == ["ALL"] and context["allowPrivilegeEscalation"] is False
            assert context["readOnlyRootFilesystem"] is True
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert mounts["/tmp"] in empty_dirs


def test_volumes_configs_and_secrets_referenced_exist(documents):
    claims = {d["metadata"]["name"] for d in every(documents, "PersistentVolumeClaim")}
    for workload in workloads(documents) + loose_manifests():
        for volume in pod_spec(workload)["volumes"]:
            if "persistentVolumeClaim" in volume:
                assert volume["persistentVolumeClaim"]["claimName"] in claims
    secret_keys = set(read_env_file(KUBE / "secret.example.env"))
    used = set()
    for _, container in containers(documents):
        used |= {v["valueFrom"]["secretKeyRef"]["key"] for v in container.get("env", [])
                 if "secretKeyRef" in v.get("valueFrom", {})}
    used |= {ref["key"] for ref in the(documents, "TriggerAuthentication")["spec"]["secretTargetRef"]}
    assert used == secret_keys  # every key is used, and every key used is in the example


def test_workers_take_a_gpu_and_the_time_to_finish_a_job(documents, monkeypatch):
    worker = the(documents, "Deployment", "memeswap-worker")
    spec = pod_spec(worker)
    (container,) = spec["containers"]
    assert container["image"] == "memeswap:gpu" and container["args"] == ["worker"]
    assert int(container["resources"]["limits"]["nvidia.com/gpu"]) == 1
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
    assert "replicas" not in worker["spec"]  # KEDA owns the count
    assert worker["spec"]["strategy"]["rollingUpdate"]["maxSurge"] == 0  # a rollout needs no spare GPU
    settings = settings_of(container_environment(documents, worker, container), monkeypatch)
    assert spec["terminationGracePeriodSeconds"] >= settings.job_deadline_s + 10
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts[str(settings.models_dir)]["readOnly"] is True
    assert str(settings.data_dir) in mounts


def test_bots_drain_within_their_grace_period(documents, monkeypatch):
    for bot in every(documents, "StatefulSet"):
        (container,) = pod_spec(bot)["containers"]
        assert container["image"] == "memeswap:latest" and container["args"] == ["serve"]
        settings = settings_of(container_environment(documents, bot, container), monkeypatch)
        assert pod_spec(bot)["terminationGracePeriodSeconds"] >= settings.shutdown_grace_s + 5


def test_each_discord_pod_runs_its_own_shard(documents, monkeypatch):
    discord = the(documents, "StatefulSet", "memeswap-discord")
    (container,) = pod_spec(discord)["containers"]
    replicas = discord["spec"]["replicas"]
    assert replicas >= 2
    for index in range(replicas):
        settings = settings_of(container_environment(documents, discord, container, index), monkeypatch)
        assert settings.discord_shards == replicas
        assert settings.discord_shard_ids == [index]
        assert settings.discord_token is not None and settings.telegram_token is None


def test_telegram_runs_in_one_pod_behind_the_webhook_ingress(documents):
    telegram = the(documents, "StatefulSet", "memeswap-telegram")
    assert telegram["spec"]["replicas"] == 1
    (container,) = pod_spec(telegram)["containers"]
    environment = container_environment(documents, telegram, container)
    assert "MEMESWAP_DISCORD_TOKEN" not in environment
    assert environment["MEMESWAP_TELEGRAM_WEBHOOK_LISTEN"] == "0.0.0.0"
    url = environment["MEMESWAP_TELEGRAM_WEBHOOK_URL"]
    assert url.startswith("https://")
    host, _, path = url.removeprefix("https://").partition("/")
    ingress = the(documents, "Ingress")
    (rule,) = ingress["spec"]["rules"]
    (route,) = rule["http"]["paths"]
    assert rule["host"] == host and route["path"] == "/" + path and route["pathType"] in ("Exact", "Prefix")
    assert host in ingress["spec"]["tls"][0]["hosts"]
    service = the(documents, "Service", route["backend"]["service"]["name"])
    assert selects(service["spec"]["selector"], telegram["spec"]["template"]["metadata"]["labels"])
    (port,) = [p for p in service["spec"]["ports"] if p["name"] == route["backend"]["service"]["port"]["name"]]
    assert port_number(container, port["targetPort"]) == int(environment["MEMESWAP_TELEGRAM_WEBHOOK_PORT"]) == 8443


def test_bots_have_a_headless_service_and_a_disruption_budget(documents):
    bots = every(documents, "StatefulSet")
    for bot in bots:
        service = the(documents, "Service", bot["spec"]["serviceName"])
        assert service["spec"]["clusterIP"] == "None"
        assert selects(service["spec"]["selector"], bot["spec"]["template"]["metadata"]["labels"])
        assert selects(bot["spec"]["selector"]["matchLabels"], bot["spec"]["template"]["metadata"]["labels"])
    budgets = every(documents, "PodDisruptionBudget")
    for workload in bots + [the(documents, "Deployment")]:
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert any(selects(b["spec"]["selector"]["matchLabels"], labels) for b in budgets), workload["metadata"]
    bot_budget = the(documents, "PodDisruptionBudget", "memeswap-bots")
    assert bot_budget["spec"]["maxUnavailable"] == 1


def test_keda_scales_the_workers_on_the_jobs_stream_length(documents, monkeypatch):
    """XLEN of the jobs stream, not the `workers` group's lag: see autoscaling.yaml and
    test_worker_scaling_signal.py."""
    worker = the(documents, "Deployment", "memeswap-worker")
    scaled = the(documents, "ScaledObject")
    assert scaled["spec"]["scaleTargetRef"] == {"name": worker["metadata"]["name"]}  # apps/v1 Deployment
    assert scaled["spec"]["minReplicaCount"] == 0 < scaled["spec"]["maxReplicaCount"]
    (trigger,) = scaled["spec"]["triggers"]
    (container,) = pod_spec(worker)["containers"]
    settings = settings_of(container_environment(documents, worker, container), monkeypatch)
    assert trigger["type"] == "redis-streams"
    assert trigger["metadata"]["stream"] == StreamKeys(settings.redis_prefix).jobs
    assert int(trigger["metadata"]["streamLength"]) >= 1
    # a consumer group would switch KEDA to the group's lag or its pending entries
    assert not {"consumerGroup", "lagCount", "pendingEntriesCount"} & set(trigger["metadata"])
    redis_url = settings.redis_url.get_secret_value()
    assert redis_url.endswith("/" + trigger["metadata"]["databaseIndex"])
    auth = the(documents, "TriggerAuthentication", trigger["authenticationRef"]["name"])
    secret = the(documents, "Secret")
    parameters = {ref["parameter"]: base64.b64decode(secret["data"][ref["key"]]).decode()
                  for ref in auth["spec"]["secretTargetRef"] if ref["name"] == secret["metadata"]["name"]}
    assert set(parameters) == {"address", "password"}
    # the example's KEDA address and password are those of its MEMESWAP_REDIS_URL
    assert f":{parameters['password']}@{parameters['address']}/" in redis_url
