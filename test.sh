#!/usr/bin/env bash
# Set up (the first time) and run the test suite: ./test.sh [pytest arguments]
. "$(dirname "$0")/tools/env.sh"
ensure_env
ensure_horovod
cd "$ROOT"
exec "$VENV/bin/python" -m pytest -v "$@"
