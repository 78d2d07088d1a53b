#!/usr/bin/env bash
# Measures the console's queue and decision pages with many pending reviews: a throwaway database
# on the cluster named by POSTGRES_* (default: scripts/test.sh's settings), N withdrawals waiting in
# review (levels 1–2, every tenth four-eyes) beside 2N finished ones, gateway-console on a free
# loopback port, a signed-in reviewer, then R sequential GETs of each page (and of the tab-count and
# hot-wallet-header fragments the 5-second refresh fetches); prints p50/p99 ms.
#   scripts/bench-console.sh [--pending 10000] [--requests 100]   (GATEWAY_BUILD=release for a release build)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
PENDING=10000
REQUESTS=100
while [ $# -gt 0 ]; do
    case "$1" in
        --pending) PENDING="$2"; shift 2 ;;
        --requests) REQUESTS="$2"; shift 2 ;;
        *) die "unknown argument $1 (--pending N, --requests N)" ;;
    esac
done
BUILD="${GATEWAY_BUILD:-debug}"
cd "$ROOT"
swift build -c "$BUILD" --product gateway-console >/dev/null
swift build -c "$BUILD" --product gatewayctl >/dev/null
BIN="$(swift build -c "$BUILD" --show-bin-path)"
export POSTGRES_HOSTNAME="${POSTGRES_HOSTNAME:-127.0.0.1}" POSTGRES_PORT="${POSTGRES_PORT:-24339}" POSTGRES_USER="${POSTGRES_USER:-gateway}"
export POSTGRES_DB=gw_bench_console GATEWAY_SQL_DIR="$ROOT/sql"
unset DATABASE_URL
PSQL=(psql -h "$POSTGRES_HOSTNAME" -p "$POSTGRES_PORT" -U "$POSTGRES_USER" -v ON_ERROR_STOP=1 -qAt)
as_pg "${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS gw_bench_console" -c "CREATE DATABASE gw_bench_console" >/dev/null
"$BIN/gatewayctl" migrate >/dev/null 2>&1
"$BIN/gatewayctl" merchant add --name "Bench Merchant" >/dev/null
"$BIN/gatewayctl" coin add --chain tron --main-coin-type 195 --token TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t --symbol USDT --decimals 6 >/dev/null
ensure_totp_key "$LOCAL/console-totp.key"
# The TOTP secret as gatewayctl prints it (base32): the database holds it sealed.
SECRET=$(echo 'bench password 123' | "$BIN/gatewayctl" user add bench --role reviewer --level 2 | awk '$1 == "secret" { print $2 }')
[ -n "$SECRET" ] || die "gatewayctl user add printed no TOTP secret"
say "seeding $PENDING pending reviews and $((PENDING * 2)) finished withdrawals"
as_pg "${PSQL[@]}" -d gw_bench_console <<SQL
INSERT INTO gateway.withdrawals (merchant_id, business_id, coin_id, chain, address, amount, call_url, proxypay, state, state_reason, version, updated_at)
SELECT (SELECT min(id) FROM gateway.merchants), 'bench-' || g, (SELECT min(id) FROM gateway.coins), 'tron', 'T' || substr(md5((g % 3000)::text), 1, 33), g::numeric * 1000000, 'http://127.0.0.1:9/cb', false,
       CASE WHEN g <= $PENDING THEN 'pending_review' ELSE 'confirmed' END, 'bench', 2, now() - (g % 7200) * interval '1 second'
FROM generate_series(1, $PENDING * 3) g;
INSERT INTO gateway.withdrawal_reviews (withdrawal_id, level, level_name, sla, deadline, approvals_needed)
SELECT id, 1 + (id % 2)::int, CASE WHEN id % 2 = 0 THEN 'ops' ELSE 'finance' END, interval '1 hour',
       now() + ((id * 7919) % 7200 - 600) * interval '1 second', CASE WHEN id % 10 = 0 THEN 2 ELSE 1 END
FROM gateway.withdrawals;
INSERT INTO gateway.withdrawal_decisions (withdrawal_id, decision, rule, actor, detail)
SELECT id, 'review', CASE WHEN id % 3 = 0 THEN 'daily_limit_per_merchant' ELSE 'new_destination' END, 'review-worker', 'bench' FROM gateway.withdrawals;
ANALYZE;
SQL
PORT=$(free_port 18090)
CONFIG="$LOCAL/bench-console.yml"
mkdir -p "$LOCAL"
sed -e "s/^  listen: 127.0.0.1:8090/  listen: 127.0.0.1:$PORT/" -e "s|^  totp_key_file: .*|  totp_key_file: $LOCAL/console-totp.key|" "$ROOT/workers.yml" > "$CONFIG"
"$BIN/gateway-console" --config "$CONFIG" > "$LOCAL/bench-console.log" 2>&1 &
CONSOLE=$!
trap 'kill $CONSOLE 2>/dev/null || true; [ -n "${KEEP_BENCH_DB:-}" ] || as_pg "${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS gw_bench_console WITH (FORCE)" >/dev/null 2>&1 || true' EXIT
for _ in $(seq 1 100); do grep -q ready "$LOCAL/bench-console.log" && break; sleep 0.1; done
say "gateway-console ($BUILD) on 127.0.0.1:$PORT: $REQUESTS GETs of each page"
python3 - "$PORT" "$SECRET" "$REQUESTS" <<'PY'
import base64, hashlib, hmac, http.client, struct, sys, time, urllib.parse
port, b32, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
secret = base64.b32decode(b32 + "=" * (-len(b32) % 8))
def totp(t):
    mac = hmac.new(secret, struct.pack(">Q", int(t // 30)), hashlib.sha1).digest()
    o = mac[-1] & 15
    return "%06d" % ((struct.unpack(">I", mac[o:o + 4])[0] & 0x7fffffff) % 1000000)
def request(method, path, body=None, cookie=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    h = {"Sec-Fetch-Site": "same-origin"}
    if body is not None: h["Content-Type"] = "application/x-www-form-urlencoded"
    if cookie: h["Cookie"] = cookie
    t = time.perf_counter(); c.request(method, path, body=body, headers=h); r = c.getresponse(); data = r.read()
    return r.status, r.getheader("Set-Cookie"), data, (time.perf_counter() - t) * 1000
status, setcookie, _, _ = request("POST", "/signin", urllib.parse.urlencode({"name": "bench", "password": "bench password 123", "code": totp(time.time())}))
assert status == 303 and setcookie, status
cookie = setcookie.split(";")[0]
for label, path in [("queue (needs me)", "/queue"), ("queue (all waiting, L2 filter)", "/queue?tab=pending&level=2&min=100"),
                    ("decision page", "/withdrawals/%d" % 4242), ("refresh: tab counts", "/queue/tabs?tab=needs_me"),
                    ("refresh: hot wallet header", "/hotbar")]:
    times = []
    for _ in range(n):
        s, _, data, ms = request("GET", path, cookie=cookie)
        assert s == 200, (path, s)
        times.append(ms)
    times.sort()
    print("%-32s p50 %7.1f ms   p99 %7.1f ms   (%d bytes)" % (label, times[len(times) // 2], times[min(len(times) - 1, int(len(times) * 0.99))], len(data)))
PY
