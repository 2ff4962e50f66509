"""Python Kafka clients from PyPI against a broker: confluent-kafka
(librdkafka), aiokafka and kafka-python, each producing, consuming in a
group, committing and using its admin client. Run by
tests/e2e/python_test.go with the virtualenv tests/interop/python/venv.sh
makes:

    clients.py BOOTSTRAP [CHECK...]

Prints "PASS name seconds" or "FAIL name: message" per check on stdout
(the same protocol as the Java driver); client logs go to stderr. Exit
status 1 when a check failed.
"""
import asyncio
import sys
import time
import traceback
import uuid

TIMEOUT = 60.0
PREFIX = "py-" + uuid.uuid4().hex[:8]


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


# --- confluent-kafka ---------------------------------------------------------

def confluent(bootstrap):
    from confluent_kafka import Consumer, Producer, TopicPartition, ConsumerGroupTopicPartitions
    from confluent_kafka.admin import (AdminClient, NewTopic, NewPartitions, ConfigResource,
                                       ConfigEntry, AlterConfigOpType, OffsetSpec)

    admin = AdminClient({"bootstrap.servers": bootstrap})
    topic, group = PREFIX + "-confluent", PREFIX + "-confluent-group"
    for f in admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1,
                                           config={"retention.ms": "3600000"})]).values():
        f.result(TIMEOUT)
    md = admin.list_topics(timeout=TIMEOUT)
    check(topic in md.topics and len(md.topics[topic].partitions) == 3, "list_topics: %s" % md.topics.get(topic))

    n = 90
    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all",
                  "compression.type": "zstd", "linger.ms": 5})
    acked = []
    for i in range(n):
        p.produce(topic, key=b"k%d" % (i % 9), value=b"v%d" % i, headers=[("seq", str(i).encode())],
                  on_delivery=lambda err, msg: acked.append((err, msg)))
    check(p.flush(TIMEOUT) == 0, "records still queued after flush")
    check(len(acked) == n and all(err is None for err, _ in acked), "deliveries: %s" % [e for e, _ in acked if e][:3])

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                  "enable.auto.commit": False})
    c.subscribe([topic])
    got = {}
    deadline = time.time() + TIMEOUT
    while len(got) < n and time.time() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        check(m.error() is None, "consume: %s" % m.error())
        seq = int(dict(m.headers())["seq"])
        check(m.value() == b"v%d" % seq and m.key() == b"k%d" % (seq % 9), "record %d: %s %s" % (seq, m.key(), m.value()))
        got[seq] = m
    check(len(got) == n, "read %d of %d records" % (len(got), n))
    c.commit(asynchronous=False)
    c.close()

    groups = admin.list_consumer_groups().result(TIMEOUT)
    check(group in [g.group_id for g in groups.valid], "list_consumer_groups lacks %s" % group)
    desc = admin.describe_consumer_groups([group])[group].result(TIMEOUT)
    check(str(desc.state).endswith("EMPTY"), "group state %s" % desc.state)
    offs = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result(TIMEOUT)
    check(sum(tp.offset for tp in offs.topic_partitions) == n, "committed offsets %s" % offs.topic_partitions)
    admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0, 1)])])[group].result(TIMEOUT)
    offs = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0)])])[group].result(TIMEOUT)
    check(offs.topic_partitions[0].offset == 1, "after alter: %s" % offs.topic_partitions)

    res = admin.list_offsets({TopicPartition(topic, 0): OffsetSpec.earliest(),
                              TopicPartition(topic, 1): OffsetSpec.latest()})
    check(res[TopicPartition(topic, 0)].result(TIMEOUT).offset == 0, "earliest offset")
    check(res[TopicPartition(topic, 1)].result(TIMEOUT).offset > 0, "latest offset")

    r = ConfigResource(ConfigResource.Type.TOPIC, topic,
                       incremental_configs=[ConfigEntry("retention.ms", "7200000", incremental_operation=AlterConfigOpType.SET)])
    admin.incremental_alter_configs([r])[r].result(TIMEOUT)
    cfg = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, topic)])
    entries = list(cfg.values())[0].result(TIMEOUT)
    check(entries["retention.ms"].value == "7200000", "retention.ms %s" % entries["retention.ms"].value)

    for f in admin.create_partitions([NewPartitions(topic, 4)]).values():
        f.result(TIMEOUT)
    for f in admin.delete_consumer_groups([group]).values():
        f.result(TIMEOUT)
    for f in admin.delete_topics([topic]).values():
        f.result(TIMEOUT)


def confluent_txn(bootstrap):
    """librdkafka's transactional producer (commit with
    send_offsets_to_transaction, abort, commit) and its read_committed
    consumer, which must see exactly the committed records."""
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    topic, src = PREFIX + "-confluent-txn", PREFIX + "-confluent-txn-in"
    group = PREFIX + "-confluent-txn-group"
    for f in admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1),
                                  NewTopic(src, num_partitions=1, replication_factor=1)]).values():
        f.result(TIMEOUT)

    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": PREFIX + "-confluent-txn-id",
                  "transaction.timeout.ms": 60000, "linger.ms": 5})
    p.init_transactions(TIMEOUT)
    # The group's metadata for send_offsets_to_transaction: a consumer of
    # the group that has not joined (generation -1), as a simple producer
    # committing for a group uses.
    meta = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    committed, aborted = [], []
    for label, n, commit, offset in [("committed1", 4, True, 3), ("aborted", 4, False, 99), ("committed2", 2, True, None)]:
        p.begin_transaction()
        for i in range(n):
            v = "%s-%d" % (label, i)
            p.produce(topic, value=v.encode(), partition=i % 2)
            (committed if commit else aborted).append(v)
        if offset is not None:
            p.send_offsets_to_transaction([TopicPartition(src, 0, offset)], meta.consumer_group_metadata(), TIMEOUT)
        if commit:
            p.commit_transaction(TIMEOUT)
        else:
            p.abort_transaction(TIMEOUT)
    meta.close()

    def read(isolation, until):
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": PREFIX + "-confluent-txn-" + isolation,
                      "auto.offset.reset": "earliest", "enable.auto.commit": False, "isolation.level": isolation})
        c.subscribe([topic])
        got, deadline = [], time.time() + TIMEOUT
        while not until <= set(got) and time.time() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            check(m.error() is None, "consume error: %s" % m.error())
            got.append(m.value().decode())
        c.close()
        check(until <= set(got), "%s read %s, not yet all of %s" % (isolation, got, sorted(until)))
        return got

    # Every committed record comes after the aborted ones on its partition
    # (committed2 is last on both), so a reader that has them all has
    # passed the aborted records.
    got = read("read_committed", set(committed))
    check(sorted(got) == sorted(committed), "read_committed read %s, want %s" % (sorted(got), sorted(committed)))
    got = read("read_uncommitted", set(committed) | set(aborted))
    check(len(got) == len(committed) + len(aborted), "read_uncommitted read %s" % got)

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    offs = c.committed([TopicPartition(src, 0)], TIMEOUT)
    c.close()
    check(offs[0].offset == 3, "committed offset of %s: %s, want 3" % (group, offs[0]))
    for f in admin.delete_topics([topic, src]).values():
        f.result(TIMEOUT)


def confluent_848(bootstrap):
    """librdkafka's KIP-848 consumer (group.protocol=consumer): two
    consumers share a 4-partition topic, two partitions each, every record
    read once, commits visible; the group is described as a consumer group;
    when one closes, the other gets every partition."""
    from confluent_kafka import Consumer, Producer, ConsumerGroupTopicPartitions
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    topic, group = PREFIX + "-confluent848", PREFIX + "-confluent848-group"
    for f in admin.create_topics([NewTopic(topic, num_partitions=4, replication_factor=1)]).values():
        f.result(TIMEOUT)
    n = 80
    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5})
    for i in range(n):
        p.produce(topic, partition=i % 4, key=b"k%d" % i, value=b"v%d" % i)
    check(p.flush(TIMEOUT) == 0, "records still queued after flush")

    conf = {"bootstrap.servers": bootstrap, "group.id": group, "group.protocol": "consumer",
            "auto.offset.reset": "earliest", "enable.auto.commit": False}
    c1, c2 = Consumer(conf), Consumer(conf)
    c1.subscribe([topic])
    c2.subscribe([topic])
    seen = set()
    deadline = time.time() + TIMEOUT
    while time.time() < deadline:
        for c in (c1, c2):
            m = c.poll(0.2)
            if m is None:
                continue
            check(m.error() is None, "consume: %s" % m.error())
            key = (m.partition(), m.offset())
            check(key not in seen, "record %s read twice" % (key,))
            seen.add(key)
            c.commit(message=m, asynchronous=False)
        if len(seen) == n and len(c1.assignment()) == 2 and len(c2.assignment()) == 2:
            break
    a1, a2 = {tp.partition for tp in c1.assignment()}, {tp.partition for tp in c2.assignment()}
    check(len(seen) == n and len(a1) == 2 and len(a2) == 2 and a1 | a2 == {0, 1, 2, 3},
          "read %d of %d; assignments %s and %s" % (len(seen), n, a1, a2))
    desc = admin.describe_consumer_groups([group])[group].result(TIMEOUT)
    check(str(desc.type).endswith("CONSUMER"), "group type %s" % desc.type)
    check(len(desc.members) == 2, "members %s" % desc.members)
    c1.close()
    deadline = time.time() + TIMEOUT
    while len(c2.assignment()) != 4:
        c2.poll(0.2)
        check(time.time() < deadline, "after c1 closed c2 has %s" % c2.assignment())
    c2.close()
    offs = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result(TIMEOUT)
    check(sum(tp.offset for tp in offs.topic_partitions) == n, "committed offsets %s" % offs.topic_partitions)
    for f in admin.delete_topics([topic]).values():
        f.result(TIMEOUT)


# --- aiokafka ----------------------------------------------------------------

async def aiokafka_async(bootstrap):
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    topic, group = PREFIX + "-aiokafka", PREFIX + "-aiokafka-group"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
        check(topic in await admin.list_topics(), "list_topics lacks %s" % topic)

        n = 60
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, compression_type="gzip")
        await producer.start()
        try:
            for i in range(n):
                md = await producer.send_and_wait(topic, key=b"k%d" % (i % 5), value=b"v%d" % i,
                                                  headers=[("seq", str(i).encode())])
                check(md.offset >= 0, "no offset for record %d" % i)
        finally:
            await producer.stop()

        consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group,
                                    auto_offset_reset="earliest", enable_auto_commit=False)
        await consumer.start()
        try:
            got = set()
            deadline = time.time() + TIMEOUT
            while len(got) < n and time.time() < deadline:
                batches = await consumer.getmany(timeout_ms=500)
                for tp, msgs in batches.items():
                    for m in msgs:
                        seq = int(dict(m.headers)["seq"])
                        check(m.value == b"v%d" % seq, "record %d: %s" % (seq, m.value))
                        got.add(seq)
            check(len(got) == n, "read %d of %d records" % (len(got), n))
            await consumer.commit()
        finally:
            await consumer.stop()

        groups = [g[0] for g in await admin.list_consumer_groups()]
        check(group in groups, "list_consumer_groups lacks %s: %s" % (group, groups))
        offsets = await admin.list_consumer_group_offsets(group)
        check(sum(o.offset for o in offsets.values()) == n, "committed offsets %s" % offsets)
        await admin.delete_topics([topic])
    finally:
        await admin.close()


def aiokafka(bootstrap):
    asyncio.run(asyncio.wait_for(aiokafka_async(bootstrap), 3 * TIMEOUT))


# --- kafka-python ------------------------------------------------------------

def kafka_python(bootstrap):
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import NewTopic, ConfigResource, ConfigResourceType

    topic, group = PREFIX + "-kafkapython", PREFIX + "-kafkapython-group"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
        check(topic in admin.list_topics(), "list_topics lacks %s" % topic)

        n = 50
        producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", compression_type="lz4")
        futures = [producer.send(topic, key=b"k%d" % (i % 4), value=b"v%d" % i, headers=[("seq", str(i).encode())])
                   for i in range(n)]
        producer.flush(TIMEOUT)
        for f in futures:
            check(f.get(TIMEOUT).offset >= 0, "no offset")
        producer.close()

        consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group,
                                 auto_offset_reset="earliest", enable_auto_commit=False)
        got = set()
        deadline = time.time() + TIMEOUT
        while len(got) < n and time.time() < deadline:
            for tp, msgs in consumer.poll(timeout_ms=500).items():
                for m in msgs:
                    seq = int(dict(m.headers)["seq"])
                    check(m.value == b"v%d" % seq, "record %d: %s" % (seq, m.value))
                    got.add(seq)
        check(len(got) == n, "read %d of %d records" % (len(got), n))
        consumer.commit()
        consumer.close()

        groups = [g[0] for g in admin.list_consumer_groups()]
        check(group in groups, "list_consumer_groups lacks %s: %s" % (group, groups))
        desc = admin.describe_consumer_groups([group])[0]
        check(desc.state == "Empty", "group state %s" % desc.state)
        offsets = admin.list_consumer_group_offsets(group)
        check(sum(o.offset for o in offsets.values()) == n, "committed offsets %s" % offsets)
        cfg = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
        check(cfg, "describe_configs answered nothing")
        admin.delete_consumer_groups([group])
        admin.delete_topics([topic])
    finally:
        admin.close()


CHECKS = {
    "confluent-kafka": confluent,
    "confluent-kafka-transactions": confluent_txn,
    "confluent-kafka-848": confluent_848,
    "aiokafka": aiokafka,
    "kafka-python": kafka_python,
}


def main():
    if len(sys.argv) < 2:
        print("usage: clients.py BOOTSTRAP [CHECK...]", file=sys.stderr)
        return 2
    bootstrap, names = sys.argv[1], sys.argv[2:] or list(CHECKS)
    ok = True
    for name in names:
        start = time.time()
        try:
            CHECKS[name](bootstrap)
            print("PASS %s %.2f" % (name, time.time() - start), flush=True)
        except Exception as e:  # a failed check, reported and the next run
            ok = False
            traceback.print_exc()
            print("FAIL %s: %s" % (name, repr(e).replace("\n", " ")), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
