"""Word count per batch: lines from `lines`, counts to `word-counts`.

kstream worker examples/wordcount.py --brokers localhost:9092
"""

import operator

import kstream

app = kstream.App("wordcount", batch_interval=1.0)

lines = app.stream("lines")  # DStream of record values (str)
counts = lines.flat_map(str.split).map(lambda w: (w, 1)).reduce_by_key(operator.add)
counts.pprint()
counts.to("word-counts")  # key=word, value=count
