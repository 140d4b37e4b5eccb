"""Thin wrappers over confluent-kafka: client settings, topic admin, record formats."""
