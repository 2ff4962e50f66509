// kafkajs consumer-group scenario for silt's e2e tests
// (tests/e2e/groups_kafkajs_test.go): what a new Kafka user tries first.
//
//   node groups.js BROKER TOPIC GROUP PER_KEY
//
// 1. creates TOPIC with 3 partitions (kafkajs admin);
// 2. starts consumers c0, c1, c2 in GROUP (client ids silt-groups-c0...,
//    so member ids sort c0 < c1 < c2 < c3 as Kafka builds them from the
//    client id) and waits until each holds one partition;
// 3. produces PER_KEY messages for each of 6 keys and waits until all are
//    consumed;
// 4. starts c3, waits until the group has rebalanced with all four (c3
//    joined, c0..c2 joined again after it), produces the same again and
//    waits until all are consumed;
// 5. disconnects everything.
//
// Every step prints one JSON object per line on stdout: {"event":"join",
// consumer, memberId, isLeader, partitions}, {"event":"message", consumer,
// partition, offset, key, value}, {"event":"phase", name}, and finally
// {"event":"done"}. kafkajs's logs go to stderr. Exit status 1 on failure
// or after the deadline.
'use strict';
process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';
const { Kafka, logLevel } = require('kafkajs');

const [broker, topic, group, perKeyArg] = process.argv.slice(2);
const perKey = Number(perKeyArg);
const keys = ['k0', 'k1', 'k2', 'k3', 'k4', 'k5'];
const deadlineMs = 60000;

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function kafka(clientId) {
  return new Kafka({
    clientId,
    brokers: [broker],
    logLevel: logLevel.WARN,
    logCreator: () => ({ level, log }) => {
      process.stderr.write(`${clientId} ${level} ${log.message} ${JSON.stringify(log)}\n`);
    },
    retry: { retries: 8 },
  });
}

// State the waits look at; every change re-checks the waiting conditions.
const consumers = {}; // name -> { consumer, joins: [partitions...], messages: n }
let consumedTotal = 0;
const waiters = [];
function changed() {
  for (const w of waiters.slice()) {
    if (w.cond()) {
      waiters.splice(waiters.indexOf(w), 1);
      clearTimeout(w.timer);
      w.resolve();
    }
  }
}
function waitFor(what, cond) {
  if (cond()) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const w = { cond, resolve };
    w.timer = setTimeout(() => {
      waiters.splice(waiters.indexOf(w), 1);
      reject(new Error(`timeout waiting for ${what}: ${JSON.stringify(summary())}`));
    }, deadlineMs);
    waiters.push(w);
  });
}
function summary() {
  const out = { consumedTotal };
  for (const [name, c] of Object.entries(consumers)) out[name] = { joins: c.joins, messages: c.messages };
  return out;
}
let crashed = null;
let failCrash;
const crash = new Promise((_, reject) => { failCrash = reject; });
crash.catch(() => {});

async function startConsumer(name) {
  const consumer = kafka(`silt-groups-${name}`).consumer({
    groupId: group,
    sessionTimeout: 10000,
    rebalanceTimeout: 20000,
    heartbeatInterval: 500,
    maxWaitTimeInMs: 200,
  });
  const c = { consumer, joins: [], messages: 0 };
  consumers[name] = c;
  consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
    const partitions = (payload.memberAssignment[topic] || []).slice().sort((a, b) => a - b);
    c.joins.push(partitions);
    emit({ event: 'join', consumer: name, memberId: payload.memberId, isLeader: payload.isLeader, partitions });
    changed();
  });
  consumer.on(consumer.events.CRASH, ({ payload }) => {
    crashed = payload.error;
    failCrash(new Error(`${name} crashed: ${payload.error && payload.error.stack}`));
  });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ partition, message }) => {
      c.messages++;
      consumedTotal++;
      emit({
        event: 'message', consumer: name, partition, offset: Number(message.offset),
        key: message.key ? message.key.toString() : null,
        value: message.value ? message.value.toString() : null,
      });
      changed();
    },
  });
}

// latest returns the partitions of a consumer's last join (null: none yet).
function latest(name) {
  const j = consumers[name] && consumers[name].joins;
  return j && j.length ? j[j.length - 1] : null;
}

function oneEach(names) {
  const seen = new Set();
  for (const n of names) {
    const ps = latest(n);
    if (!ps || ps.length !== 1 || seen.has(ps[0])) return false;
    seen.add(ps[0]);
  }
  return seen.size === 3;
}

async function produceRound(producer, round) {
  const messages = [];
  for (let i = 0; i < perKey; i++) {
    for (const key of keys) messages.push({ key, value: `${key} round ${round} message ${i}` });
  }
  await producer.send({ topic, acks: -1, messages });
  return messages.length;
}

async function main() {
  const client = kafka('silt-groups-admin');
  const admin = client.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true });
  const producer = client.producer();
  await producer.connect();

  const first = ['c0', 'c1', 'c2'];
  await Promise.race([Promise.all(first.map(startConsumer)), crash]);
  await Promise.race([waitFor('one partition per consumer', () => oneEach(first)), crash]);
  emit({ event: 'phase', name: 'three-stable' });

  let want = await produceRound(producer, 1);
  await Promise.race([waitFor(`${want} messages`, () => consumedTotal >= want), crash]);
  emit({ event: 'phase', name: 'round1-consumed' });

  const joinsBefore = Object.fromEntries(first.map((n) => [n, consumers[n].joins.length]));
  await Promise.race([startConsumer('c3'), crash]);
  await Promise.race([waitFor('rebalance with four members', () =>
    latest('c3') !== null && first.every((n) => consumers[n].joins.length > joinsBefore[n]) && oneEach(first)), crash]);
  emit({ event: 'phase', name: 'four-stable' });

  want += await produceRound(producer, 2);
  await Promise.race([waitFor(`${want} messages`, () => consumedTotal >= want), crash]);
  emit({ event: 'phase', name: 'round2-consumed' });

  await producer.disconnect();
  await admin.disconnect();
  await Promise.all(Object.values(consumers).map((c) => c.consumer.disconnect()));
  emit({ event: 'done' });
}

main().then(() => process.exit(0), (e) => {
  process.stderr.write(`groups.js failed: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
