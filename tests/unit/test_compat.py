"""PySpark Streaming programs run through kstream.compat with only their imports changed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time

import pytest

from kstream.compat import SparkConf, SparkContext, StreamingContext

DASHES = "-" * 43


def pprint_blocks(text):
    """Spark pprint output as [(time string, [record lines])]."""
    lines = text.splitlines()
    blocks = []
    i = 0
    while i < len(lines):
        if (
            lines[i] == DASHES
            and i + 2 < len(lines)
            and lines[i + 1].startswith("Time: ")
            and lines[i + 2] == DASHES
        ):
            blocks.append((lines[i + 1][len("Time: ") :], []))
            i += 3
            continue
        if blocks and lines[i]:
            blocks[-1][1].append(lines[i])
        i += 1
    return blocks


def wait_for(predicate, ssc, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        assert ssc.awaitTerminationOrTimeout(0.05) is False  # still running
    return True


# -- in process -----------------------------------------------------------------------
def test_spark_queue_stream_example(capsys):
    # Spark's examples/src/main/python/streaming/queue_stream.py, smaller and faster.
    sc = SparkContext(appName="PythonStreamingQueueStream")
    ssc = StreamingContext(sc, 0.05)

    rddQueue = []
    for _ in range(3):
        rddQueue += [ssc.sparkContext.parallelize([j for j in range(1, 1001)], 10)]

    inputStream = ssc.queueStream(rddQueue)
    mappedStream = inputStream.map(lambda x: (x % 10, 1))
    reducedStream = mappedStream.reduceByKey(lambda a, b: a + b)
    reducedStream.pprint()
    results = []
    reducedStream.foreachRDD(lambda t, rdd: results.append((t, sorted(rdd))))

    ssc.start()
    try:
        wait_for(lambda: len(results) >= 5, ssc)
    finally:
        ssc.stop(stopSparkContext=True, stopGraceFully=True)
    assert ssc.awaitTerminationOrTimeout(5) is True

    per_batch = [(k, 100) for k in range(10)]  # 1..1000 has 100 numbers per residue
    assert [r for _, r in results[:5]] == [per_batch, per_batch, per_batch, [], []]
    times = [round(t * 1000) for t, _ in results]
    assert all(t % 50 == 0 for t in times)
    assert times == sorted(set(times))

    blocks = pprint_blocks(capsys.readouterr().out)
    assert len(blocks) >= 5
    for _, records in blocks[:3]:
        assert sorted(records) == sorted(f"({k}, 100)" for k in range(10))
    assert blocks[3][1] == []


def test_queue_stream_not_one_at_a_time_with_default():
    sc = SparkContext("local[2]", "q")
    ssc = StreamingContext(sc, 0.05)
    results = []
    s = ssc.queueStream([[1, 2], [3]], oneAtATime=False, default=[0])
    s.foreachRDD(lambda rdd: results.append(list(rdd)))
    ssc.start()
    try:
        wait_for(lambda: len(results) >= 3, ssc)
    finally:
        ssc.stop()
    assert sorted(results[0]) == [1, 2, 3]
    assert results[1:3] == [[0], [0]]


def test_streaming_context_union_and_camel_case_names():
    ssc = StreamingContext(SparkContext(appName="u"), 0.05)
    a = ssc.queueStream([["x y"], ["y"]])
    b = ssc.queueStream([["y z"]])
    results = []
    counts = ssc.union(a, b).flatMap(str.split).countByValue()
    counts.foreachRDD(lambda rdd: results.append(dict(rdd)))
    ssc.start()
    try:
        wait_for(lambda: len(results) >= 3, ssc)
    finally:
        ssc.stop()
    assert results[:3] == [{"x": 1, "y": 2, "z": 1}, {"y": 1}, {}]


def test_errors_in_the_program_surface_from_await_termination():
    ssc = StreamingContext(SparkContext(appName="boom"), 0.05)
    # retries=0: the error surfaces at once, not after the default retries' 7 s of back-off
    ssc.queueStream([[0]]).foreachRDD(lambda rdd: [1 / x for x in rdd], retries=0)
    ssc.start()
    with pytest.raises(ZeroDivisionError):
        ssc.awaitTerminationOrTimeout(10)
    ssc.stop()


def test_await_termination_needs_start():
    ssc = StreamingContext(SparkContext(appName="x"), 1)
    with pytest.raises(RuntimeError, match="started"):
        ssc.awaitTerminationOrTimeout(0.1)


def test_spark_conf_and_context_names(tmp_path):
    conf = SparkConf().setAppName("MyApp").setMaster("local[4]").set("spark.x", "1")
    assert conf.get("spark.app.name") == "MyApp"
    assert conf.get("spark.x") == "1"
    assert conf.get("missing", "d") == "d"
    sc = SparkContext(conf=conf)
    assert (sc.appName, sc.master) == ("MyApp", "local[4]")
    assert sc.parallelize(range(3)) == [0, 1, 2]
    sc.setLogLevel("WARN")
    ssc = StreamingContext(sc, 2)
    assert ssc.app.app_id == "MyApp"
    assert ssc.app.batch_interval == 2.0
    ssc.checkpoint(str(tmp_path))
    assert ssc.app.settings.state_dir == str(tmp_path)
    ssc.stop()
    sc.stop()


def test_spark_context_positional_names():
    sc = SparkContext("local[2]", "NetworkWordCount")
    assert (sc.master, sc.appName) == ("local[2]", "NetworkWordCount")


# -- as a real program, against a real socket ----------------------------------------
NETWORK_WORD_COUNT = """\
from kstream.compat import SparkContext
from kstream.compat import StreamingContext

# Create a local StreamingContext with two working thread and batch interval of 1 second
sc = SparkContext("local[2]", "NetworkWordCount")
ssc = StreamingContext(sc, 1)

# Create a DStream that will connect to hostname:port, like localhost:9999
lines = ssc.socketTextStream("localhost", {port})

# Split each line into words
words = lines.flatMap(lambda line: line.split(" "))

# Count each word in each batch
pairs = words.map(lambda word: (word, 1))
wordCounts = pairs.reduceByKey(lambda x, y: x + y)

# Print the first ten elements of each RDD generated in this DStream to the console
wordCounts.pprint()

ssc.start()             # Start the computation
ssc.awaitTermination()  # Wait for the computation to terminate
"""


def test_network_word_count_program(tmp_path, line_server):
    program = tmp_path / "network_wordcount.py"
    program.write_text(NETWORK_WORD_COUNT.format(port=line_server.port))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, str(program)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    output: list[str] = []
    expected = sorted(["('to', 2)", "('be', 2)", "('or', 1)", "('not', 1)"])

    def reader():
        for line in proc.stdout:
            output.append(line)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    try:
        line_server.send(b"to be or not to be\n", timeout=15)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and proc.poll() is None:
            blocks = pprint_blocks("".join(output))
            # wait for the counts, then one more (empty) batch after them
            full = [i for i, (_, recs) in enumerate(blocks) if recs]
            if full and len(blocks) > full[0] + 1:
                break
            time.sleep(0.05)
    finally:
        proc.terminate()
        try:
            _, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        thread.join(5)

    blocks = pprint_blocks("".join(output))
    with_data = [recs for _, recs in blocks if recs]
    assert [sorted(r) for r in with_data] == [expected], "".join(output) + err
    stamps = [t for t, _ in blocks]
    for stamp in stamps:
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", stamp), stamp
    assert stamps == sorted(set(stamps))
