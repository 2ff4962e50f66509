#!/usr/bin/python3
"""confluent-kafka (librdkafka) consumer-group client for silt's e2e tests
(tests/e2e/groups_python_test.go). Run it with /usr/bin/python3: Debian's
python3-confluent-kafka is what tests/install-deps.sh installs.

  groups.py consume BROKER TOPIC GROUP MIN_COUNT
      joins GROUP subscribed to TOPIC (no auto commit; a group without
      committed offsets starts at the earliest record), reads until it has at
      least MIN_COUNT records and every assigned partition is at its end,
      commits synchronously and closes.
  groups.py static BROKER TOPIC GROUP INSTANCE_ID
      a static member (group.instance.id) that consumes until a line "stop"
      arrives on stdin (a line "ping" is answered with a "pong" event),
      then closes without leaving the group (what a static member does, so
      that a restart within the session timeout keeps its partitions).

Output: one JSON object per line on stdout, each with a "type": "assigned",
"revoked", "record", "committed", "pong", "closing", "done" or "error".
librdkafka's logs go to stderr. Exit status 1 on any failure or after DEADLINE seconds.
"""
import json
import sys
import threading
import time

from confluent_kafka import Consumer, KafkaError, KafkaException

DEADLINE = 60.0


# emit_lock keeps lines whole when the stdin thread and the consumer
# loop print at once.
emit_lock = threading.Lock()


def emit(**obj):
    with emit_lock:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()


def fail(msg):
    emit(type="error", error=msg)
    sys.exit(1)


def new_consumer(broker, group, extra=None):
    conf = {
        "bootstrap.servers": broker,
        "group.id": group,
        "client.id": "silt-e2e-python",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": True,
        "session.timeout.ms": 10000,
        "heartbeat.interval.ms": 500,
        "fetch.wait.max.ms": 200,
        "partition.assignment.strategy": "range",
    }
    conf.update(extra or {})
    return Consumer(conf)


def subscribe(consumer, topic, state):
    """Subscribes and keeps state["assigned"] current, reporting changes."""

    def on_assign(c, parts):
        state["assigned"] = sorted(p.partition for p in parts)
        state["eof"] = set()
        emit(type="assigned", partitions=state["assigned"])

    def on_revoke(c, parts):
        emit(type="revoked", partitions=sorted(p.partition for p in parts))
        state["assigned"] = []

    consumer.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke)


def record(consumer_name, msg):
    emit(type="record", consumer=consumer_name, partition=msg.partition(), offset=msg.offset(),
         key=msg.key().decode() if msg.key() is not None else None,
         value=msg.value().decode() if msg.value() is not None else None)


def consume(broker, topic, group, min_count):
    c = new_consumer(broker, group)
    state = {"assigned": None, "eof": set()}
    subscribe(c, topic, state)
    count = 0
    deadline = time.monotonic() + DEADLINE
    while True:
        if time.monotonic() > deadline:
            fail(f"timeout: {count} records, assigned {state['assigned']}, at end {sorted(state['eof'])}")
        msg = c.poll(0.2)
        if msg is not None:
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    state["eof"].add(msg.partition())
                else:
                    fail(f"consume: {msg.error()}")
            else:
                state["eof"].discard(msg.partition())
                record("python", msg)
                count += 1
        assigned = state["assigned"]
        if assigned and count >= min_count and set(assigned) <= state["eof"]:
            break
    if count > 0:
        parts = c.commit(asynchronous=False)
        for p in parts:
            if p.error:
                fail(f"commit {p.topic}[{p.partition}]: {p.error}")
        emit(type="committed", offsets={str(p.partition): p.offset for p in parts})
    c.close()
    emit(type="done", count=count)


def static(broker, topic, group, instance_id):
    c = new_consumer(broker, group, {"group.instance.id": instance_id, "session.timeout.ms": 30000})
    state = {"assigned": None, "eof": set()}
    subscribe(c, topic, state)
    stop = threading.Event()

    def read_stdin():
        for line in sys.stdin:
            if line.strip() == "ping":
                # Everything printed before this line happened before it.
                emit(type="pong")
            if line.strip() == "stop":
                break
        stop.set()

    threading.Thread(target=read_stdin, daemon=True).start()
    deadline = time.monotonic() + DEADLINE
    count = 0
    while not stop.is_set():
        if time.monotonic() > deadline:
            fail("timeout waiting for stop")
        msg = c.poll(0.1)
        if msg is None:
            continue
        if msg.error():
            if msg.error().code() != KafkaError._PARTITION_EOF:
                fail(f"consume: {msg.error()}")
            continue
        record(instance_id, msg)
        count += 1
    # Closing revokes the partitions locally; a static member sends no
    # LeaveGroup.
    emit(type="closing")
    c.close()
    emit(type="done", count=count)


def main():
    mode, broker, topic, group, arg = sys.argv[1:6]
    try:
        if mode == "consume":
            consume(broker, topic, group, int(arg))
        elif mode == "static":
            static(broker, topic, group, arg)
        else:
            fail(f"unknown mode {mode}")
    except KafkaException as e:
        fail(f"{mode}: {e}")


if __name__ == "__main__":
    main()
