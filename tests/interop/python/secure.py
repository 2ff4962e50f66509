"""confluent-kafka (librdkafka) over SASL_SSL for silt's e2e tests
(tests/e2e/security_test.go), run with the current confluent-kafka that
tests/install-deps.sh installs into a venv.

    secure.py CA_FILE MECHANISM USER PASSWORD BROKER TOPIC COUNT
        produces COUNT messages to TOPIC and reads them back with a consumer
        group, over security.protocol=SASL_SSL; prints
        RESULT {"produced": N, "consumed": N}.
    secure.py CA_FILE MECHANISM USER PASSWORD BROKER - 0
        only asks for metadata: prints RESULT {"error": name} when it fails
        (authentication), RESULT {"ok": true} otherwise.
"""
import json
import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient

ca, mechanism, user, password, broker, topic, count = sys.argv[1:8]
count = int(count)
base = {
    "bootstrap.servers": broker,
    "security.protocol": "SASL_SSL",
    "ssl.ca.location": ca,
    "sasl.mechanisms": mechanism,
    "sasl.username": user,
    "sasl.password": password,
}


def result(obj):
    print("RESULT " + json.dumps(obj), flush=True)


if topic == "-":
    errors = []
    admin = AdminClient({**base, "error_cb": lambda e: errors.append(e)})
    try:
        admin.list_topics(timeout=10)
        result({"ok": True})
    except KafkaException as e:
        # The authentication failure comes through error_cb (served by
        # poll); the metadata call itself only reports the broker as down.
        deadline = time.time() + 10
        while not errors and time.time() < deadline:
            admin.poll(0.5)
        auth = [x for x in errors if x.name() == "_AUTHENTICATION"]
        err = auth[0] if auth else (errors[0] if errors else e.args[0])
        result({"error": err.name(), "message": err.str()})
    sys.exit(0)

producer = Producer({**base, "enable.idempotence": True})
for i in range(count):
    producer.produce(topic, value=f"python {mechanism} {i}".encode(), partition=0)
left = producer.flush(60)
if left:
    raise SystemExit(f"{left} messages not delivered")

consumer = Consumer({**base, "group.id": f"secure-{mechanism}", "auto.offset.reset": "earliest"})
consumer.subscribe([topic])
consumed = 0
deadline = time.time() + 60
while consumed < count and time.time() < deadline:
    m = consumer.poll(1.0)
    if m is None:
        continue
    if m.error():
        raise SystemExit(f"consume: {m.error()}")
    if m.value().decode().startswith(f"python {mechanism} "):
        consumed += 1
consumer.close()
result({"produced": count, "consumed": consumed})
