// kafkajs interop client for silt's e2e tests (tests/e2e/kafkajs_test.go).
//
//   node interop.js produce BROKER TOPIC COUNT
//       sends COUNT keyed messages with headers to partition 0 of TOPIC once
//       per codec (none, gzip, snappy, lz4, zstd; the last three through
//       codecs.js), and prints the acknowledged base offsets.
//   node interop.js consume BROKER TOPIC GROUP COUNT
//       consumes TOPIC from the beginning in consumer group GROUP until
//       COUNT messages arrived, commits, and prints them.
//   node interop.js txn BROKER TOPIC IN GROUP TXNID
//       a transactional producer (TXNID) runs three transactions on TOPIC's
//       partitions 0 and 1: one committed with sendOffsets (GROUP's offset
//       of IN partition 0 at 3), one aborted, one committed; then a
//       read_committed consumer group reads TOPIC back, and the admin
//       client fetches GROUP's offsets of IN. Prints the values read, the
//       offsets, and the acknowledged offsets of every send.
//
// The result is one line on stdout starting with "RESULT " followed by JSON;
// kafkajs's own logs go to stderr. Exit status 1 on any failure.
'use strict';
process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';
const { Kafka, CompressionTypes, logLevel } = require('kafkajs');
const codecs = require('./codecs');

const [mode, broker, topic, ...rest] = process.argv.slice(2);
const deadlineMs = 60000;

const kafka = new Kafka({
  clientId: 'silt-e2e-kafkajs',
  brokers: [broker],
  logLevel: logLevel.WARN,
  logCreator: () => ({ level, log }) => {
    process.stderr.write(`${level} ${log.message} ${JSON.stringify(log)}\n`);
  },
  retry: { retries: 8 },
});

function result(obj) {
  process.stdout.write('RESULT ' + JSON.stringify(obj) + '\n');
}

async function produce(count) {
  const producer = kafka.producer({ allowAutoTopicCreation: true });
  await producer.connect();
  const results = [];
  const codecList = [
    ['none', CompressionTypes.None],
    ['gzip', CompressionTypes.GZIP],
    ['snappy', CompressionTypes.Snappy],
    ['lz4', CompressionTypes.LZ4],
    ['zstd', CompressionTypes.ZSTD],
  ];
  for (const [name, codec] of codecList) {
    const messages = [];
    for (let i = 0; i < count; i++) {
      messages.push({
        partition: 0,
        key: `k${i % 3}`,
        value: `kafkajs ${name} message ${i}`,
        headers: { codec: name, index: String(i) },
      });
    }
    const meta = await producer.send({ topic, acks: -1, compression: codec, messages });
    if (meta.length !== 1 || meta[0].errorCode !== 0) {
      throw new Error(`unexpected produce response ${JSON.stringify(meta)}`);
    }
    results.push({ codec: name, partition: meta[0].partition, baseOffset: Number(meta[0].baseOffset), count });
  }
  await producer.disconnect();
  result({ produced: results });
}

async function consume(group, count) {
  const consumer = kafka.consumer({ groupId: group, sessionTimeout: 10000, heartbeatInterval: 1000, maxWaitTimeInMs: 500 });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  const messages = [];
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timeout: ${messages.length} of ${count} messages`)), deadlineMs);
    consumer.on(consumer.events.CRASH, (e) => { clearTimeout(timer); reject(e.payload.error); });
    consumer.run({
      eachMessage: async ({ partition, message }) => {
        const headers = {};
        for (const [k, v] of Object.entries(message.headers || {})) headers[k] = v.toString();
        messages.push({
          partition,
          offset: Number(message.offset),
          key: message.key ? message.key.toString() : null,
          value: message.value ? message.value.toString() : null,
          headers,
        });
        if (messages.length >= count) { clearTimeout(timer); resolve(); }
      },
    }).catch((e) => { clearTimeout(timer); reject(e); });
  });
  await consumer.disconnect();
  result({ consumed: messages });
}

// values of one transaction: n records over partitions 0 and 1.
function txnMessages(label, n) {
  const out = [];
  for (let i = 0; i < n; i++) out.push({ partition: i % 2, key: `k${i}`, value: `${label}-${i}` });
  return out;
}

async function txn(inTopic, group, transactionalId) {
  const producer = kafka.producer({ transactionalId, idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const sent = [];
  const record = (label, meta) => {
    for (const m of meta) sent.push({ txn: label, partition: m.partition, baseOffset: Number(m.baseOffset), errorCode: m.errorCode });
  };

  let t = await producer.transaction();
  record('committed1', await t.send({ topic, acks: -1, messages: txnMessages('committed1', 4) }));
  await t.sendOffsets({ consumerGroupId: group, topics: [{ topic: inTopic, partitions: [{ partition: 0, offset: '3' }] }] });
  await t.commit();

  t = await producer.transaction();
  record('aborted', await t.send({ topic, acks: -1, messages: txnMessages('aborted', 4) }));
  await t.sendOffsets({ consumerGroupId: group, topics: [{ topic: inTopic, partitions: [{ partition: 0, offset: '99' }] }] });
  await t.abort();

  t = await producer.transaction();
  record('committed2', await t.send({ topic, acks: -1, messages: txnMessages('committed2', 2) }));
  await t.commit();
  await producer.disconnect();

  // The consumer reads read_committed (kafkajs's default isolation level)
  // until the last committed record; aborted ones would come before it.
  const consumer = kafka.consumer({ groupId: `${group}-reader`, sessionTimeout: 10000, heartbeatInterval: 1000, maxWaitTimeInMs: 500 });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  const values = [];
  const last = new Set(['committed2-0', 'committed2-1']);
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timeout: read ${JSON.stringify(values)}`)), deadlineMs);
    consumer.on(consumer.events.CRASH, (e) => { clearTimeout(timer); reject(e.payload.error); });
    consumer.run({
      eachMessage: async ({ message }) => {
        const v = message.value.toString();
        values.push(v);
        last.delete(v);
        if (last.size === 0) { clearTimeout(timer); resolve(); }
      },
    }).catch((e) => { clearTimeout(timer); reject(e); });
  });
  await consumer.disconnect();

  const admin = kafka.admin();
  await admin.connect();
  const fetched = await admin.fetchOffsets({ groupId: group, topics: [inTopic] });
  await admin.disconnect();
  const offsets = [];
  for (const ft of fetched) {
    for (const p of ft.partitions) offsets.push({ topic: ft.topic, partition: p.partition, offset: Number(p.offset) });
  }
  result({ sent, values, offsets });
}

async function main() {
  await codecs.register();
  switch (mode) {
    case 'produce': return produce(Number(rest[0]));
    case 'consume': return consume(rest[0], Number(rest[1]));
    case 'txn': return txn(rest[0], rest[1], rest[2]);
    default: throw new Error(`unknown mode ${mode}`);
  }
}

main().then(() => process.exit(0), (e) => {
  process.stderr.write(`interop.js ${mode} failed: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
