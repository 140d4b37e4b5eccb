"""What Kafka's error codes mean to a worker's delivery (kstream/delivery.py): which a
commit may skip, which records Kafka refuses for good, which are only an abort's echo,
which say the producer was fenced."""

from __future__ import annotations

from confluent_kafka import KafkaError

# a commit failing with one of these is skipped during a rebalance: the next catches up
RETRIABLE_COMMIT = {
    KafkaError.ILLEGAL_GENERATION,
    KafkaError.REBALANCE_IN_PROGRESS,
    KafkaError.UNKNOWN_MEMBER_ID,
    KafkaError._ASSIGNMENT_LOST,
    KafkaError._NO_OFFSET,
}

# Kafka will never take such a record, however often it is sent
REFUSED = {
    KafkaError.MSG_SIZE_TOO_LARGE,
    KafkaError.RECORD_LIST_TOO_LARGE,
    KafkaError.INVALID_RECORD,
    KafkaError.TOPIC_AUTHORIZATION_FAILED,
    KafkaError.UNKNOWN_TOPIC_OR_PART,
    KafkaError._UNKNOWN_TOPIC,
}
# dropped by an abort (ours, or librdkafka's after a failed send): a consequence, not a cause
PURGED = {KafkaError._PURGE_QUEUE, KafkaError._PURGE_INFLIGHT}

# another producer took over the transactional id
FENCED = {KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH}


def refused(error: KafkaError) -> bool:
    """Whether Kafka refuses a record for good: retrying the step cannot help."""
    return error.code() in REFUSED
