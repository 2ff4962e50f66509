#!/usr/bin/env python3
"""One librdkafka producer (confluent-kafka) with the library's defaults,
idempotence on: the single-producer figures of silt's benchmark report.

It speaks tests/bench/loadgen External's protocol: flags --brokers,
--topic, --duration (seconds), --record-size, --payload, --rate (value
bytes per second; 0: as fast as the client goes); one JSON object
on stdout with the records and value bytes acknowledged, the time from
the first produce call to the last acknowledgement and every record's
produce-to-acknowledgement latency in microseconds (librdkafka's own
measurement, Message.latency()).

librdkafka's defaults that matter here: enable.idempotence is false by
default (set true: the figures are about idempotent producers, which
keep at most 5 requests in flight per broker), linger.ms 5, batch.size
1000000, queue.buffering.max.messages 100000, no compression.
"""
import argparse
import json
import os
import sys
import time

import confluent_kafka


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--brokers", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--duration", type=float, required=True)
    ap.add_argument("--record-size", type=int, default=1024)
    ap.add_argument("--payload", default="random")
    ap.add_argument("--rate", type=float, default=0)
    a = ap.parse_args()
    if a.payload != "random":
        sys.exit("payload %r: only random is implemented" % a.payload)

    p = confluent_kafka.Producer({
        "bootstrap.servers": a.brokers,
        "client.id": "silt-bench-rdkafka",
        "enable.idempotence": True,
    })
    st = {"records": 0, "bytes": 0, "errors": 0, "first_error": "", "last_ack": 0.0}
    lat = []
    size = a.record_size

    def delivered(err, msg):
        if err is not None:
            st["errors"] += 1
            if not st["first_error"]:
                st["first_error"] = str(err)
            return
        lat.append(int(msg.latency() * 1e6))
        st["records"] += 1
        st["bytes"] += size
        st["last_ack"] = time.monotonic()

    start = time.monotonic()
    deadline = start + a.duration
    n = 0
    while True:
        if n % 64 == 0 and time.monotonic() >= deadline:
            break
        if a.rate > 0:
            # Paced: send what the rate owes by now, then wait a little.
            owed = int((time.monotonic() - start) * a.rate / size) + 1
            if n >= owed:
                p.poll(0.001)
                if time.monotonic() >= deadline:
                    break
                continue
        # Distinct random bytes per record: nothing for a compressor.
        v = os.urandom(size)
        try:
            p.produce(a.topic, v, on_delivery=delivered)
        except BufferError:
            p.poll(0.005)  # the queue is full: serve delivery reports
            continue
        n += 1
        if n % 64 == 0:
            p.poll(0)
    left = p.flush(180)
    if left:
        st["errors"] += left
        st["first_error"] = st["first_error"] or "%d records not delivered at flush" % left
    elapsed = st["last_ack"] - start if st["last_ack"] else 0.0
    json.dump({
        "client": "librdkafka %s (confluent-kafka %s)" % (confluent_kafka.libversion()[0], confluent_kafka.version()[0]),
        "records": st["records"], "bytes": st["bytes"], "errors": st["errors"],
        "first_error": st["first_error"], "elapsed_s": elapsed, "latencies_us": lat,
    }, sys.stdout)


if __name__ == "__main__":
    main()
