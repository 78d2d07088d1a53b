#!/usr/bin/env bash
# Prepares this machine for the gateway: installs what is missing, creates and starts the
# embedded PostgreSQL cluster under .local/pg, creates the database, and writes the key that seals
# console users' TOTP secrets (.local/console-totp.key) and a development wallet seed (.local/wallet.seed)
# when there is none. Idempotent.
#
#   scripts/bootstrap.sh            # cluster on 127.0.0.1:${GATEWAY_PG_PORT:-24329}, database "gateway"
#
# Prints the environment to use it (also written to .local/env).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

PORT="${GATEWAY_PG_PORT:-24329}"
DB="${GATEWAY_PG_DB:-gateway}"
DATA="$LOCAL/pg"

ensure_packages
ensure_swift
start_cluster "$DATA" "$PORT" "$DB"

mkdir -p "$LOCAL"
ensure_totp_key "$LOCAL/console-totp.key"   # workers.yml console.totp_key_file
ensure_dev_seed "$LOCAL/wallet.seed"        # workers.yml wallet.seed_file: autopay- and sweep-worker sign with it
cat > "$LOCAL/env" <<ENV
export POSTGRES_HOSTNAME=127.0.0.1
export POSTGRES_PORT=$PORT
export POSTGRES_USER=gateway
export POSTGRES_DB=$DB
ENV
say "PostgreSQL ready: postgres://gateway@127.0.0.1:$PORT/$DB (environment in .local/env)"
