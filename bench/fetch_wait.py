"""How long a record waits in the broker for a consumer whose fetch is already waiting, by the
fetch's ``fetch_max_wait_ms``: where the worker's per-hop latency on Tansu comes from.

    python bench/fetch_wait.py                 # Tansu and Apache Kafka, about 3 minutes

A kafka-python consumer is positioned at the end of a 4-partition topic while a producer
(linger 0, each send flushed) writes one record every 100 ms carrying its send time; the
consumer notes the arrival of each. ``fetch_min_bytes`` is 1 throughout, so a broker that
answers a waiting fetch as soon as a record arrives shows the same few milliseconds at every
``fetch_max_wait_ms``; a broker that holds the fetch shows latency growing with it. Faust's
aiokafka consumer uses 1,500 ms (hard-coded in ``faust/transport/drivers/aiokafka.py``).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from latency import pct
from throughput import start_broker

WAITS = (10, 100, 500, 1500)


def probe(bootstrap: str, topic: str, wait_ms: int, records: int) -> list[float]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, fetch_max_wait_ms=wait_ms,
                             enable_auto_commit=False)
    tps = [TopicPartition(topic, p) for p in range(4)]
    consumer.assign(tps)
    consumer.seek_to_end(*tps)
    for tp in tps:
        consumer.position(tp)
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=0, acks="all")
    latencies: list[float] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            for batch in consumer.poll(timeout_ms=100).values():
                now = time.time()
                latencies.extend((now - float(r.value)) * 1e3 for r in batch)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(records):
            producer.send(topic, key=str(i % 4).encode(), value=repr(time.time()).encode())
            producer.flush()
            time.sleep(0.1)
        time.sleep(2)
    finally:
        stop.set()
        reader.join()
        consumer.close()
        producer.close()
    return latencies


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--broker", default="tansu,kafka")
    ap.add_argument("--records", type=int, default=200)
    args = ap.parse_args()
    result = []
    for broker in args.broker.split(","):
        with ExitStack() as stack:
            bootstrap = start_broker(broker, stack)
            admin = KafkaAdminClient(bootstrap_servers=bootstrap)
            admin.create_topics([NewTopic(f"wait{w}", 4, 1) for w in WAITS])
            admin.close()
            print(f"\n{broker}: record send → consumer, one record every 100 ms")
            print(f"{'fetch_max_wait_ms':>18} {'n':>5} {'p50 ms':>8} {'p99 ms':>8}")
            for wait in WAITS:
                lat = probe(bootstrap, f"wait{wait}", wait, args.records)
                print(f"{wait:>18} {len(lat):>5} {pct(lat, 50):>8.1f} {pct(lat, 99):>8.1f}",
                      flush=True)
                result += [f"{broker}_p50_ms_{wait}={pct(lat, 50):.1f}",
                           f"{broker}_p99_ms_{wait}={pct(lat, 99):.1f}"]
    print("RESULT " + " ".join(result))


if __name__ == "__main__":
    main()
