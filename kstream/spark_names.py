"""Spark's camelCase names on every DStream, so PySpark programs run unchanged through
kstream.compat: the same methods where only the name differs, and wrappers with Spark's
own signature where its parameter names or order differ from kstream's."""

from __future__ import annotations

SPARK_NAMES = {
    "flatMap": "flat_map",
    "mapValues": "map_values",
    "flatMapValues": "flat_map_values",
    "countByValue": "count_by_value",
    "reduceByKey": "reduce_by_key",
    "combineByKey": "combine_by_key",
    "groupByKey": "group_by_key",
    "leftOuterJoin": "left_outer_join",
    "rightOuterJoin": "right_outer_join",
    "fullOuterJoin": "full_outer_join",
    "foreachRDD": "foreach_batch",
    "updateStateByKey": "update_state_by_key",
    "mapWithState": "map_with_state",
    "reduceByWindow": "reduce_by_window",
    "countByWindow": "count_by_window",
    "reduceByKeyAndWindow": "reduce_by_key_and_window",
    "countByValueAndWindow": "count_by_value_and_window",
    "groupByKeyAndWindow": "group_by_key_and_window",
    "reduceByKeyAndSession": "reduce_by_key_and_session",
}


def updateStateByKey(self, updateFunc, numPartitions=None, initialRDD=None):
    return self.update_state_by_key(updateFunc, initialRDD, numPartitions)


def reduceByWindow(self, reduceFunc, invReduceFunc, windowDuration, slideDuration=None):
    return self.reduce_by_window(reduceFunc, invReduceFunc, windowDuration, slideDuration)


def countByWindow(self, windowDuration, slideDuration=None):
    return self.count_by_window(windowDuration, slideDuration)


def reduceByKeyAndWindow(
    self,
    func,
    invFunc,
    windowDuration,
    slideDuration=None,
    numPartitions=None,
    filterFunc=None,
):
    return self.reduce_by_key_and_window(
        func, invFunc, windowDuration, slideDuration, numPartitions, filterFunc
    )


def countByValueAndWindow(self, windowDuration, slideDuration=None, numPartitions=None):
    return self.count_by_value_and_window(windowDuration, slideDuration, numPartitions)


def groupByKeyAndWindow(self, windowDuration, slideDuration=None, numPartitions=None):
    return self.group_by_key_and_window(windowDuration, slideDuration, numPartitions)


WRAPPERS = (
    updateStateByKey,
    reduceByWindow,
    countByWindow,
    reduceByKeyAndWindow,
    countByValueAndWindow,
    groupByKeyAndWindow,
)


def add_spark_names(cls: type) -> None:
    """Give `cls` (DStream) Spark's names: a wrapper where the signature differs, else
    the snake_case method itself."""
    for wrapper in WRAPPERS:
        setattr(cls, wrapper.__name__, wrapper)
    for spark, ours in SPARK_NAMES.items():
        if spark not in cls.__dict__:
            setattr(cls, spark, getattr(cls, ours))
