import re
from pathlib import Path

from kstream.observe import CATALOGUE

DOC = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"


def test_docs_list_exactly_the_catalogue_with_types_and_labels():
    rows = {}
    for line in DOC.read_text().splitlines():
        m = re.match(r"\| `(kstream_\w+)` \| (\w+) \|([^|]*)\|", line)
        if m:
            labels = tuple(re.findall(r"`(\w+)`", m.group(3)))
            rows[m.group(1)] = (m.group(2), labels)
    assert rows == {spec.name: (spec.kind, spec.labels) for spec in CATALOGUE}
