"""Split the graph into stages at its shuffles, and name the topics between them.

Stage 0 reads the source topics; stage k+1 reads the repartition topics that stage k
writes. Every worker runs every stage; Kafka's consumer group spreads the partitions.
An operator that reads a stream already spread by key has no shuffle of its own
(kstream/dstream.py), so it runs in the stage of its input; one that keeps state then
keeps it per partition of the repartition topic that stage reads (`Exchange.stateful`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kstream.dead_letters import dlq_topic
from kstream.errors import ConfigError
from kstream.graph import Node
from kstream.names import internal_topic
from kstream.ops.shuffle import Shuffle
from kstream.ops.sinks import To
from kstream.ops.sources import KafkaSource
from kstream.ops.stateful import Stateful
from kstream.state.changelog import changelog_topic

if TYPE_CHECKING:
    from kstream.builder import Pipeline


@dataclass
class Exchange:
    """A repartition topic: the shuffle nodes (one per side) that feed one operator."""

    topic: str
    sides: list[Node]
    writer_stage: int
    # its internal format, and its operator's state's (kstream/codec.py): the operator's
    # serde, else the app's internal_serde
    serde: str
    # the operators keeping state per partition of this topic, each task its own store:
    # its target, and those reading the target's output within the stage, if they keep state
    stateful: list[Node] = field(default_factory=list)

    @property
    def shuffle(self) -> Shuffle:
        return self.sides[0].op  # type: ignore[return-value]

    @property
    def target(self) -> Node:
        """The operator it feeds."""
        return self.sides[0].children[0]


@dataclass
class Stage:
    index: int
    nodes: list[Node] = field(default_factory=list)  # evaluation order, incl. written shuffles
    sources: list[Node] = field(default_factory=list)
    reads: list[Exchange] = field(default_factory=list)
    writes: list[Exchange] = field(default_factory=list)

    @property
    def sinks(self) -> list[Node]:
        return [n for n in self.nodes if isinstance(n.op, To)]

    def input_topics(self) -> list[str]:
        if self.index == 0:
            return sorted({t for s in self.sources for t in s.op.topics})  # type: ignore[attr-defined]
        return [x.topic for x in self.reads]


@dataclass
class Plan:
    app_id: str
    stages: list[Stage]
    exchanges: list[Exchange]
    # the dead-letter topic, if the app may write one (on_error="dlq", or late="dlq")
    dlq_topic: str | None = None

    def source_topics(self) -> list[str]:
        return self.stages[0].input_topics() if self.stages else []

    def changelog_topics(self) -> list[str]:
        """One per stateful operator."""
        return [changelog_topic(self.app_id, n.name) for x in self.exchanges for n in x.stateful]

    def output_topics(self) -> list[str]:
        return sorted({n.op.topic for s in self.stages for n in s.sinks})  # type: ignore[attr-defined]

    def describe(self) -> dict[str, Any]:
        return {
            "app_id": self.app_id,
            "stages": [
                {
                    "stage": s.index,
                    "reads": s.input_topics(),
                    "operators": [
                        f"{n.op.describe()} as {n.label}" if n.label else n.op.describe()
                        for n in s.nodes
                        if not isinstance(n.op, Shuffle)
                    ],
                    "writes": [x.topic for x in s.writes] + [n.op.topic for n in s.sinks],  # type: ignore[attr-defined]
                }
                for s in self.stages
            ],
            "internal_topics": [x.topic for x in self.exchanges] + self.changelog_topics(),
            "dlq_topic": self.dlq_topic,
            "source_topics": self.source_topics(),
            "output_topics": self.output_topics(),
        }


def stage_of(nodes: list[Node]) -> dict[Node, int]:
    stages: dict[Node, int] = {}
    for n in nodes:
        parent_stages = {stages[p] for p in n.parents}
        if isinstance(n.op, Shuffle):
            stages[n] = stages[n.parents[0]] + 1
        elif len(parent_stages) > 1:
            raise ConfigError(
                f"{n.op.kind}: its inputs come from different sides of a shuffle; "
                "join them instead, or key both streams the same way"
            )
        else:
            stages[n] = parent_stages.pop() if parent_stages else 0
    return stages


def _place_state(nodes: list[Node], exchanges: dict[str, Exchange]) -> None:
    """Fill each exchange's `stateful`: the operators keeping state whose input comes,
    within their stage, from that repartition topic alone, so that a task's store holds
    exactly the keys its partition receives."""
    read: dict[Node, set[str]] = {}  # node -> the repartition topics its input comes from
    topic_of = {n: x.topic for x in exchanges.values() for n in x.sides}
    for n in nodes:
        if n in topic_of:
            read[n] = {topic_of[n]}
            continue
        read[n] = set().union(*(read[p] for p in n.parents))
        if isinstance(n.op, Stateful):
            topics = sorted(read[n])
            if len(topics) != 1:  # kstream/dstream.py shuffles before such an operator
                raise ConfigError(f"{n.name}: keeps state but reads no single repartition topic")
            exchanges[topics[0]].stateful.append(n)


def compile_plan(app: Pipeline) -> Plan:
    nodes = app.graph.ordered()
    stages_of = stage_of(nodes)
    exchanges: dict[str, Exchange] = {}
    for n in nodes:
        if isinstance(n.op, Shuffle):
            topic = internal_topic(app.app_id, n.op.target, "repartition")
            serde = n.children[0].op.serde or app.settings.internal_serde
            x = exchanges.setdefault(topic, Exchange(topic, [], stages_of[n] - 1, serde))
            if stages_of[n] - 1 != x.writer_stage:
                raise ConfigError(
                    f"{n.op.target}: its inputs are at different depths of the pipeline; "
                    "repartition the shallower one first"
                )
            x.sides.append(n)
    _place_state(nodes, exchanges)
    count = max(stages_of.values(), default=-1) + 1
    stages = [Stage(i) for i in range(count)]
    for n in nodes:
        s = stages_of[n]
        if isinstance(n.op, Shuffle):
            stages[s - 1].nodes.append(n)  # evaluated (combined) where it is written
        else:
            stages[s].nodes.append(n)
        if isinstance(n.op, KafkaSource):
            stages[s].sources.append(n)
    for x in exchanges.values():
        stages[x.writer_stage].writes.append(x)
        stages[x.writer_stage + 1].reads.append(x)
    dead_letters = app.settings.on_error == "dlq" or any(
        getattr(n.op, "late", None) == "dlq" for n in nodes
    )
    dlq = dlq_topic(app.app_id) if dead_letters else None
    return Plan(app.app_id, stages, list(exchanges.values()), dlq)
