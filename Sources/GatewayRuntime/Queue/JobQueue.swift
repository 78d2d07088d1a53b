import Foundation
import GatewayCore
import Logging
import PostgresNIO
import Synchronization

/// The queue engine's SQL: enqueue, claim, fenced completion and rescheduling, dead jobs.
/// Every function runs on a connection the caller holds, usually inside its transaction.
public enum JobQueue {
    /// The LISTEN/NOTIFY channel; the payload is the stage name.
    public static let notifyChannel = "gateway_jobs"

    // MARK: Enqueue

    /// Enqueues one job in the caller's transaction.
    @discardableResult
    public static func enqueue(_ job: NewJob, on connection: DatabaseConnection, logger: Logger) async throws -> EnqueueResult {
        try await enqueue([job], on: connection, logger: logger)[0]
    }

    /// Enqueues jobs in one statement in the caller's transaction, and notifies each stage once.
    /// Results are in input order; a job whose unique key is taken by an unfinished job is a
    /// `.duplicate` and changes nothing.
    @discardableResult
    public static func enqueue(_ jobs: [NewJob], on connection: DatabaseConnection, logger: Logger) async throws -> [EnqueueResult] {
        guard !jobs.isEmpty else { return [] }
        var stages: [String] = [], kinds: [String] = [], refs: [String] = [], payloads: [String] = []
        var priorities: [Int16] = [], epochs: [Double] = [], delays: [Double] = [], maxAttempts: [Int32] = [], keys: [String] = []
        for job in jobs {
            stages.append(job.stage)
            kinds.append(job.kind)
            refs.append(job.ref ?? "")
            payloads.append(job.payload)
            priorities.append(job.priority)
            switch job.runAt {
            case .now: epochs.append(.nan); delays.append(0)
            case .after(let d): epochs.append(.nan); delays.append(seconds(d))
            case .at(let date): epochs.append(date.timeIntervalSince1970); delays.append(0)
            }
            maxAttempts.append(Int32(clamping: job.maxAttempts ?? 0))
            keys.append(job.uniqueKey ?? "")
        }
        // unnest keeps input order, and INSERT … SELECT inserts (and returns) in that order.
        let rows = try await connection.query("""
            INSERT INTO gateway.jobs (stage, kind, ref, payload, priority, run_at, max_attempts, unique_key)
            SELECT s, k, nullif(r, ''), p::jsonb, pr,
                   CASE WHEN e = 'NaN'::float8 THEN now() + make_interval(secs => d) ELSE to_timestamp(e) END,
                   nullif(m, 0), nullif(u, '')
            FROM unnest(\(stages)::text[], \(kinds)::text[], \(refs)::text[], \(payloads)::text[], \(priorities)::int2[],
                        \(epochs)::float8[], \(delays)::float8[], \(maxAttempts)::int4[], \(keys)::text[])
                 AS t(s, k, r, p, pr, e, d, m, u)
            ON CONFLICT (stage, unique_key) WHERE unique_key IS NOT NULL DO NOTHING
            RETURNING id, stage, coalesce(unique_key, '')
            """, logger: logger)
        var plain: [Int64] = []
        var keyed: [String: Int64] = [:]
        for try await (id, stage, key) in rows.decode((Int64, String, String).self) {
            if key.isEmpty { plain.append(id) } else { keyed[stage + "\u{0}" + key] = id }
        }
        var results: [EnqueueResult] = []
        var next = plain.makeIterator()
        var duplicates: [Int] = []
        var claimedKeys = Set<String>()
        for (i, job) in jobs.enumerated() {
            if let key = job.uniqueKey, !key.isEmpty {
                let k = job.stage + "\u{0}" + key
                if let id = keyed[k], claimedKeys.insert(k).inserted {
                    results.append(.enqueued(id: id))
                } else {
                    results.append(.duplicate(existingID: nil))
                    duplicates.append(i)
                }
            } else {
                guard let id = next.next() else { throw QueueError("enqueue returned fewer rows than it inserted") }
                results.append(.enqueued(id: id))
            }
        }
        for i in duplicates {
            let job = jobs[i]
            let existing = try await connection.query(
                "SELECT id FROM gateway.jobs WHERE stage = \(job.stage) AND unique_key = \(job.uniqueKey ?? "")", logger: logger)
            var found: Int64?
            for try await id in existing.decode(Int64.self) { found = id }
            results[i] = .duplicate(existingID: found)
        }
        try await wake(Set(zip(jobs, results).filter { !$0.1.isDuplicate }.map(\.0.stage)), on: connection, logger: logger)
        return results
    }

    /// Stages to wake once the surrounding `Database.transaction` has committed.
    @TaskLocal static var pendingWakeups: WakeupCollector?

    /// Wakes the workers of `stages`: one notification per stage per transaction. Inside
    /// `Database.transaction` it is sent right after COMMIT: a NOTIFY inside a transaction holds a
    /// database-wide lock through the commit, which would serialise every enqueuing commit
    /// (measured: ~500 commits/s at 32 connections instead of ~14,000). A lost notification only
    /// costs latency: workers poll too.
    /// For code that inserted jobs with its own SQL: wakes the stages' workers once the surrounding
    /// `Database.transaction` commits (outside one, workers find the jobs by polling).
    public static func enqueued(stages: Set<String>) {
        pendingWakeups?.add(stages)
    }

    static func wake(_ stages: Set<String>, on connection: DatabaseConnection, logger: Logger) async throws {
        guard !stages.isEmpty else { return }
        if let collector = pendingWakeups {
            collector.add(stages)
            return
        }
        for stage in stages.sorted() {
            try await connection.query("SELECT pg_notify(\(notifyChannel), \(stage))", logger: logger)
        }
    }

    // MARK: Claim

    /// Claims up to `limit` due jobs of `stage` (ready ones, and running ones whose lease expired)
    /// with `FOR UPDATE SKIP LOCKED`, leasing them to `worker` for `lease`.
    /// Returns the jobs and, per job, how long it had been due.
    /// `token` names this claim (every job it takes holds it as its lease token): after a claim whose commit's outcome
    /// was unknown, `claimed(token:)` reads back what it took.
    public static func claim(stage: String, limit: Int, worker: String, lease: Duration, token: UUID = UUID(), on connection: DatabaseConnection,
                             logger: Logger) async throws -> [(job: ClaimedJob, waited: Double)] {
        guard limit > 0 else { return [] }
        let rows = try await connection.query("""
            WITH c AS (
                SELECT id, run_at AS due FROM gateway.jobs
                WHERE stage = \(stage) AND state <> 'dead' AND run_at <= now()
                ORDER BY priority, run_at
                LIMIT \(Int32(limit))
                FOR UPDATE SKIP LOCKED)
            UPDATE gateway.jobs j
            SET state = 'running', attempt = j.attempt + 1, lease_token = \(token), lease_owner = \(worker),
                claimed_at = now(), run_at = now() + make_interval(secs => \(seconds(lease)))
            FROM c WHERE j.id = c.id
            RETURNING j.id, j.kind, coalesce(j.ref, ''), j.payload::text, j.attempt, coalesce(j.max_attempts, 0), j.lease_token,
                      j.created_at, extract(epoch FROM now() - c.due)::float8
            """, logger: logger)
        var claimed: [(job: ClaimedJob, waited: Double)] = []
        for try await (id, kind, ref, payload, attempt, maxAttempts, token, created, waited) in rows.decode(
            (Int64, String, String, String, Int32, Int32, UUID, Date, Double).self)
        {
            let job = ClaimedJob(id: id, stage: stage, kind: kind, ref: ref.isEmpty ? nil : ref, payload: payload, attempt: Int(attempt),
                                 maxAttempts: maxAttempts == 0 ? nil : Int(maxAttempts), leaseToken: token, createdAt: created)
            claimed.append((job, max(0, waited)))
        }
        return claimed
    }

    /// Completes jobs and claims new ones in one prepared statement (one round trip for a busy
    /// worker's usual cycle). Same semantics as `complete` followed by `claim`: the claim cannot
    /// pick the completed jobs (they run under our own lease, so they are not due).
    public static func completeAndClaim(_ jobs: [(id: Int64, token: UUID)], stage: String, worker: String, limit: Int, lease: Duration,
                                        claimToken: UUID = UUID(), on connection: DatabaseConnection, logger: Logger) async throws
        -> (completed: Set<Int64>, claimed: [(job: ClaimedJob, waited: Double)])
    {
        let statement = CompleteAndClaimStatement(ids: jobs.map(\.id), tokens: jobs.map(\.token), stage: stage, worker: worker,
                                                  limit: Int32(limit), leaseSeconds: seconds(lease), claimToken: claimToken)
        var completed = Set<Int64>()
        var claimed: [(job: ClaimedJob, waited: Double)] = []
        let token = statement.claimToken
        for try await (id, kind, ref, payload, attempt, maxAttempts, created, waited, done) in try await connection.execute(statement, logger: logger) {
            guard let created else {
                completed.formUnion(done ?? [])
                continue
            }
            claimed.append((ClaimedJob(id: id, stage: stage, kind: kind, ref: ref.isEmpty ? nil : ref, payload: payload, attempt: Int(attempt),
                                       maxAttempts: maxAttempts == 0 ? nil : Int(maxAttempts), leaseToken: token, createdAt: created),
                            max(0, waited)))
        }
        return (completed, claimed)
    }

    /// The jobs a claim named `token` holds (state running, lease token `token`): what a claim whose commit's outcome
    /// was unknown took, read back by its own key instead of waiting for the leases to run out.
    public static func claimed(token: UUID, stage: String, on connection: DatabaseConnection, logger: Logger) async throws
        -> [(job: ClaimedJob, waited: Double)]
    {
        var out: [(job: ClaimedJob, waited: Double)] = []
        for try await (id, kind, ref, payload, attempt, maxAttempts, created) in try await connection.query("""
            SELECT id, kind, coalesce(ref, ''), payload::text, attempt, coalesce(max_attempts, 0), created_at FROM gateway.jobs
            WHERE lease_token = \(token) AND stage = \(stage) AND state = 'running'
            """, logger: logger).decode((Int64, String, String, String, Int32, Int32, Date).self) {
            out.append((ClaimedJob(id: id, stage: stage, kind: kind, ref: ref.isEmpty ? nil : ref, payload: payload, attempt: Int(attempt),
                                   maxAttempts: maxAttempts == 0 ? nil : Int(maxAttempts), leaseToken: token, createdAt: created), 0))
        }
        return out
    }

    struct CompleteAndClaimStatement: PostgresPreparedStatement {
        static let sql = """
            WITH done AS (
                DELETE FROM gateway.jobs j
                USING unnest($1::int8[], $2::uuid[]) AS f(id, token)
                WHERE j.id = f.id AND j.lease_token = f.token
                RETURNING j.id),
            c AS (
                SELECT id, run_at AS due FROM gateway.jobs
                WHERE stage = $3 AND state <> 'dead' AND run_at <= now()
                ORDER BY priority, run_at
                LIMIT $7
                FOR UPDATE SKIP LOCKED),
            claimed AS (
                UPDATE gateway.jobs j
                SET state = 'running', attempt = j.attempt + 1, lease_token = $6, lease_owner = $4,
                    claimed_at = now(), run_at = now() + make_interval(secs => $5)
                FROM c WHERE j.id = c.id
                RETURNING j.id, j.kind, coalesce(j.ref, '') AS ref, j.payload::text AS payload, j.attempt,
                          coalesce(j.max_attempts, 0) AS max_attempts, j.created_at,
                          extract(epoch FROM now() - c.due)::float8 AS waited)
            SELECT id, kind, ref, payload, attempt, max_attempts, created_at, waited, NULL::int8[] FROM claimed
            UNION ALL
            SELECT 0, '', '', '', 0, 0, NULL, 0, array_agg(id) FROM done
            """
        /// Claimed jobs, then one row holding the completed ids.
        typealias Row = (Int64, String, String, String, Int32, Int32, Date?, Double, [Int64]?)

        var ids: [Int64]
        var tokens: [UUID]
        var stage: String
        var worker: String
        var limit: Int32
        var leaseSeconds: Double
        /// One lease token for the whole claim: it names this claim, which is what the fence needs.
        var claimToken = UUID()

        func makeBindings() throws -> PostgresBindings {
            var b = PostgresBindings(capacity: 7)
            b.append(ids)
            b.append(tokens)
            b.append(stage)
            b.append(worker)
            b.append(leaseSeconds)
            b.append(claimToken)
            b.append(limit)
            return b
        }

        func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
    }

    // MARK: Fenced outcomes
    //
    // A job holds a lease token exactly while it is `running`: claiming sets one, and every way out of
    // `running` (complete, reschedule, kill) clears it or deletes the row. So the fenced statements match
    // on id and token alone. They used to add `state = 'running'`, and after an ANALYZE that saw no running
    // jobs the planner took that for "one row": it seq-scanned the jobs table and re-ran the unnest for each
    // row (a 216-job completion compared 566,784 pairs, building a whole-row value for each), about a fifth
    // of PostgreSQL's CPU in the payout benchmark.

    /// Deletes completed jobs still leased with the given tokens; returns the ids it completed.
    /// Counts them in `gateway.job_stats`.
    public static func complete(_ jobs: [(id: Int64, token: UUID)], on connection: DatabaseConnection,
                                logger: Logger) async throws -> Set<Int64> {
        guard !jobs.isEmpty else { return [] }
        let rows = try await connection.query("""
            DELETE FROM gateway.jobs j
            USING unnest(\(jobs.map(\.id))::int8[], \(jobs.map(\.token))::uuid[]) AS f(id, token)
            WHERE j.id = f.id AND j.lease_token = f.token
            RETURNING j.id
            """, logger: logger)
        var done = Set<Int64>()
        for try await id in rows.decode(Int64.self) { done.insert(id) }
        return done
    }

    /// One rescheduling: a retry (spends the attempt) or a snooze/release (refunds it).
    public struct Reschedule: Sendable {
        public var id: Int64
        public var token: UUID
        public var delay: Duration
        /// nil keeps the previous error text.
        public var error: String?
        /// True for snooze and release: the attempt is given back.
        public var refund: Bool

        public init(id: Int64, token: UUID, delay: Duration, error: String?, refund: Bool) {
            self.id = id
            self.token = token
            self.delay = delay
            self.error = error
            self.refund = refund
        }
    }

    /// Puts leased jobs back to `ready` after their delays; returns the ids it rescheduled.
    public static func reschedule(_ items: [Reschedule], on connection: DatabaseConnection,
                                  logger: Logger) async throws -> Set<Int64> {
        guard !items.isEmpty else { return [] }
        let rows = try await connection.query("""
            WITH r AS (
                UPDATE gateway.jobs j
                SET state = 'ready', run_at = now() + make_interval(secs => f.delay), lease_token = NULL, lease_owner = NULL,
                    attempt = j.attempt - f.refund, last_error = coalesce(nullif(f.err, ''), j.last_error)
                FROM unnest(\(items.map(\.id))::int8[], \(items.map(\.token))::uuid[], \(items.map { seconds($0.delay) })::float8[],
                            \(items.map { $0.error ?? "" })::text[], \(items.map { Int32($0.refund ? 1 : 0) })::int4[])
                     AS f(id, token, delay, err, refund)
                WHERE j.id = f.id AND j.lease_token = f.token
                RETURNING j.id)
            SELECT id FROM r
            """, logger: logger)
        var done = Set<Int64>()
        for try await id in rows.decode(Int64.self) { done.insert(id) }
        return done
    }

    /// Marks leased jobs dead with their errors; returns the ids it marked.
    public static func kill(_ items: [(id: Int64, token: UUID, error: String)], on connection: DatabaseConnection, logger: Logger) async throws -> Set<Int64> {
        guard !items.isEmpty else { return [] }
        let rows = try await connection.query("""
            WITH d AS (
                UPDATE gateway.jobs j
                SET state = 'dead', died_at = now(), last_error = f.err, lease_token = NULL, lease_owner = NULL
                FROM unnest(\(items.map(\.id))::int8[], \(items.map(\.token))::uuid[], \(items.map(\.error))::text[]) AS f(id, token, err)
                WHERE j.id = f.id AND j.lease_token = f.token
                RETURNING j.id)
            SELECT id FROM d
            """, logger: logger)
        var done = Set<Int64>()
        for try await id in rows.decode(Int64.self) { done.insert(id) }
        return done
    }

    /// Adds a worker's finished-job counts to the per-minute counters of the monitor views.
    public static func recordStats(stage: String, worker: String, completed: Int, retried: Int, dead: Int, on connection: DatabaseConnection,
                                   logger: Logger) async throws {
        guard completed + retried + dead > 0 else { return }
        try await connection.query("""
            INSERT INTO gateway.job_stats (stage, minute, worker, completed, retried, dead)
            VALUES (\(stage), date_trunc('minute', now()), \(worker), \(Int64(completed)), \(Int64(retried)), \(Int64(dead)))
            ON CONFLICT (stage, minute, worker) DO UPDATE SET completed = gateway.job_stats.completed + excluded.completed,
                retried = gateway.job_stats.retried + excluded.retried, dead = gateway.job_stats.dead + excluded.dead
            """, logger: logger)
    }

    /// Extends the leases of jobs still held with these tokens; returns the ids still ours.
    public static func heartbeat(_ jobs: [(id: Int64, token: UUID)], lease: Duration, on connection: DatabaseConnection,
                                 logger: Logger) async throws -> Set<Int64> {
        guard !jobs.isEmpty else { return [] }
        let rows = try await connection.query("""
            UPDATE gateway.jobs j SET run_at = now() + make_interval(secs => \(seconds(lease)))
            FROM unnest(\(jobs.map(\.id))::int8[], \(jobs.map(\.token))::uuid[]) AS f(id, token)
            WHERE j.id = f.id AND j.lease_token = f.token
            RETURNING j.id
            """, logger: logger)
        var held = Set<Int64>()
        for try await id in rows.decode(Int64.self) { held.insert(id) }
        return held
    }

    /// Of jobs whose fenced outcome matched nothing, those that still exist under another lease
    /// or state (a stale outcome, rejected). Missing ones already finished.
    public static func stillPresent(_ ids: [Int64], on connection: DatabaseConnection, logger: Logger) async throws -> [(id: Int64, state: String, owner: String)] {
        guard !ids.isEmpty else { return [] }
        let rows = try await connection.query(
            "SELECT id, state, coalesce(lease_owner, '') FROM gateway.jobs WHERE id = ANY(\(ids)::int8[])", logger: logger)
        var present: [(Int64, String, String)] = []
        for try await row in rows.decode((Int64, String, String).self) { present.append(row) }
        return present
    }

    // MARK: Dead jobs

    /// A dead job as the operator sees it.
    public struct DeadJob: Sendable {
        public var id: Int64
        public var stage: String
        public var kind: String
        public var ref: String?
        public var attempt: Int
        public var diedAt: Date
        public var lastError: String
    }

    /// Dead jobs, newest first, optionally of one stage.
    public static func deadJobs(stage: String?, limit: Int, on connection: DatabaseConnection, logger: Logger) async throws -> [DeadJob] {
        let rows = try await connection.query("""
            SELECT id, stage, kind, coalesce(ref, ''), attempt, died_at, coalesce(last_error, '')
            FROM gateway.jobs WHERE state = 'dead' AND (\(stage ?? "")::text = '' OR stage = \(stage ?? ""))
            ORDER BY died_at DESC LIMIT \(Int32(clamping: limit))
            """, logger: logger)
        var result: [DeadJob] = []
        for try await (id, stage, kind, ref, attempt, died, error) in rows.decode((Int64, String, String, String, Int32, Date, String).self) {
            result.append(DeadJob(id: id, stage: stage, kind: kind, ref: ref.isEmpty ? nil : ref, attempt: Int(attempt), diedAt: died, lastError: error))
        }
        return result
    }

    /// Puts dead jobs back (one by id, or all of a stage) with a fresh attempt count; returns their ids.
    public static func retryDead(id: Int64?, stage: String?, on connection: DatabaseConnection, logger: Logger) async throws -> [Int64] {
        let rows = try await connection.query("""
            UPDATE gateway.jobs SET state = 'ready', attempt = 0, run_at = now(), died_at = NULL
            WHERE state = 'dead' AND (\(id ?? 0)::int8 = 0 OR id = \(id ?? 0)) AND (\(stage ?? "")::text = '' OR stage = \(stage ?? ""))
            RETURNING id, stage
            """, logger: logger)
        var ids: [Int64] = []
        var stages = Set<String>()
        for try await (id, stage) in rows.decode((Int64, String).self) {
            ids.append(id)
            stages.insert(stage)
        }
        try await wake(stages, on: connection, logger: logger)
        return ids.sorted()
    }

    /// Deletes per-minute counters older than `retention` (a few rows per worker per minute).
    public static func pruneStats(olderThan retention: Duration, on connection: DatabaseConnection, logger: Logger) async throws {
        try await connection.query(
            "DELETE FROM gateway.job_stats WHERE minute < now() - make_interval(secs => \(seconds(retention)))", logger: logger)
    }

    static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }
}

/// An inconsistency inside the queue engine.
public struct QueueError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Stages whose workers a transaction wants woken after it commits.
final class WakeupCollector: Sendable {
    private let stages = Mutex<Set<String>>([])

    func add(_ more: Set<String>) { stages.withLock { $0.formUnion(more) } }

    func take() -> Set<String> { stages.withLock { s in defer { s.removeAll() }; return s } }
}
