import Foundation
import GatewayCore
import Logging
import PostgresNIO

/// The per-minute history of values that have none of their own (`gateway.pipeline_samples`): the
/// age of each stage's oldest ready job and each chain's scanner lag, for the console's charts.
///
/// Written by processes that run anyway — queue workers, the chain scanner holding a chain's lease —
/// so the history exists whether or not a console is open. A write keeps the greatest value of the
/// minute: copies of a process on several hosts write the same row and agree in any order.
public enum PipelineSamples {
    /// What a sample measures.
    public enum Kind: String, Sendable, CaseIterable {
        /// Seconds the oldest ready (due, unclaimed) job of a stage has waited; 0 when none waits.
        case oldestReady = "oldest_ready"
        /// Blocks between a chain's node tip and its scanned height.
        case chainLag = "chain_lag"
    }

    /// How long samples are kept: the charts show the last hour; the rest is slack for late readers.
    public static let retention: Duration = .seconds(2 * 3600)

    /// Records `value` for the current minute (the database's clock), keeping the greater of it and
    /// what the minute already holds. One statement; call it inside a transaction.
    public static func record(_ kind: Kind, key: String, value: Double, on connection: DatabaseConnection, logger: Logger) async throws {
        try await connection.query("""
            INSERT INTO gateway.pipeline_samples (kind, key, minute, value)
            VALUES (\(kind.rawValue), \(key), date_trunc('minute', now()), \(value))
            ON CONFLICT (kind, key, minute) DO UPDATE SET value = greatest(gateway.pipeline_samples.value, excluded.value)
            """, logger: logger)
    }

    /// Records the age of `stage`'s oldest ready job (0 when none is due) for the current minute, with
    /// the same meaning as `monitor.queue.oldest_ready_age`: `ready` and due, not a running job whose
    /// lease expired. One statement: for each priority present (one, usually) the claim index gives the
    /// earliest due job directly, so the cost does not grow with the backlog.
    public static func recordOldestReady(stage: String, on connection: DatabaseConnection, logger: Logger) async throws {
        try await connection.query("""
            WITH RECURSIVE p(priority) AS (
                SELECT min(priority) FROM gateway.jobs WHERE stage = \(stage) AND state <> 'dead'
                UNION ALL
                SELECT (SELECT min(j.priority) FROM gateway.jobs j WHERE j.stage = \(stage) AND j.state <> 'dead' AND j.priority > p.priority)
                FROM p WHERE p.priority IS NOT NULL),
            oldest AS (
                SELECT min(o.run_at) AS run_at FROM p CROSS JOIN LATERAL (
                    SELECT j.run_at FROM gateway.jobs j
                    WHERE j.stage = \(stage) AND j.state <> 'dead' AND j.priority = p.priority AND j.run_at <= now() AND j.state = 'ready'
                    ORDER BY j.run_at LIMIT 1) o
                WHERE p.priority IS NOT NULL)
            INSERT INTO gateway.pipeline_samples (kind, key, minute, value)
            SELECT \(Kind.oldestReady.rawValue), \(stage), date_trunc('minute', now()),
                   coalesce(greatest(extract(epoch FROM now() - oldest.run_at), 0), 0)::float8
            FROM oldest
            ON CONFLICT (kind, key, minute) DO UPDATE SET value = greatest(gateway.pipeline_samples.value, excluded.value)
            """, logger: logger)
    }

    /// Deletes samples older than `retention`.
    public static func prune(olderThan retention: Duration = PipelineSamples.retention, on connection: DatabaseConnection, logger: Logger) async throws {
        try await connection.query(
            "DELETE FROM gateway.pipeline_samples WHERE minute < now() - make_interval(secs => \(retention.inSeconds))", logger: logger)
    }
}

/// Decides when a process writes its next sample: once in each minute of its clock, and again within
/// a minute when the value grew (the row keeps the minute's greatest). A restart writes at once.
public struct SampleSchedule: Sendable {
    private var minute: Int64?
    private var greatest: Double = 0

    /// A schedule that has written nothing yet.
    public init() {}

    /// Whether `value`, seen at `now`, should be written; if so, it counts as written.
    public mutating func take(_ value: Double = 0, at now: Date = Date()) -> Bool {
        let m = Int64((now.timeIntervalSince1970 / 60).rounded(.down))
        guard m != minute || value > greatest else { return false }
        if m != minute { greatest = value } else { greatest = max(greatest, value) }
        minute = m
        return true
    }

    /// Forgets the last write (it failed): the next call writes.
    public mutating func reset() { minute = nil }
}
