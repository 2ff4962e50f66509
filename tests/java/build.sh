#!/usr/bin/env bash
# Resolves Apache Kafka (broker and command-line tools) and the Java client
# libraries from Maven Central and builds the Java test driver, all into
# $SILT_CACHE/java (outside the repository; Maven's local repository is
# $SILT_CACHE/m2). Versions are pinned in the two pom.xml files.
#
# Idempotent and cheap when nothing changed: the output directory is named
# by a hash of everything under tests/java, so an edit rebuilds and an
# unchanged tree reuses the last build. Several test processes may call it
# at once (tests/harness runs it lazily); a lock serialises them.
#
# Prints the path of env.sh, which holds the classpaths:
#   KAFKA_CP        kafka_2.13 + kafka-tools (kafka.Kafka, the CLI tools)
#   CLIENTS4_CP     the driver jar + kafka-clients/kafka-streams 4.x
#   CLIENTS3_CP     the driver jar + kafka-clients/kafka-streams 3.x
#   CONNECT_CP      a Kafka Connect worker with the FileStream connectors
#   KAFKA_VERSION, CLIENTS4_VERSION, CLIENTS3_VERSION, CONNECT_VERSION
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
SILT_CACHE=${SILT_CACHE:-$HOME/.cache/silt}
command -v mvn >/dev/null || { echo "build.sh: mvn not found (apt-get install maven)" >&2; exit 1; }
command -v java >/dev/null || { echo "build.sh: java not found" >&2; exit 1; }

hash=$(cd "$here" && find . -type f \( -name '*.xml' -o -name '*.java' -o -name '*.sh' -o -name '*.properties' \) -not -path './target/*' -print0 \
  | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)
out=$SILT_CACHE/java/$hash
if [ -f "$out/env.sh" ]; then echo "$out/env.sh"; exit 0; fi

mkdir -p "$SILT_CACHE/java"
exec 9>"$SILT_CACHE/java/.lock"
flock 9
if [ -f "$out/env.sh" ]; then echo "$out/env.sh"; exit 0; fi

echo "build.sh: resolving Kafka and building the Java test driver into $out (Maven Central; a minute the first time)" >&2
rm -rf "$out.tmp" && mkdir -p "$out.tmp"
mvn_() { mvn -B -q -Dmaven.repo.local="$SILT_CACHE/m2" "$@" >&2; }
prop() { sed -n "s:.*<$1>\(.*\)</$1>.*:\1:p" "$2" | head -1; }

mvn_ -f "$here/kafka/pom.xml" -Dsilt.build.dir="$out.tmp/kafka-build" \
  dependency:build-classpath -Dmdep.includeScope=runtime -Dmdep.outputFile="$out.tmp/kafka.cp"
mvn_ -f "$here/connect/pom.xml" -Dsilt.build.dir="$out.tmp/connect-build" \
  dependency:build-classpath -Dmdep.includeScope=runtime -Dmdep.outputFile="$out.tmp/connect.cp"
mvn_ -f "$here/clients/pom.xml" -Dsilt.build.dir="$out.tmp/build" package
jar=$out/silt-javatest.jar
cp "$out.tmp/build/silt-javatest.jar" "$out.tmp/silt-javatest.jar"
c4=$(prop clients.version "$here/clients/pom.xml")
c3=$(prop clients3.version "$here/clients/pom.xml")
mvn_ -f "$here/clients/pom.xml" -Dsilt.build.dir="$out.tmp/cp4" \
  dependency:build-classpath -Dmdep.includeScope=runtime -Dmdep.outputFile="$out.tmp/clients4.cp"
mvn_ -f "$here/clients/pom.xml" -Dsilt.build.dir="$out.tmp/cp3" -Dclients.version="$c3" \
  dependency:build-classpath -Dmdep.includeScope=runtime -Dmdep.outputFile="$out.tmp/clients3.cp"
rm -rf "$out.tmp/build" "$out.tmp/kafka-build" "$out.tmp/connect-build" "$out.tmp/cp4" "$out.tmp/cp3"

{
  echo "KAFKA_VERSION=$(prop kafka.version "$here/kafka/pom.xml")"
  echo "CLIENTS4_VERSION=$c4"
  echo "CLIENTS3_VERSION=$c3"
  echo "KAFKA_CP=$(cat "$out.tmp/kafka.cp")"
  echo "CLIENTS4_CP=$jar:$(cat "$out.tmp/clients4.cp")"
  echo "CLIENTS3_CP=$jar:$(cat "$out.tmp/clients3.cp")"
  echo "CONNECT_VERSION=$(prop connect.version "$here/connect/pom.xml")"
  echo "CONNECT_CP=$(cat "$out.tmp/connect.cp")"
} > "$out.tmp/env.sh"
rm -rf "$out" && mv "$out.tmp" "$out"
# Older builds' directories are left for a concurrent test process that
# may still be using them; keep the newest few.
ls -1dt "$SILT_CACHE"/java/*/ 2>/dev/null | tail -n +4 | xargs -r rm -rf
echo "$out/env.sh"
