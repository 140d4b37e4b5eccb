"""deploy/helm/kstream rendered by the real Helm library, checked against Kubernetes 1.30.

Every rendered manifest is validated with kubernetes-validate --strict (misspelt fields
fail); the CRD kinds it has no schema for are parsed and their key fields asserted instead.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import helm_python as helm
import kubernetes_validate.utils as kv
import pytest
import yaml

from .conftest import CHART, CLI_ENV, EXAMPLE_APP, KUBE_VERSION, METRICS_PORT, STATE_DIR

RELEASE = "wc"
NAMESPACE = "streams"
FULLNAME = "wc-kstream"

# Custom resources: kubernetes-validate bundles only the built-in API's schemas, so these are
# not schema-checked here (their operators' CRDs are not vendored); tests below assert their
# key fields instead.
CRD_KINDS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "Prometheus Operator CRD",
    ("keda.sh/v1alpha1", "ScaledObject"): "KEDA CRD",
}

PIPELINE = """import kstream

app = kstream.App("orders", batch_interval=2.0)
app.stream("orders").count().to("order-counts")
"""

# One rendering per optional feature switched on, plus the defaults.
CASES: dict[str, dict] = {
    "defaults": {},
    "app-source": {"app": {"id": "orders", "source": PIPELINE, "attr": "app"}},
    "existing-configmap": {
        "app": {"existingConfigMap": "my-pipeline", "existingConfigMapKey": "pipeline.py"}
    },
    "service-monitor": {
        "metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prom"}}}
    },
    "pdb": {"podDisruptionBudget": {"enabled": True}},
    "hpa": {"autoscaling": {"hpa": {"enabled": True, "maxReplicas": 20}}},
    "keda": {
        "app": {"id": "wordcount"},
        "autoscaling": {
            "keda": {
                "enabled": True,
                "maxReplicas": 20,
                "topic": "lines",
                "authenticationRef": "kafka-auth",
            }
        },
    },
    "service-account": {
        "serviceAccount": {"create": True, "annotations": {"iam.example/role": "kstream"}}
    },
    "no-persistence": {"persistence": {"enabled": False}},
    "everything-else": {
        "brokers": "b-1.kafka:9096,b-2.kafka:9096",
        "image": {"repository": "registry.example/kstream", "tag": "1.2.3"},
        "imagePullSecrets": [{"name": "regcred"}],
        "app": {
            "id": "wordcount",
            "batchInterval": 0.5,
            "guarantee": "exactly-once",
            "onError": "skip",
            "stateMemoryMB": 256,
        },
        "kafkaConfig": {
            "security.protocol": "SASL_SSL",
            "sasl.mechanisms": "SCRAM-SHA-512",
            "sasl.username": "$(KAFKA_USERNAME)",
            "sasl.password": "$(KAFKA_PASSWORD)",
            "ssl.ca.location": "/etc/kafka/certs/ca.crt",
            "fetch.max.bytes": 1048576,
            "enable.auto.offset.store": False,
        },
        "extraArgs": ["--log-level", "debug"],
        "extraEnv": [{"name": "TZ", "value": "UTC"}],
        "envFrom": [{"secretRef": {"name": "kafka-credentials"}}],
        "extraVolumes": [{"name": "kafka-certs", "secret": {"secretName": "kafka-ca"}}],
        "extraVolumeMounts": [
            {"name": "kafka-certs", "mountPath": "/etc/kafka/certs", "readOnly": True}
        ],
        "persistence": {
            "storageClass": "fast",
            "size": "20Gi",
            "retentionPolicy": {"whenDeleted": "Delete", "whenScaled": "Retain"},
        },
        "metrics": {"podAnnotations": False},
        "podAnnotations": {"team": "streams"},
        "podLabels": {"tier": "processing"},
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "streams"}],
        "affinity": {
            "podAntiAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "weight": 100,
                        "podAffinityTerm": {
                            "topologyKey": "kubernetes.io/hostname",
                            "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "kstream"}},
                        },
                    }
                ]
            }
        },
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "topology.kubernetes.io/zone",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "kstream"}},
            }
        ],
        "priorityClassName": "streaming",
        "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "2Gi"}},
    },
}


@pytest.fixture(scope="session")
def chart():
    with helm.Chart.load(CHART) as c:
        yield c


def render(chart, values: dict | None = None) -> tuple[list[dict], str]:
    """Rendered manifests (parsed, empty documents dropped) and NOTES.txt."""
    out = chart.render(values=values or {}, name=RELEASE, namespace=NAMESPACE)
    docs, notes = [], ""
    for path, text in sorted(out.items()):
        if path.endswith("NOTES.txt"):
            notes = text
            continue
        docs.extend(d for d in yaml.safe_load_all(text) if d)
    return docs, notes


def one(docs: list[dict], kind: str) -> dict:
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def kinds(docs: list[dict]) -> set[str]:
    return {d["kind"] for d in docs}


def container(docs: list[dict]) -> dict:
    (c,) = one(docs, "StatefulSet")["spec"]["template"]["spec"]["containers"]
    return c


def env_of(docs: list[dict]) -> dict[str, dict]:
    return {e["name"]: e for e in container(docs)["env"]}


def is_crd(doc: dict) -> bool:
    return (doc["apiVersion"], doc["kind"]) in CRD_KINDS


@pytest.fixture(scope="session")
def rendered(chart) -> dict[str, list[dict]]:
    return {name: render(chart, values)[0] for name, values in CASES.items()}


# --- Kubernetes schema validation ------------------------------------------------------


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_manifest_validates_strictly_against_kubernetes_1_30(rendered, case):
    docs = rendered[case]
    assert docs
    for doc in docs:
        if is_crd(doc):
            continue
        # Raises ValidationError (unknown or misspelt field, wrong type) or
        # SchemaNotFoundError (a kind we did not expect).
        kv.validate(doc, KUBE_VERSION, strict=True)


def test_kubernetes_validate_cli_passes_on_all_rendered_files(rendered, tmp_path: Path):
    """The same check as the command line: kubernetes-validate --strict -k 1.30.0 FILE..."""
    files = []
    for case, docs in rendered.items():
        for i, doc in enumerate(d for d in docs if not is_crd(d)):
            path = tmp_path / f"{case}-{i}-{doc['kind'].lower()}.yaml"
            path.write_text(yaml.safe_dump(doc))
            files.append(str(path))
    proc = subprocess.run(
        [sys.executable, "-m", "kubernetes_validate", "--strict", "-k", KUBE_VERSION, *files],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == len(files)
    assert all(line.startswith("INFO") and " passed " in line for line in lines), proc.stdout


# --- helm lint ---------------------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(CASES))
def test_helm_lint_strict_is_clean(case):
    report = helm.lint(CHART, values=CASES[case], strict=True, kube_version=f"v{KUBE_VERSION}")
    # severity: 1 info (only "icon is recommended" is allowed), 2 warning, 3 error.
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert not problems and not report["errors"], report


def test_chart_metadata(chart):
    meta = chart.metadata
    assert meta["apiVersion"] == "v2"
    assert meta["name"] == "kstream"
    assert meta["appVersion"] == "0.1.0"
    assert chart.schema is not None


# --- the defaults ------------------------------------------------------------------------


def test_default_release_objects(rendered):
    docs = rendered["defaults"]
    assert sorted(d["kind"] for d in docs) == ["Service", "Service", "StatefulSet"]


def test_statefulset_probes_ports_and_grace_period(rendered):
    docs = rendered["defaults"]
    sts = one(docs, "StatefulSet")
    pod = sts["spec"]["template"]["spec"]
    c = container(docs)
    assert c["ports"] == [{"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"}]
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert c["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert pod["terminationGracePeriodSeconds"] == 60
    assert sts["spec"]["replicas"] == 2
    assert sts["spec"]["podManagementPolicy"] == "Parallel"


def test_statefulset_runs_the_image_example_by_default(rendered):
    c = container(rendered["defaults"])
    assert c["image"] == "kstream:0.1.0"
    assert "command" not in c  # the image's ENTRYPOINT is `kstream`
    assert c["args"] == ["worker", EXAMPLE_APP]


def test_statefulset_env_follows_the_cli_contract(rendered):
    env = env_of(rendered["defaults"])
    assert env["KSTREAM_GROUP_INSTANCE_ID"] == {
        "name": "KSTREAM_GROUP_INSTANCE_ID",
        "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}},
    }
    assert env["KSTREAM_BROKERS"]["value"] == "kafka:9092"
    assert env["KSTREAM_STATE_DIR"]["value"] == STATE_DIR
    assert env["KSTREAM_METRICS_PORT"]["value"] == str(METRICS_PORT)
    assert env["KSTREAM_GUARANTEE"]["value"] == "at-least-once"
    assert env["KSTREAM_STOP_TIMEOUT"]["value"] == "55"  # 5 s inside the 60 s grace period
    assert "KSTREAM_APP_ID" not in env  # the pipeline's own id unless app.id is set
    assert "KSTREAM_ON_ERROR" not in env  # the pipeline's own poison policy unless set
    assert "KSTREAM_STATE_MEMORY_MB" not in env
    for case, docs in rendered.items():
        names = {n for n in env_of(docs) if n.startswith("KSTREAM_")}
        assert names <= CLI_ENV, (case, names - CLI_ENV)


def test_state_volume_claim_and_mounts(rendered):
    docs = rendered["defaults"]
    sts = one(docs, "StatefulSet")
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "state"
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "1Gi"
    mounts = {m["mountPath"]: m["name"] for m in container(docs)["volumeMounts"]}
    assert mounts == {STATE_DIR: "state", "/tmp": "tmp"}
    volumes = {v["name"]: v for v in sts["spec"]["template"]["spec"]["volumes"]}
    assert "emptyDir" in volumes["tmp"]
    assert "state" not in volumes  # it comes from the claim template


def test_security_context_is_non_root_and_read_only(rendered):
    docs = rendered["defaults"]
    pod = one(docs, "StatefulSet")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["fsGroup"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    sc = container(docs)["securityContext"]
    assert sc["runAsNonRoot"] is True
    assert sc["runAsUser"] == 10001
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}


def test_services_headless_and_metrics(rendered):
    docs = rendered["defaults"]
    sts = one(docs, "StatefulSet")
    services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
    headless = services[sts["spec"]["serviceName"]]
    assert headless["spec"]["clusterIP"] == "None"
    metrics = services[f"{FULLNAME}-metrics"]
    assert metrics["spec"]["ports"] == [
        {"name": "metrics", "port": METRICS_PORT, "targetPort": "metrics", "protocol": "TCP"}
    ]
    pod_labels = sts["spec"]["template"]["metadata"]["labels"]
    for svc in services.values():
        assert svc["spec"]["selector"].items() <= pod_labels.items()
    assert sts["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()


def test_prometheus_scrape_annotations(rendered):
    ann = one(rendered["defaults"], "StatefulSet")["spec"]["template"]["metadata"]["annotations"]
    assert ann["prometheus.io/scrape"] == "true"
    assert ann["prometheus.io/port"] == str(METRICS_PORT)
    assert ann["prometheus.io/path"] == "/metrics"


def test_notes_tell_how_to_reach_the_timeline_page(chart):
    _, notes = render(chart)
    assert f"port-forward pod/{FULLNAME}-0 {METRICS_PORT}:{METRICS_PORT}" in notes
    assert f"http://127.0.0.1:{METRICS_PORT}/ " in notes
    assert f"http://127.0.0.1:{METRICS_PORT}/metrics" in notes


def test_notes_warn_about_idle_pods(chart):
    _, notes = render(chart, {"replicas": 10})
    assert "2 pod(s) will sit idle" in notes


# --- the pipeline: ConfigMap, existing ConfigMap, image ----------------------------------


def test_pipeline_from_source_is_a_mounted_configmap(rendered):
    docs = rendered["app-source"]
    cm = one(docs, "ConfigMap")
    assert cm["data"]["app.py"].strip() == PIPELINE.strip()
    sts = one(docs, "StatefulSet")
    volumes = {v["name"]: v for v in sts["spec"]["template"]["spec"]["volumes"]}
    assert volumes["pipeline"]["configMap"] == {
        "name": cm["metadata"]["name"],
        "items": [{"key": "app.py", "path": "app.py"}],
    }
    mounts = {m["name"]: m for m in container(docs)["volumeMounts"]}
    assert mounts["pipeline"]["mountPath"] == "/app/pipeline"
    assert mounts["pipeline"]["readOnly"] is True
    assert container(docs)["args"][:2] == ["worker", "/app/pipeline/app.py:app"]
    assert env_of(docs)["KSTREAM_APP_ID"]["value"] == "orders"
    # A changed pipeline rolls the pods.
    assert "checksum/pipeline" in sts["spec"]["template"]["metadata"]["annotations"]


def test_pipeline_from_an_existing_configmap(rendered):
    docs = rendered["existing-configmap"]
    assert "ConfigMap" not in kinds(docs)
    volumes = {
        v["name"]: v for v in one(docs, "StatefulSet")["spec"]["template"]["spec"]["volumes"]
    }
    assert volumes["pipeline"]["configMap"] == {
        "name": "my-pipeline",
        "items": [{"key": "pipeline.py", "path": "app.py"}],
    }
    assert container(docs)["args"] == ["worker", "/app/pipeline/app.py"]


def test_pipeline_source_and_existing_configmap_exclude_each_other(chart):
    with pytest.raises(helm.HelmError, match=r"at most one of app\.source"):
        render(chart, {"app": {"source": PIPELINE, "existingConfigMap": "x"}})


def test_pipeline_baked_into_the_image(chart):
    docs, _ = render(chart, {"app": {"path": "mycompany.pipelines.orders", "attr": "app"}})
    assert container(docs)["args"] == ["worker", "mycompany.pipelines.orders:app"]
    assert "ConfigMap" not in kinds(docs)


# --- librdkafka settings, secrets and the rest --------------------------------------------


def test_kafka_config_becomes_x_arguments(rendered):
    args = container(rendered["everything-else"])["args"]
    assert args[:2] == ["worker", EXAMPLE_APP]
    pairs = args[2:-2]
    assert pairs[0::2] == ["-X"] * (len(pairs) // 2)
    assert pairs[1::2] == [
        "enable.auto.offset.store=false",
        "fetch.max.bytes=1048576",  # no float exponent (1.048576e+06)
        "sasl.mechanisms=SCRAM-SHA-512",
        "sasl.password=$(KAFKA_PASSWORD)",  # expanded by the kubelet from envFrom
        "sasl.username=$(KAFKA_USERNAME)",
        "security.protocol=SASL_SSL",
        "ssl.ca.location=/etc/kafka/certs/ca.crt",
    ]
    assert args[-2:] == ["--log-level", "debug"]


def test_secrets_env_volumes_and_scheduling(rendered):
    docs = rendered["everything-else"]
    c = container(docs)
    pod = one(docs, "StatefulSet")["spec"]["template"]
    assert c["envFrom"] == [{"secretRef": {"name": "kafka-credentials"}}]
    env = env_of(docs)
    assert env["TZ"]["value"] == "UTC"
    assert env["KSTREAM_BROKERS"]["value"] == "b-1.kafka:9096,b-2.kafka:9096"
    assert env["KSTREAM_BATCH_INTERVAL"]["value"] == "0.5"
    assert env["KSTREAM_GUARANTEE"]["value"] == "exactly-once"
    assert env["KSTREAM_ON_ERROR"]["value"] == "skip"
    assert env["KSTREAM_STATE_MEMORY_MB"]["value"] == "256"
    assert env["KSTREAM_APP_ID"]["value"] == "wordcount"
    assert {"name": "kafka-certs", "mountPath": "/etc/kafka/certs", "readOnly": True} in c[
        "volumeMounts"
    ]
    assert c["image"] == "registry.example/kstream:1.2.3"
    assert pod["metadata"]["annotations"] == {"team": "streams"}
    assert pod["metadata"]["labels"]["tier"] == "processing"
    assert pod["spec"]["priorityClassName"] == "streaming"
    sts = one(docs, "StatefulSet")
    assert sts["spec"]["persistentVolumeClaimRetentionPolicy"] == {
        "whenDeleted": "Delete",
        "whenScaled": "Retain",
    }
    claim = sts["spec"]["volumeClaimTemplates"][0]["spec"]
    assert claim["storageClassName"] == "fast"
    assert claim["resources"]["requests"]["storage"] == "20Gi"


def test_no_persistence_uses_an_empty_dir(rendered):
    sts = one(rendered["no-persistence"], "StatefulSet")
    assert "volumeClaimTemplates" not in sts["spec"]
    volumes = {v["name"]: v for v in sts["spec"]["template"]["spec"]["volumes"]}
    assert volumes["state"] == {"name": "state", "emptyDir": {}}


def test_service_account(rendered):
    docs = rendered["service-account"]
    sa = one(docs, "ServiceAccount")
    assert sa["metadata"]["name"] == FULLNAME
    assert sa["metadata"]["annotations"] == {"iam.example/role": "kstream"}
    assert one(docs, "StatefulSet")["spec"]["template"]["spec"]["serviceAccountName"] == FULLNAME


# --- optional objects --------------------------------------------------------------------


def test_service_monitor(rendered):
    docs = rendered["service-monitor"]
    sm = one(docs, "ServiceMonitor")
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    assert sm["metadata"]["labels"]["release"] == "prom"
    assert sm["spec"]["endpoints"] == [
        {"port": "metrics", "path": "/metrics", "interval": "15s", "scrapeTimeout": "10s"}
    ]
    assert sm["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    # It selects the metrics Service and only that one.
    selected = [
        d
        for d in docs
        if d["kind"] == "Service"
        and sm["spec"]["selector"]["matchLabels"].items() <= d["metadata"]["labels"].items()
    ]
    assert [s["metadata"]["name"] for s in selected] == [f"{FULLNAME}-metrics"]
    assert selected[0]["spec"]["ports"][0]["name"] == "metrics"


def test_pod_disruption_budget(rendered):
    docs = rendered["pdb"]
    pdb = one(docs, "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1
    pod_labels = one(docs, "StatefulSet")["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()


def test_hpa_is_capped_by_partitions(rendered):
    docs = rendered["hpa"]
    hpa = one(docs, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "name": FULLNAME,
    }
    assert hpa["spec"]["maxReplicas"] == 8  # 20 asked, 8 partitions
    assert hpa["spec"]["minReplicas"] == 1
    assert "replicas" not in one(docs, "StatefulSet")["spec"]  # the autoscaler owns it


def test_keda_scaled_object_on_consumer_lag(rendered):
    docs = rendered["keda"]
    so = one(docs, "ScaledObject")
    assert so["apiVersion"] == "keda.sh/v1alpha1"
    assert so["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "name": FULLNAME,
    }
    assert so["spec"]["maxReplicaCount"] == 8  # 20 asked, 8 partitions
    assert so["spec"]["minReplicaCount"] == 1
    (trigger,) = so["spec"]["triggers"]
    assert trigger["type"] == "kafka"
    assert trigger["authenticationRef"] == {"name": "kafka-auth"}
    meta = trigger["metadata"]
    assert meta["bootstrapServers"] == "kafka:9092"
    assert meta["consumerGroup"] == "wordcount"
    assert meta["topic"] == "lines"
    assert meta["lagThreshold"] == "1000"
    assert all(isinstance(v, str) for v in meta.values())  # KEDA wants strings
    assert "replicas" not in one(docs, "StatefulSet")["spec"]
    assert "HorizontalPodAutoscaler" not in kinds(docs)  # KEDA makes its own


def test_keda_needs_the_consumer_group(chart):
    with pytest.raises(helm.HelmError, match=r"set app\.id"):
        render(chart, {"autoscaling": {"keda": {"enabled": True}}})


def test_hpa_and_keda_exclude_each_other(chart):
    both = {
        "app": {"id": "x"},
        "autoscaling": {"hpa": {"enabled": True}, "keda": {"enabled": True}},
    }
    with pytest.raises(helm.HelmError, match="at most one of autoscaling"):
        render(chart, both)


# --- values and their schema ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"replicas": 0}, "/replicas"),
        ({"replicas": 1.5}, "/replicas"),
        ({"brokers": 9092}, "/brokers"),
        ({"brokers": ""}, "/brokers"),
        ({"brokrs": "kafka:9092"}, "'brokrs' not allowed"),
        ({"app": {"guarantee": "exactly-twice"}}, "/app/guarantee"),
        ({"app": {"onError": "ignore"}}, "/app/onError"),
        ({"app": {"stateMemoryMB": 2}}, "/app/stateMemoryMB"),
        ({"app": {"stateMemoryMB": "64Mi"}}, "/app/stateMemoryMB"),
        ({"terminationGracePeriodSeconds": 5}, "/terminationGracePeriodSeconds"),
        ({"app": {"sourc": "x"}}, "'sourc' not allowed"),
        ({"app": {"batchInterval": 0}}, "/app/batchInterval"),
        ({"kafkaConfig": {"sasl": {"username": "u"}}}, "/kafkaConfig"),
        ({"metrics": {"port": 70000}}, "/metrics/port"),
        ({"partitions": 0}, "/partitions"),
        ({"autoscaling": {"keda": {"maxReplicas": "8"}}}, "/autoscaling/keda/maxReplicas"),
        ({"probes": {"liveness": {"path": "/x"}}}, "'path' not allowed"),
    ],
)
def test_schema_refuses_invalid_values(chart, values, complaint):
    with pytest.raises(helm.HelmValuesError, match=re.escape(complaint)):
        chart.validate_schema(values)
    with pytest.raises(helm.HelmValuesError):
        render(chart, values)


@pytest.mark.parametrize("case", sorted(CASES))
def test_schema_accepts_every_case(chart, case):
    chart.validate_schema(CASES[case])


def test_every_schema_property_has_a_default(chart):
    """values.yaml and values.schema.json describe the same keys."""
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())

    def walk(schema: dict, values: dict, where: str) -> None:
        for key, sub in schema.get("properties", {}).items():
            if key == "global":
                continue
            assert key in values, f"{where}{key} is in the schema but not in values.yaml"
            if sub.get("additionalProperties") is False and values[key]:  # {}: all optional
                walk(sub, values[key], f"{where}{key}.")

    walk(chart.schema, defaults, "")


def test_every_value_is_commented():
    """Each leaf key in values.yaml has a comment above it or above one of its parents."""
    lines = (CHART / "values.yaml").read_text().splitlines()
    keys = []  # (indent, key, commented)
    previous = ""
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("#") or not stripped:
            previous = stripped  # a blank line detaches a comment from the next key
            continue
        if stripped.startswith("- "):
            previous = ""
            continue
        key = stripped.split(":", 1)[0]
        keys.append((len(line) - len(line.lstrip()), key, previous.startswith("#")))
        previous = ""
    undocumented = []
    stack: list[tuple[int, bool]] = []  # (indent, covered) of the open parents
    for i, (indent, key, commented) in enumerate(keys):
        while stack and stack[-1][0] >= indent:
            stack.pop()
        covered = commented or any(c for _, c in stack)
        is_leaf = i + 1 == len(keys) or keys[i + 1][0] <= indent
        if is_leaf and not covered:
            undocumented.append(key)
        stack.append((indent, covered))
    assert not undocumented, f"values without a comment: {undocumented}"
