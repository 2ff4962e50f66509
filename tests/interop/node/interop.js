// kafkajs interop client for silt's e2e tests (tests/e2e/kafkajs_test.go).
//
//   node interop.js produce BROKER TOPIC COUNT
//       sends COUNT keyed messages with headers to partition 0 of TOPIC once
//       per codec (none, gzip, snappy, lz4, zstd; the last three through
//       codecs.js), and prints the acknowledged base offsets.
//   node interop.js consume BROKER TOPIC GROUP COUNT
//       consumes TOPIC from the beginning in consumer group GROUP until
//       COUNT messages arrived, commits, and prints them.
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

async function main() {
  await codecs.register();
  switch (mode) {
    case 'produce': return produce(Number(rest[0]));
    case 'consume': return consume(rest[0], Number(rest[1]));
    default: throw new Error(`unknown mode ${mode}`);
  }
}

main().then(() => process.exit(0), (e) => {
  process.stderr.write(`interop.js ${mode} failed: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
