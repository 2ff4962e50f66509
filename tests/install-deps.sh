#!/usr/bin/env bash
# Installs what `make test` needs and is missing: Postgres server binaries,
# the MinIO server (built from source, cached under $SILT_CACHE), kcat,
# python3-confluent-kafka (and a current confluent-kafka in a venv under
# $SILT_CACHE), the Node.js test clients, Apache Kafka with the Java
# clients from Maven Central (tests/java/build.sh, cached under
# $SILT_CACHE/java and $SILT_CACHE/m2), and the Python clients from PyPI
# (a virtualenv under $SILT_CACHE/python). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
SILT_CACHE=${SILT_CACHE:-$HOME/.cache/silt}
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c

apt_updated=
apt_install() {
  if [ -z "$apt_updated" ]; then apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  echo "install-deps: installing postgresql"
  apt_install postgresql
fi

if [ ! -x "$SILT_CACHE/bin/minio" ] || [ "$(cat "$SILT_CACHE/bin/minio.version" 2>/dev/null)" != "$MINIO_VERSION" ]; then
  echo "install-deps: building minio $MINIO_VERSION (several minutes the first time)"
  mkdir -p "$SILT_CACHE/bin"
  (cd /tmp && GOBIN="$SILT_CACHE/bin" GOFLAGS=-mod=mod go install "github.com/minio/minio@$MINIO_VERSION")
  echo "$MINIO_VERSION" > "$SILT_CACHE/bin/minio.version"
fi

command -v kcat >/dev/null || { echo "install-deps: installing kcat"; apt_install kcat; }
python3 -c 'import confluent_kafka' 2>/dev/null || /usr/bin/python3 -c 'import confluent_kafka' 2>/dev/null || { echo "install-deps: installing python3-confluent-kafka"; apt_install python3-confluent-kafka; }

# A current confluent-kafka (its wheel bundles librdkafka 2.16) in a venv
# for the SASL/SCRAM tests: Debian's librdkafka 2.0.2 sends a SCRAM nonce
# that RFC 5802 servers (Kafka 4, silt) refuse (fixed in librdkafka 2.6.1).
CK_VERSION=2.16.1
ck_venv=$SILT_CACHE/venv-confluent-kafka
if [ "$("$ck_venv/bin/python" -c 'import confluent_kafka; print(confluent_kafka.version()[0])' 2>/dev/null)" != "$CK_VERSION" ]; then
  echo "install-deps: confluent-kafka $CK_VERSION into $ck_venv"
  /usr/bin/python3 -c 'import venv' 2>/dev/null || apt_install python3-venv
  /usr/bin/python3 -m venv "$ck_venv"
  "$ck_venv/bin/pip" install -q "confluent-kafka==$CK_VERSION"
fi

# Node.js runs the kafkajs interop client (tests/e2e/kafkajs_test.go).
command -v node >/dev/null && command -v npm >/dev/null || { echo "install-deps: installing nodejs and npm"; apt_install nodejs npm; }
# npm install again whenever an installed package's version differs from
# the pin in package.json (or a package is missing).
node_dir=tests/interop/node
if [ -f "$node_dir/package.json" ]; then
  stale=$(cd "$node_dir" && node -e '
    const deps = require("./package.json").dependencies || {};
    for (const [name, want] of Object.entries(deps)) {
      let have = null;
      try { have = require("./node_modules/" + name + "/package.json").version; } catch (e) {}
      if (have !== want) { console.log(name); }
    }')
  if [ -n "$stale" ]; then
    echo "install-deps: npm install (tests/interop/node: $(echo $stale))"
    (cd "$node_dir" && npm install --no-audit --no-fund --silent)
  fi
fi
# Java 17 and Maven run Apache Kafka (the reference broker, its CLI tools)
# and the Java clients; build.sh resolves them from Maven Central once.
command -v java >/dev/null || { echo "install-deps: installing openjdk-17-jdk-headless"; apt_install openjdk-17-jdk-headless; }
command -v mvn >/dev/null || { echo "install-deps: installing maven"; apt_install maven; }
tests/java/build.sh >/dev/null

# The Python clients from PyPI (confluent-kafka, aiokafka, kafka-python),
# pinned in tests/interop/python/requirements.txt, in a virtualenv.
python3 -c 'import venv, ensurepip' 2>/dev/null || { echo "install-deps: installing python3-venv"; apt_install python3-venv; }
tests/interop/python/venv.sh >/dev/null

echo "install-deps: ready"
