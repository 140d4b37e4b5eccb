"""docker-compose.yml: valid by the Compose Specification, and wired as the CLI expects."""

from __future__ import annotations

import json
import re
import shlex

import jsonschema
import pytest

from .conftest import CLI_ENV, EXAMPLE_APP, METRICS_PORT, REPO, STATE_DIR, VENDOR


def test_compose_file_is_valid_by_the_compose_spec(compose):
    schema = json.loads((VENDOR / "compose-spec.json").read_text())
    validator = jsonschema.validators.validator_for(schema)
    validator.check_schema(schema)
    errors = sorted(validator(schema).iter_errors(compose), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_the_vendored_schema_catches_mistakes(compose):
    schema = json.loads((VENDOR / "compose-spec.json").read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    broken = json.loads(json.dumps(compose))
    broken["services"]["worker"]["enviroment"] = {"KSTREAM_BROKERS": "kafka:19092"}
    broken["services"]["worker"]["depends_on"]["kafka"]["condition"] = "service_happy"
    assert len(list(validator.iter_errors(broken))) == 2


def test_services(compose):
    services = compose["services"]
    assert set(services) == {"kafka", "topics-init", "worker", "load", "prometheus", "grafana"}
    # Optional extras are behind profiles, so a plain `up` starts only the core set.
    assert services["grafana"]["profiles"] == ["grafana"]
    assert services["load"]["profiles"] == ["load"]
    for name in ("kafka", "topics-init", "worker", "prometheus"):
        assert "profiles" not in services[name]


def listeners(kafka: dict) -> dict[str, str]:
    """KAFKA_ADVERTISED_LISTENERS as {listener name: host:port}."""
    text = kafka["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    return dict(item.split("://") for item in text.split(","))


def test_kafka_is_one_kraft_node_reachable_from_containers_and_host(compose):
    kafka = compose["services"]["kafka"]
    env = kafka["environment"]
    assert kafka["image"].startswith("apache/kafka:")
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"].startswith(f"{env['KAFKA_NODE_ID']}@")
    advertised = listeners(kafka)
    assert advertised["EXTERNAL"] == "localhost:9092"
    assert advertised["INTERNAL"].startswith("kafka:")
    assert "9092:9092" in kafka["ports"]
    protocols = dict(p.split(":") for p in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    assert set(advertised) | {env["KAFKA_CONTROLLER_LISTENER_NAMES"]} == set(protocols)
    # A single node cannot have replicated internal topics.
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == 1
    assert env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == 1
    test = " ".join(kafka["healthcheck"]["test"])
    assert "kafka-broker-api-versions.sh" in test


def test_topics_init_creates_the_example_topics(compose):
    services = compose["services"]
    init = services["topics-init"]
    internal = listeners(services["kafka"])["INTERNAL"]
    assert init["image"] == services["kafka"]["image"]
    assert init["depends_on"]["kafka"]["condition"] == "service_healthy"
    script = " ".join(init["command"]).replace("\\\n", " ")
    created = {}
    for line in script.splitlines():
        argv = shlex.split(line)
        if "--create" in argv:
            assert argv[argv.index("--bootstrap-server") + 1] == internal
            created[argv[argv.index("--topic") + 1]] = int(argv[argv.index("--partitions") + 1])
    assert created == {"lines": 8, "word-counts": 8}
    # The example reads and writes exactly these.
    example = (REPO / "examples" / "wordcount.py").read_text()
    assert '"lines"' in example
    assert '"word-counts"' in example


def test_worker_runs_the_example_against_the_internal_listener(compose):
    services = compose["services"]
    worker = services["worker"]
    env = worker["environment"]
    assert set(env) <= CLI_ENV, set(env) - CLI_ENV
    assert env["KSTREAM_BROKERS"] == listeners(services["kafka"])["INTERNAL"]
    assert env["KSTREAM_STATE_DIR"] == STATE_DIR
    assert int(env["KSTREAM_METRICS_PORT"]) == METRICS_PORT
    assert env["KSTREAM_GUARANTEE"] == "${KSTREAM_GUARANTEE:-at-least-once}"
    assert env["KSTREAM_ON_ERROR"] == "${KSTREAM_ON_ERROR:-dlq}"
    assert env["KSTREAM_STATE_MEMORY_MB"] == "${KSTREAM_STATE_MEMORY_MB:-64}"
    assert float(env["KSTREAM_STOP_TIMEOUT"]) < duration(worker["stop_grace_period"])
    assert worker["command"] == ["worker", EXAMPLE_APP]
    assert worker["build"] == {"context": ".", "dockerfile": "Dockerfile"}
    assert (REPO / worker["build"]["dockerfile"]).is_file()
    assert worker["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert worker["depends_on"]["topics-init"]["condition"] == "service_completed_successfully"
    assert worker["deploy"]["replicas"] == 2


def test_worker_scales(compose):
    """`--scale worker=N` must not clash: no fixed name, no fixed host port."""
    worker = compose["services"]["worker"]
    assert "container_name" not in worker
    assert "hostname" not in worker
    assert str(METRICS_PORT) in [str(p) for p in worker["expose"]]
    for port in worker.get("ports", []):
        # [ip:]host:container with an empty host part means "any free port".
        parts = str(port).split(":")
        assert parts[-1] == str(METRICS_PORT)
        assert len(parts) == 1 or parts[-2] == "", f"fixed host port in {port!r}"


def test_bind_mounts_exist(compose):
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (REPO / source).exists(), f"{name}: {source} is missing"


def test_prometheus_gets_its_config_and_rules(compose):
    prometheus = compose["services"]["prometheus"]
    assert prometheus["image"].startswith("prom/prometheus:")
    targets = {v.split(":")[1]: v.split(":")[0] for v in prometheus["volumes"]}
    assert targets["/etc/prometheus/prometheus.yml"] == "./deploy/prometheus/prometheus.yml"
    assert targets["/etc/prometheus/alerts.yml"] == "./deploy/prometheus/alerts.yml"


def test_grafana_provisioning_is_mounted(compose):
    grafana = compose["services"]["grafana"]
    targets = {v.split(":")[1]: v.split(":")[0] for v in grafana["volumes"]}
    assert targets["/etc/grafana/provisioning"] == "./deploy/grafana/provisioning"
    dashboard = "/var/lib/grafana/dashboards/kstream-dashboard.json"
    assert targets[dashboard] == "./deploy/grafana/kstream-dashboard.json"


@pytest.mark.parametrize("service", ["topics-init", "load"])
def test_one_shot_scripts_need_no_compose_interpolation(compose, service):
    """A lone `$` in a compose command is interpolated by compose, not by the shell."""
    script = " ".join(compose["services"][service]["command"])
    assert not re.search(r"(?<!\$)\$(?!\$)", script)


def duration(compose_duration: str) -> float:
    """A compose duration such as "30s" or "1m30s" in seconds."""
    units = {"h": 3600, "m": 60, "s": 1}
    total, number = 0.0, ""
    for ch in compose_duration:
        if ch in units:
            total, number = total + float(number) * units[ch], ""
        else:
            number += ch
    return total
