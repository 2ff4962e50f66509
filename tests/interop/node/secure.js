// kafkajs over TLS + SASL for silt's e2e tests (tests/e2e/security_test.go).
//
//   node secure.js CA_FILE MECHANISM USER PASSWORD BROKER TOPIC COUNT
//       produces COUNT messages to partition 0 of TOPIC and reads them back
//       (no group), over ssl (trusting CA_FILE) with sasl MECHANISM
//       (plain, scram-sha-256, scram-sha-512); prints RESULT {"produced":
//       N, "consumed": N}.
//   node secure.js CA_FILE MECHANISM USER PASSWORD BROKER - 0
//       only connects an admin client: prints RESULT {"error": type} when
//       authentication fails, RESULT {"ok": true} when it succeeds.
//
// kafkajs's own logs go to stderr. Exit status 1 on any other failure.
'use strict';
process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';
const fs = require('fs');
const { Kafka, logLevel } = require('kafkajs');

const [caFile, mechanism, username, password, broker, topic, countArg] = process.argv.slice(2);
const count = Number(countArg);

const kafka = new Kafka({
  clientId: 'silt-e2e-kafkajs-secure',
  brokers: [broker],
  ssl: { ca: [fs.readFileSync(caFile, 'utf-8')], servername: 'localhost' },
  sasl: { mechanism, username, password },
  logLevel: logLevel.ERROR,
  logCreator: () => ({ level, log }) => {
    process.stderr.write(`${level} ${log.message} ${JSON.stringify(log)}\n`);
  },
  retry: { retries: 2 },
});

function result(obj) {
  process.stdout.write('RESULT ' + JSON.stringify(obj) + '\n');
}

async function check() {
  const admin = kafka.admin();
  try {
    await admin.connect();
    await admin.listTopics();
    result({ ok: true });
  } catch (e) {
    result({ error: e.type || e.name, message: e.message });
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

async function roundTrip() {
  const producer = kafka.producer({ allowAutoTopicCreation: true });
  await producer.connect();
  const messages = [];
  for (let i = 0; i < count; i++) messages.push({ partition: 0, value: `kafkajs ${mechanism} ${i}` });
  await producer.send({ topic, acks: -1, messages });
  await producer.disconnect();

  const consumer = kafka.consumer({ groupId: `secure-${mechanism}`, maxWaitTimeInMs: 500 });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  let consumed = 0;
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timeout: ${consumed} of ${count}`)), 60000);
    consumer.on(consumer.events.CRASH, (e) => { clearTimeout(timer); reject(e.payload.error); });
    consumer.run({
      eachMessage: async ({ message }) => {
        if (message.value.toString().startsWith(`kafkajs ${mechanism} `)) consumed++;
        if (consumed >= count) { clearTimeout(timer); resolve(); }
      },
    }).catch((e) => { clearTimeout(timer); reject(e); });
  });
  await consumer.disconnect();
  result({ produced: count, consumed });
}

(topic === '-' ? check() : roundTrip()).then(() => process.exit(0), (e) => {
  process.stderr.write(`secure.js failed: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
