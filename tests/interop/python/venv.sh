#!/usr/bin/env bash
# Creates (once per requirements.txt) a virtualenv under $SILT_CACHE with
# the pinned Python Kafka clients and prints its python's path. Several
# test processes may call it at once; a lock serialises them.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
SILT_CACHE=${SILT_CACHE:-$HOME/.cache/silt}
py=$(command -v python3)
hash=$( (cat "$here/requirements.txt"; "$py" --version) | sha256sum | cut -c1-16)
venv=$SILT_CACHE/python/$hash
if [ -x "$venv/bin/python" ] && [ -f "$venv/.ok" ]; then echo "$venv/bin/python"; exit 0; fi
mkdir -p "$SILT_CACHE/python"
exec 9>"$SILT_CACHE/python/.lock"
flock 9
if [ ! -f "$venv/.ok" ]; then
  echo "venv.sh: installing the Python Kafka clients into $venv" >&2
  rm -rf "$venv"
  "$py" -m venv "$venv" >&2
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$here/requirements.txt" >&2
  touch "$venv/.ok"
fi
echo "$venv/bin/python"
