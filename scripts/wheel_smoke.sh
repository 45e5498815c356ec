#!/usr/bin/env bash
# The package as a user gets it: build the wheel and the sdist, install each into a fresh venv
# (the pinned runtime dependencies of requirements-runtime.lock, then the package alone), and
# run the README's quickstart with it from an empty folder, on SQLite and on PostgreSQL:
# `python -m craftdesk db upgrade`, workspace create, key create, serve on a free port, and the
# seed's curl `GET /v1/projects` with the key, which must answer 200.
#
# PostgreSQL comes from CRAFTDESK_TEST_POSTGRES_URL (default: the local server, user postgres);
# each run creates a throwaway database there and drops it. Everything else lives in a
# temporary folder, removed at the end.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-$repo/.venv/bin/python}"
admin_url="${CRAFTDESK_TEST_POSTGRES_URL:-postgresql+asyncpg://postgres@127.0.0.1:5432/postgres}"

work="$(mktemp -d)"
server_pid=""
databases=()
passed=0

pg_admin() {  # run one SQL statement on the PostgreSQL server (through asyncpg)
    "$python" - "$admin_url" "$1" <<'EOF'
import asyncio, sys
import asyncpg

async def main(url: str, sql: str) -> None:
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await connection.execute(sql)
    finally:
        await connection.close()

asyncio.run(main(*sys.argv[1:]))
EOF
}

cleanup() {
    if [[ -n "$server_pid" ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    for database in "${databases[@]}"; do
        pg_admin "DROP DATABASE IF EXISTS \"$database\" WITH (FORCE)" || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

free_port() {
    "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

echo "smoke: building the wheel and the sdist" >&2
"$python" -m build --outdir "$work/dist" "$repo" >"$work/build.log" 2>&1 \
    || { cat "$work/build.log" >&2; exit 1; }

install() {  # install ARTIFACT into a fresh venv at VENV
    local artifact="$1" venv="$2"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --require-hashes -r "$repo/requirements-runtime.lock"
    "$venv/bin/pip" install --quiet --no-deps "$artifact"
}

quickstart() {  # the README's quickstart with the craftdesk of VENV, on BACKEND
    local venv="$1" backend="$2"
    local folder
    folder="$(mktemp -d "$work/run-XXXXXX")"
    cd "$folder"
    if [[ "$backend" == postgresql ]]; then
        local database="craftdesk_smoke_$RANDOM$RANDOM"
        pg_admin "CREATE DATABASE \"$database\""
        databases+=("$database")
        export CRAFTDESK_DATABASE_URL="${admin_url%/*}/$database"
    else
        unset CRAFTDESK_DATABASE_URL  # the default: ./craftdesk.db in this empty folder
    fi
    export CRAFTDESK_PASSWORD="smoke-$RANDOM-$RANDOM"

    local where
    where="$("$venv/bin/python" -c 'import craftdesk; print(craftdesk.__file__)')"
    [[ "$where" == "$venv"/* ]] || { echo "smoke: craftdesk imported from $where" >&2; exit 1; }

    "$venv/bin/python" -m craftdesk db upgrade
    local slug key port status
    slug="$("$venv/bin/craftdesk" workspace create --name "Acme" --owner-email you@acme.test)"
    key="$("$venv/bin/craftdesk" key create "$slug" --email you@acme.test --name "CI/CD Pipeline")"
    port="$(free_port)"
    "$venv/bin/craftdesk" serve --host 127.0.0.1 --port "$port" >"$folder/serve.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 100); do
        curl -fsS -o /dev/null "http://127.0.0.1:$port/readyz" 2>/dev/null && break
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.2
    done
    status="$(curl -sS -o "$folder/body" -w '%{http_code}' "http://127.0.0.1:$port/v1/projects" \
        -H "Authorization: Bearer $key" -H "Content-Type: application/json" || true)"
    kill "$server_pid" 2>/dev/null || echo "smoke: the server had exited" >&2
    wait "$server_pid" || true
    server_pid=""
    if [[ "$status" != 200 || "$(cat "$folder/body")" != '{"data":[],"next_cursor":null}' ]]; then
        echo "smoke: GET /v1/projects answered ${status:-nothing}: $(cat "$folder/body" 2>/dev/null)" >&2
        tail -n 20 "$folder/serve.log" >&2
        exit 1
    fi
    if [[ "$backend" == sqlite && ! -s "$folder/craftdesk.db" ]]; then
        echo "smoke: no ./craftdesk.db in the folder it ran from" >&2
        exit 1
    fi
    cd "$work"
}

for artifact in "$work"/dist/craftdesk-*.whl "$work"/dist/craftdesk-*.tar.gz; do
    name="$(basename "$artifact")"
    echo "smoke: installing $name into a fresh venv" >&2
    install "$artifact" "$work/venv-$name"
    for backend in sqlite postgresql; do
        quickstart "$work/venv-$name" "$backend"
        echo "smoke: $name on $backend: the quickstart's curl got 200" >&2
        passed=$((passed + 1))
    done
done
echo "smoke: $passed passed, 0 failed"
