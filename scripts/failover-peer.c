/*
 * The peer the failover chaos compares the gateway with: libpq itself, writing through the same multi-host URL.
 * It inserts one row every 10 ms (autocommit, the simple protocol: libpq waits for ReadyForQuery, so an
 * acknowledged insert is committed), reconnects on the next tick after any error (libpq's own
 * target_session_attrs=read-write search over the hosts), and prints each acknowledged insert as
 * "<epoch ms> <id>" to the output file. gatewayctl chaos failover --peer-acks reads that file: the peer's write gap
 * per event beside the gateway's, and whether every acknowledged id is on the final primary.
 *
 * Built by scripts/chaos-failover.sh: cc -O2 -o failover-peer failover-peer.c -I$(pg_config --includedir) -lpq
 * Usage: failover-peer CONNINFO OUTFILE   (stops on SIGTERM or SIGINT)
 */
#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static volatile sig_atomic_t stopping = 0;
static void stop(int sig) { (void)sig; stopping = 1; }

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void tick(void) {
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s CONNINFO OUTFILE\n", argv[0]);
        return 2;
    }
    FILE *out = fopen(argv[2], "w");
    if (!out) {
        perror(argv[2]);
        return 2;
    }
    signal(SIGTERM, stop);
    signal(SIGINT, stop);
    PGconn *conn = NULL;
    long long acked = 0, failed = 0, connects = 0;
    int created = 0;
    while (!stopping) {
        if (!conn) {
            conn = PQconnectdb(argv[1]);
            if (PQstatus(conn) != CONNECTION_OK) {
                PQfinish(conn);
                conn = NULL;
                failed++;
                tick();
                continue;
            }
            connects++;
        }
        if (!created) {
            PGresult *r = PQexec(conn, "CREATE TABLE IF NOT EXISTS public.failover_peer (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())");
            int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
            PQclear(r);
            if (!ok) {
                PQfinish(conn);
                conn = NULL;
                tick();
                continue;
            }
            created = 1;
        }
        PGresult *r = PQexec(conn, "INSERT INTO public.failover_peer DEFAULT VALUES RETURNING id");
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
            fprintf(out, "%lld %s\n", now_ms(), PQgetvalue(r, 0, 0));
            fflush(out);
            acked++;
        } else {
            failed++;
            PQfinish(conn);
            conn = NULL;
        }
        PQclear(r);
        tick();
    }
    if (conn) PQfinish(conn);
    fclose(out);
    fprintf(stderr, "failover-peer: %lld inserts acknowledged, %lld failed, %lld connections\n", acked, failed, connects);
    return 0;
}
