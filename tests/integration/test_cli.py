"""The `kstream` command as a user runs it: errors, describe, demo, SIGTERM, metrics."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from kstream.testing import free_port, produce
from tests.integration.workers import APPS, FAST, stop, wait_for

KSTREAM = [sys.executable, "-m", "kstream"]


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 60):
    return subprocess.run(
        [*KSTREAM, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def test_missing_source_topic_is_one_line_and_exit_2(bootstrap):
    env = {"KS_TEST_INPUT": "no-such-topic", "KS_TEST_OUTPUT": "no-such-output"}
    r = run("worker", str(APPS / "wordcount.py"), "--brokers", bootstrap, *FAST, env=env)
    assert r.returncode == 2, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("kstream: error:")]
    assert len(lines) == 1 and "'no-such-topic' does not exist" in lines[0], r.stderr


def test_unreachable_broker_is_one_line_and_exit_2():
    env = {"KS_TEST_INPUT": "a", "KS_TEST_OUTPUT": "b"}
    port = free_port()  # nothing listens there
    r = run("worker", str(APPS / "wordcount.py"), "--brokers", f"127.0.0.1:{port}", env=env)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1].startswith("kstream: error: cannot reach Kafka")


@pytest.mark.parametrize("where", ["file", "option"])
def test_an_app_id_kafka_would_refuse_is_one_line_and_exit_2(tmp_path, where):
    app = tmp_path / "bad_id.py"
    app_id = "orders--v2" if where == "file" else "orders/v2"
    app.write_text(f'import kstream\napp = kstream.App("{app_id if where == "file" else "ok"}")\n')
    more = ["--app-id", app_id] if where == "option" else []
    r = run("worker", str(app), "--brokers", "127.0.0.1:1", *more)
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1 and f"app_id={app_id!r}" in r.stderr, r.stderr


def test_bad_setting_and_bad_app_path_exit_2(tmp_path):
    app = tmp_path / "bad_serde.py"
    app.write_text('import kstream\napp = kstream.App("x")\napp.stream("t", value_serde="yaml")\n')
    r = run("describe", str(app))
    assert r.returncode == 2 and "value_serde='yaml' is not a known serde" in r.stderr
    r = run("describe", str(tmp_path / "missing.py"))
    assert r.returncode == 2 and "no such file" in r.stderr
    r = run(
        "worker",
        str(APPS / "wordcount.py"),
        "-X",
        "novalue",
        env={"KS_TEST_INPUT": "a", "KS_TEST_OUTPUT": "b"},
    )
    assert r.returncode == 2 and "-X 'novalue': expected key=value" in r.stderr


def test_describe_lists_stages_and_internal_topics():
    env = {"KS_TEST_INPUT": "lines", "KS_TEST_OUTPUT": "counts"}
    r = run("describe", str(APPS / "wordcount.py"), "--json", env=env)
    assert r.returncode == 0, r.stderr
    topology = json.loads(r.stdout)
    assert [s["reads"] for s in topology["stages"]] == [
        ["lines"],
        ["it-wordcount--reduce_by_key.add--repartition"],
    ]
    assert topology["internal_topics"] == ["it-wordcount--reduce_by_key.add--repartition"]
    assert topology["stages"][1]["writes"] == ["counts"]


def test_describe_shows_no_second_shuffle_after_a_keyed_operator(tmp_path):
    """map_with_state reads reduce_by_key's output, already spread by key, in its stage."""
    app = tmp_path / "totals.py"
    app.write_text(
        "import operator\n"
        "import kstream\n"
        'app = kstream.App("totals")\n'
        "def total(word, n, state):\n"
        "    state.update((state.get() if state.exists() else 0) + n)\n"
        "    return (word, state.get())\n"
        'counts = app.stream("lines").map(lambda w: (w, 1)).reduce_by_key(operator.add)\n'
        'counts.map_with_state(kstream.StateSpec(total)).to("totals")\n'
    )
    r = run("describe", str(app), "--json")
    assert r.returncode == 0, r.stderr
    topology = json.loads(r.stdout)
    repartition = "totals--reduce_by_key.add--repartition"
    assert [s["reads"] for s in topology["stages"]] == [["lines"], [repartition]]
    assert topology["stages"][1]["operators"] == [
        "reduce_by_key as reduce_by_key.add",
        "map_with_state as map_with_state.total",
        "mapped",
        "to(totals)",
    ]
    assert topology["internal_topics"] == [repartition, "totals--map_with_state.total--changelog"]


def test_demo_prints_batches_and_exits_0():
    r = run("demo", "--duration", "6", "--rate", "50", timeout=90)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.count("Time: ") >= 3, r.stdout
    assert "demo done" in r.stdout
    # word counts such as ('the', 12) appear under the batch headers
    assert any(line.startswith("('") and line.endswith(")") for line in r.stdout.splitlines())


def test_sigterm_finishes_the_batch_commits_and_exits_0(bootstrap, topics, app_id, tmp_path):
    source, output = topics("lines", 2), topics("counts", 1)
    now = int(time.time() * 1000)
    produce(bootstrap, source, [(None, b"a b a", now - 5000), (None, b"b", now - 3000)])
    port = free_port()
    env = {"KS_TEST_INPUT": source, "KS_TEST_OUTPUT": output}
    log = tmp_path / "w.log"
    cmd = [
        *KSTREAM,
        "worker",
        str(APPS / "wordcount.py"),
        "--app-id",
        app_id,
        "--brokers",
        bootstrap,
        "--metrics-port",
        str(port),
        *FAST,
    ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **env}
        )

    def metric(name: str) -> float:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            text = r.read().decode()
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith(name + "{") or line.startswith(name + " ")
        )

    last_batch = (now - 3000) // 1000 + 1  # seconds

    def processed_all() -> bool:
        try:  # SIGTERM lets the loop iteration that ran the batch commit it
            return metric("kstream_last_batch_time_seconds") >= last_batch
        except OSError:
            return False

    wait_for(processed_all, 30, "the worker to process and commit both batches")
    assert metric("kstream_records_consumed_total") == 2
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0, log.read_text()
    text = log.read_text()
    assert "SIGTERM: finishing the current batch" in text and "stopped after" in text

    # a new worker of the same group finds everything committed: it reads nothing again
    with open(tmp_path / "w2.log", "wb") as out:
        second = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **env}
        )

    def assigned() -> bool:
        try:
            return metric("kstream_rebalances_total") >= 1 and metric("kstream_ready") == 1
        except OSError:
            return False

    wait_for(assigned, 30, "the second worker to join")
    time.sleep(3)
    consumed_again = metric("kstream_records_consumed_total")
    second.send_signal(signal.SIGTERM)
    assert second.wait(30) == 0
    assert consumed_again == 0


# --- configuration errors: one line on stderr, exit 2, no traceback ----------------------


def config_error(r: subprocess.CompletedProcess) -> str:
    """The one line a configuration error prints (and nothing else)."""
    assert r.returncode == 2, r.stderr[-3000:]
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("kstream: error: "), r.stderr[-3000:]
    return lines[0]


def wordcount_env(topics) -> dict[str, str]:
    return {"KS_TEST_INPUT": topics("lines"), "KS_TEST_OUTPUT": topics("counts")}


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("bogus.key=1", "-X bogus.key: no such Kafka client setting"),
        ("acks=banana", '-X acks=banana: Invalid value for configuration property "request'),
        ("acks=1", "-X settings: Failed to create producer: `acks` must be set to `all`"),
        ("group.id=mine", "-X group.id: kstream sets this itself; use --app-id"),
        ("bootstrap.servers=x:1", "-X bootstrap.servers: kstream sets this itself; use --brokers"),
        (
            "isolation.level=read_uncommitted",
            "-X isolation.level: kstream sets this itself; use --guarantee",
        ),
        (
            "enable.auto.commit=true",
            "-X enable.auto.commit: kstream sets this itself; use --guarantee",
        ),
        (
            "group.instance.id=pod-0",
            "-X group.instance.id: kstream sets this itself; use --group-instance-id",
        ),
    ],
)
def test_bad_kafka_setting_is_one_line_and_exit_2(bootstrap, topics, app_id, setting, message):
    app, env = str(APPS / "wordcount.py"), wordcount_env(topics)
    r = run(
        "worker",
        app,
        "--app-id",
        app_id,
        "--brokers",
        bootstrap,
        "-X",
        setting,
        "--metrics-port",
        "0",
        "--duration",
        "5",
        env=env,
    )
    assert message in config_error(r)


def test_bad_kafka_setting_of_dlq_redrive_is_one_line_and_exit_2(bootstrap, topics, app_id):
    app, env = str(APPS / "wordcount.py"), wordcount_env(topics)
    r = run(
        "dlq",
        "redrive",
        app,
        "--app-id",
        app_id,
        "--brokers",
        bootstrap,
        "--dry-run",
        "-X",
        "bogus.key=1",
        env=env,
    )
    assert "-X bogus.key: no such Kafka client setting" in config_error(r)


@pytest.mark.parametrize("command", ["worker", "demo"])
def test_bad_log_level_is_one_line_and_exit_2(command):
    args = [str(APPS / "wordcount.py")] if command == "worker" else ["--duration", "1"]
    r = run(
        command, *args, "--log-level", "bogus", env={"KS_TEST_INPUT": "a", "KS_TEST_OUTPUT": "b"}
    )
    assert "Invalid value for '--log-level': 'bogus' is not one of" in config_error(r)


def test_pipeline_file_that_fails_to_load_is_one_line_naming_where(tmp_path):
    bad = tmp_path / "syntax.py"
    bad.write_text('import kstream\napp = kstream.App("x")\nwords = (app.stream("t")\n')
    line = config_error(run("describe", str(bad)))
    assert f"{bad}:3: SyntaxError: '(' was never closed" in line, line

    bad = tmp_path / "raises.py"
    bad.write_text('import kstream\napp = kstream.App("x")\nlimit = int("ten")\n')
    line = config_error(run("describe", str(bad)))
    assert f"{bad}:3: ValueError: invalid literal for int() with base 10: 'ten'" in line, line


SOCKET_APPS = {
    "run": "import kstream\n"
    'app = kstream.App("sock")\n'
    'app.socket_text_stream("127.0.0.1", {port}).count().pprint()\n'
    "app.run()\n",
    "spark": "from kstream.compat import SparkContext, StreamingContext\n"
    'ssc = StreamingContext(SparkContext("local[2]", "sock"), 1)\n'
    'ssc.socketTextStream("127.0.0.1", {port}).count().pprint()\n'
    "ssc.start()\n"
    "ssc.awaitTermination()\n",
}


@pytest.mark.parametrize("style", sorted(SOCKET_APPS))
def test_describe_does_not_start_the_app(tmp_path, style):
    """A file that starts its app (a socket stream, Spark style) is read up to there."""
    app = tmp_path / "sock.py"
    app.write_text(SOCKET_APPS[style].format(port=free_port()))  # nothing listens there
    started = time.monotonic()
    r = run("describe", str(app), timeout=20)
    assert r.returncode == 0 and r.stderr == "", r.stderr[-2000:]
    assert "socket(127.0.0.1:" in r.stdout and "Time: " not in r.stdout, r.stdout
    assert time.monotonic() - started < 10


def test_unwritable_state_dir_is_one_line_and_exit_2(bootstrap, topics, app_id, tmp_path):
    (tmp_path / "file").write_text("")
    state_dir = tmp_path / "file" / "state"  # under a regular file: even root cannot
    env = {**wordcount_env(topics), "KS_TEST_STATE": str(tmp_path / "ok")}
    for app, more in (("running_count.py", []), ("wordcount.py", ["--guarantee", "exactly-once"])):
        r = run(
            "worker",
            str(APPS / app),
            "--app-id",
            app_id,
            "--brokers",
            bootstrap,
            "--state-dir",
            str(state_dir),
            "--metrics-port",
            "0",
            "--duration",
            "5",
            *more,
            env=env,
        )
        line = config_error(r)
        assert f"--state-dir '{state_dir}': cannot write to {state_dir}/{app_id}" in line, line


def test_metrics_port_in_use_is_one_line_and_exit_2(bootstrap, topics, app_id):
    app, env = str(APPS / "wordcount.py"), wordcount_env(topics)
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for how in (["--metrics-port", str(port)], []):
            r = run(
                "worker",
                app,
                "--app-id",
                app_id,
                "--brokers",
                bootstrap,
                *how,
                "--duration",
                "5",
                env={**env, "KSTREAM_METRICS_PORT": str(port)},
            )
            line = config_error(r)
            assert (
                f"--metrics-port: cannot listen on 0.0.0.0:{port} (Address already in use)" in line
            )


def test_workers_with_the_default_metrics_port_share_a_machine(bootstrap, topics, app_id, tmp_path):
    env = wordcount_env(topics)
    cmd = [
        *KSTREAM,
        "worker",
        str(APPS / "wordcount.py"),
        "--app-id",
        app_id,
        "--brokers",
        bootstrap,
        *FAST,
    ]
    logs = [tmp_path / "w1.log", tmp_path / "w2.log"]
    procs = []
    for log in logs:
        with open(log, "wb") as out:
            procs.append(
                subprocess.Popen(
                    cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **env}
                )
            )

    def ports() -> list[int]:
        found = [
            re.findall(r"batch page on http://127\.0\.0\.1:(\d+)", log.read_text()) for log in logs
        ]
        return [int(p[0]) for p in found if p]

    try:
        wait_for(lambda: len(ports()) == 2, 30, "both workers to serve their metrics")
        assert ports()[0] != ports()[1] and min(ports()) >= 9400
        for port in ports():
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
                assert r.status == 200
    finally:
        codes = [stop(p) for p in procs]
    assert codes == [0, 0], [log.read_text()[-2000:] for log in logs]
