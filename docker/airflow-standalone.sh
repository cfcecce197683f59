#!/usr/bin/env bash
# Airflow standalone (api-server + scheduler + dag-processor + triggerer) on SQLite with
# newswatch's DAGs: what `make airflow` runs. Stop it with Ctrl-C (every child goes too).
#
# It first prepares AIRFLOW_HOME with docker/airflow_home.py (the project's DAGs, no examples, UI bound
# to 127.0.0.1, database migrated), so plain `airflow ...` commands later see the same setup.
#
# Environment (all optional):
#   AIRFLOW_HOME   default ./var/airflow (metadata DB, logs, generated admin password)
#   AIRFLOW_PORT   default 8080 (UI and API)
#   AIRFLOW_HOST   default 127.0.0.1 (address the UI/API binds to; 0.0.0.0 exposes it)
#   AIRFLOW_BIN    default ./.venv/bin/airflow
#   PIPELINE_*     passed to the tasks as usual (default config ./config, data ./var)
#   AIRFLOW_CONN_NEWSWATCH_SLACK / AIRFLOW_CONN_NEWSWATCH_SMTP   ops notifications (optional)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

export AIRFLOW_BIN="${AIRFLOW_BIN:-$ROOT/.venv/bin/airflow}"
PORT="${AIRFLOW_PORT:-8080}"
export AIRFLOW_HOME="${AIRFLOW_HOME:-$ROOT/var/airflow}"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export PATH="$(dirname "$AIRFLOW_BIN"):$PATH"  # standalone starts its components as `airflow ...` subprocesses
export PIPELINE_CONFIG_DIR="${PIPELINE_CONFIG_DIR:-$ROOT/config}"
export PIPELINE_DATA_DIR="${PIPELINE_DATA_DIR:-$ROOT/var}"

if [[ ! -x "$AIRFLOW_BIN" ]]; then
    echo "airflow-standalone: $AIRFLOW_BIN not found: run 'make test' (installs the [airflow] extra) first" >&2
    exit 2
fi
mkdir -p "$AIRFLOW_HOME" "$PIPELINE_DATA_DIR"
"$(dirname "$AIRFLOW_BIN")/python" "$ROOT/docker/airflow_home.py"

PASSWORDS="$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated"
PROBE_HOST="${AIRFLOW_HOST:-127.0.0.1}"
[[ "$PROBE_HOST" == "0.0.0.0" || "$PROBE_HOST" == "::" ]] && PROBE_HOST=127.0.0.1
HEALTH="http://$PROBE_HOST:$PORT/api/v2/monitor/health"

# Own process group, so stopping it stops the api-server, scheduler, dag-processor and triggerer too.
setsid "$AIRFLOW_BIN" standalone > "$AIRFLOW_HOME/standalone.log" 2>&1 &
PID=$!
stop() {
    trap - INT TERM EXIT
    if kill -0 "$PID" 2>/dev/null; then
        echo "airflow-standalone: stopping (process group $PID)"
        kill -TERM -- "-$PID" 2>/dev/null || true
        for _ in $(seq 1 30); do kill -0 "$PID" 2>/dev/null || break; sleep 1; done
        kill -KILL -- "-$PID" 2>/dev/null || true
    fi
}
trap stop EXIT
trap 'stop; exit 130' INT TERM

echo "airflow-standalone: starting Airflow (home $AIRFLOW_HOME, DAGs $ROOT/dags)"
echo "airflow-standalone: log: $AIRFLOW_HOME/standalone.log"
UP=0
for _ in $(seq 1 180); do
    if ! kill -0 "$PID" 2>/dev/null; then
        echo "airflow-standalone: airflow standalone exited; last lines of the log:" >&2
        tail -n 20 "$AIRFLOW_HOME/standalone.log" >&2
        exit 1
    fi
    if curl -fsS -o /dev/null "$HEALTH" 2>/dev/null; then
        echo "airflow-standalone: UI up at http://localhost:$PORT (bound to ${AIRFLOW_HOST:-127.0.0.1}; health: $HEALTH)"
        echo "airflow-standalone: user 'admin'; password in $PASSWORDS"
        echo "airflow-standalone: DAGs: news_ingest, news_backfill, news_maintenance, watchlist_digest (Ctrl-C stops)"
        UP=1
        break
    fi
    sleep 1
done
if [[ "$UP" != 1 ]]; then
    echo "airflow-standalone: the UI did not answer on $HEALTH within 180 s; still waiting (see the log)" >&2
fi
wait "$PID"
