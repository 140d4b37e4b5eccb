"""The `kstream` command: worker, describe, reset, dlq redrive, demo. Every option has a
KSTREAM_* env var."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

import click

from kstream.errors import ConfigError
from kstream.observe.watchdog import where

log = logging.getLogger("kstream")
METRICS_PORT = 9400  # without --metrics-port: the first free port from here up


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def parse_kafka_settings(pairs: tuple[str, ...]) -> dict[str, str]:
    from kstream.kafka.config import check_overrides

    settings = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"-X {pair!r}: expected key=value (a librdkafka setting)")
        settings[key.strip()] = value.strip()
    check_overrides(settings)
    return settings


def fail(message: str) -> None:
    """A configuration error: one line on stderr, exit 2."""
    click.echo(f"kstream: error: {' '.join(message.split())}", err=True)
    sys.exit(2)


class Group(click.Group):
    """Usage errors of the subcommands (a bad option value, a missing argument) are
    configuration errors too: one line, exit 2, instead of click's usage block."""

    group_class = type  # `dlq` is one as well

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as e:
            where = f" (see {e.ctx.command_path} --help)" if e.ctx is not None else ""
            fail(e.format_message() + where)


def log_level_option(default: str) -> Callable[[Callable], Callable]:
    return click.option(
        "--log-level",
        envvar="KSTREAM_LOG_LEVEL",
        default=default,
        show_default=True,
        type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
    )


def brokers_option(f: Callable) -> Callable:
    return click.option(
        "--brokers",
        envvar=["KSTREAM_BROKERS", "KSTREAM_BOOTSTRAP_SERVERS"],
        help="Kafka bootstrap servers, host:port[,host:port]  [env: KSTREAM_BROKERS]",
    )(f)


def common_options(f: Callable) -> Callable:
    f = click.option(
        "-X",
        "kafka_settings",
        multiple=True,
        envvar="KSTREAM_KAFKA_SETTINGS",
        metavar="KEY=VALUE",
        help="A librdkafka setting, passed through (repeatable).",
    )(f)
    f = log_level_option("info")(f)
    return brokers_option(f)


def load(app_spec: str, overrides: dict[str, Any]):
    from kstream.loader import load_app

    app = load_app(app_spec)
    for key, value in overrides.items():
        if value is None:
            continue
        if key == "app_id":
            from kstream.names import check_app_id

            app.app_id = check_app_id(value)
        elif key == "batch_interval":
            from kstream.settings import interval_ms

            app.interval_ms = interval_ms(value, "--batch-interval")
        else:
            setattr(app.settings, key, value)
    app.settings.validate()
    return app


@click.group(cls=Group)
@click.version_option(package_name="kstream")
def main() -> None:
    """kstream: Spark Streaming's micro-batch model on plain Kafka."""


@main.command()
@click.argument("app_spec", metavar="APP")
@common_options
@click.option("--app-id", envvar="KSTREAM_APP_ID", help="Override the app id (= consumer group).")
@click.option("--batch-interval", envvar="KSTREAM_BATCH_INTERVAL", type=float, help="Seconds.")
@click.option("--state-dir", envvar="KSTREAM_STATE_DIR", help="Local state directory.")
@click.option(
    "--guarantee",
    envvar="KSTREAM_GUARANTEE",
    type=click.Choice(["at-least-once", "exactly-once"]),
    help="Delivery guarantee: exactly-once runs each step as one Kafka transaction.",
)
@click.option(
    "--on-error",
    envvar="KSTREAM_ON_ERROR",
    type=click.Choice(["dlq", "skip", "fail"]),
    help="A poison record (cannot be deserialized, or a user function raises on it): to "
    "the dead-letter topic <app_id>-dlq (the app's default: dlq), logged and skipped, or "
    "the worker stops.",
)
@click.option(
    "--internal-serde",
    envvar="KSTREAM_INTERNAL_SERDE",
    type=click.Choice(["msgpack", "pickle"]),
    help="Format of the repartition topics, changelogs and state stores (the app's "
    "default: msgpack). pickle carries any value, and anyone who can write the app's "
    "internal topics can then run code in its workers.",
)
@click.option(
    "--state-memory-mb",
    envvar="KSTREAM_STATE_MEMORY_MB",
    type=click.IntRange(min=4),
    help="RocksDB memory of all the worker's stores, in MB: half memtables, half block "
    "cache (the app's default: 64). Leave room for it under the container's memory limit.",
)
@click.option(
    "--group-instance-id",
    envvar="KSTREAM_GROUP_INSTANCE_ID",
    help="Static group membership id (e.g. the pod name): restarts do not rebalance.",
)
@click.option(
    "--metrics-port",
    envvar="KSTREAM_METRICS_PORT",
    type=int,
    help=f"HTTP port for /metrics and friends; 0 disables. Unset: the first free port from "
    f"{METRICS_PORT} up (several workers on one machine), logged at start.",
)
@click.option("--metrics-host", envvar="KSTREAM_METRICS_HOST", default="0.0.0.0", show_default=True)
@click.option("--duration", type=float, default=None, help="Stop after this many seconds.")
@click.option(
    "--stop-timeout",
    envvar="KSTREAM_STOP_TIMEOUT",
    type=click.FloatRange(min=0, min_open=True),
    default=30.0,
    show_default=True,
    help="After SIGTERM, seconds to finish the batch in hand before exiting without it "
    "(it runs again elsewhere). Keep below the pod's termination grace period.",
)
def worker(
    app_spec: str,
    brokers,
    kafka_settings,
    log_level,
    app_id,
    batch_interval,
    state_dir,
    guarantee,
    on_error,
    internal_serde,
    state_memory_mb,
    group_instance_id,
    metrics_port,
    metrics_host,
    duration,
    stop_timeout,
) -> None:
    """Run APP (path/to/app.py[:attr] or package.module[:attr]) as one worker of its group."""
    setup_logging(log_level)
    from kstream.worker import Worker, WorkerStopped

    try:
        app = load(
            app_spec,
            {
                "app_id": app_id,
                "batch_interval": batch_interval,
                "state_dir": state_dir,
                "guarantee": guarantee,
                "on_error": on_error,
                "internal_serde": internal_serde,
                "state_memory_mb": state_memory_mb,
            },
        )
        w = Worker(
            app,
            brokers=brokers,
            group_instance_id=group_instance_id,
            kafka=parse_kafka_settings(kafka_settings),
            metrics_host=metrics_host,
            metrics_port=METRICS_PORT if metrics_port is None else metrics_port,
            metrics_port_search=metrics_port is None,
        )
        w.prepare()
    except ConfigError as e:
        fail(str(e))
    stop_on_signals(w.stop, stop_timeout)
    w.start()
    try:
        w.loop(duration)
    except WorkerStopped as e:
        log.error("%s: %s", type(e).__name__, e)
        sys.exit(1)
    finally:
        w.close()


def stop_on_signals(stop: Callable[[], None], timeout: float) -> None:
    """SIGTERM/SIGINT: finish the batch in hand, commit, leave; a second SIGINT aborts.
    A loop that cannot finish within `timeout` (a hung user function) is abandoned: the
    process exits 1 and the uncommitted batches run again after the restart."""
    loop_thread = threading.get_ident()

    def give_up() -> None:
        log.error(
            "did not stop within %gs; exiting without committing the batch in hand "
            "(it runs again). The batch loop is in %s",
            timeout,
            where(loop_thread),
        )
        logging.shutdown()
        os._exit(1)

    def handler(signum: int, frame: Any) -> None:
        log.info("%s: finishing the current batch, then stopping", signal.Signals(signum).name)
        stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        timer = threading.Timer(timeout, give_up)
        timer.daemon = True
        timer.start()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


@main.command()
@click.argument("app_spec", metavar="APP")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def describe(app_spec: str, as_json: bool) -> None:
    """Print APP's stages, operators and the internal topics it uses."""
    try:
        topology = load(app_spec, {}).describe()
    except ConfigError as e:
        fail(str(e))
    if as_json:
        click.echo(json.dumps(topology, indent=2))
        return
    click.echo(f"app {topology['app_id']}")
    for s in topology["stages"]:
        click.echo(f"stage {s['stage']}: reads {', '.join(s['reads'])}")
        for op in s["operators"]:
            click.echo(f"  {op}")
        if s["writes"]:
            click.echo(f"  writes {', '.join(s['writes'])}")
    internal = topology["internal_topics"]
    click.echo(f"internal topics: {', '.join(internal) if internal else 'none'}")
    click.echo(f"dead-letter topic: {topology['dlq_topic'] or 'none'}")


@main.command()
@click.argument("app_spec", metavar="APP")
@common_options
@click.option("--app-id", envvar="KSTREAM_APP_ID", help="Override the app id (= consumer group).")
@click.option("--state-dir", envvar="KSTREAM_STATE_DIR", help="Local state directory.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "--operator",
    metavar="NAME",
    help="Drop only this operator's state (its changelog and local stores); keep the rest.",
)
def reset(
    app_spec: str, brokers, kafka_settings, log_level, app_id, state_dir, yes: bool, operator
) -> None:
    """Forget APP's progress: group offsets, internal topics and local state (or, with
    --operator, one operator's state). Lists what it deletes and asks first."""
    setup_logging(log_level)
    from kstream.kafka.admin import Admin
    from kstream.reset import plan_reset, reset_app

    try:
        app = load(app_spec, {"state_dir": state_dir, "app_id": app_id})
        kafka = parse_kafka_settings(kafka_settings)
        if not yes:
            admin = Admin(brokers or app.settings.brokers or "localhost:9092", kafka)
            lines = plan_reset(app, admin, operator).lines()
            click.echo(f"reset {app.app_id} deletes:")
            for line in lines or ["nothing: no offsets, topics or state found"]:
                click.echo(f"  {line}")
            click.confirm("delete them?", abort=True)
        for line in reset_app(app, brokers, kafka, operator):
            click.echo(line)
    except ConfigError as e:
        fail(str(e))


@main.group()
def dlq() -> None:
    """The dead-letter topic <app_id>-dlq, where poison records go."""


@dlq.command()
@click.argument("app_spec", metavar="APP")
@common_options
@click.option("--app-id", envvar="KSTREAM_APP_ID", help="Override the app id (= consumer group).")
@click.option("--dry-run", is_flag=True, help="List what would be re-published; change nothing.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=60.0,
    show_default=True,
    help="Seconds to read the dead-letter topic to its end and flush.",
)
def redrive(
    app_spec: str, brokers, kafka_settings, log_level, app_id, dry_run: bool, timeout: float
) -> None:
    """Re-publish APP's dead-lettered source records to their topics.

    Reads <app_id>-dlq from where the consumer group <app_id>-dlq-redrive left off, puts
    each record that came from a source topic back on it (original key, value, timestamp
    and partition; kstream.error.* headers stripped), then commits: a second redrive
    re-publishes only what was dead-lettered since. Records of repartition topics are
    skipped, with a count."""
    setup_logging(log_level)
    from kstream.redrive import RedriveError
    from kstream.redrive import redrive as run_redrive

    try:
        app = load(app_spec, {"app_id": app_id})
        for line in run_redrive(
            app, brokers, parse_kafka_settings(kafka_settings), dry_run=dry_run, timeout=timeout
        ):
            click.echo(line)
    except ConfigError as e:
        fail(str(e))
    except RedriveError as e:
        click.echo(f"kstream: redrive failed: {e}", err=True)
        sys.exit(1)


@main.command()
@click.option(
    "--duration",
    type=float,
    default=None,
    help="Stop after this many seconds (default: until Ctrl-C).",
)
@click.option("--rate", type=float, default=20.0, show_default=True, help="Lines per second.")
@log_level_option("warning")
def demo(duration: float | None, rate: float, log_level: str) -> None:
    """Word count over an embedded broker that it starts itself: nothing to set up."""
    setup_logging(log_level)
    from kstream.demo import run_demo

    try:
        run_demo(duration, rate, lambda stop: stop_on_signals(stop, 30.0))
    except ConfigError as e:
        fail(str(e))
    except RuntimeError as e:
        fail(str(e))
