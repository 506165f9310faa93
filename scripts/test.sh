#!/usr/bin/env bash
# Install satiot with its test tools into ./.venv and run the whole test suite.
#   scripts/test.sh                  # on the embedded SQLite backend
#   scripts/test.sh --db=postgresql  # on PostgreSQL (SATIOT_TEST_PG_URL, default local trust)
# Extra arguments go to pytest; SATIOT_SKIP_INSTALL=1 skips the install step. Browser tests need Debian's chromium at /usr/bin/chromium;
# as root this script installs it when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
log=$(mktemp)
if [ "${SATIOT_SKIP_INSTALL:-0}" = 1 ]; then
  : # the caller installed already (CI runs the two backends side by side on one venv)
elif ! .venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test]' >"$log" 2>&1; then
  cat "$log" >&2
  echo "installing satiot and its test tools failed" >&2
  exit 1
fi
rm -f "$log"

if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing chromium for the console's browser tests" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "note: /usr/bin/chromium is missing; browser tests will fail (apt-get install chromium)" >&2
  fi
fi

exec .venv/bin/pytest "$@"
