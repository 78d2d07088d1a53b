import GatewayCore
import Logging
import NIOCore
import PostgresNIO
import ServiceLifecycle
import Synchronization
import _ConnectionPoolModule

/// A commit whose outcome cannot be known from this side: the connection failed while COMMIT was
/// in flight, so the transaction may or may not have committed. Resolve by re-reading, never by
/// assuming either way (postgres-failover.md §6).
public struct CommitOutcomeUnknown: Error, CustomStringConvertible {
    public let underlying: any Error

    public init(underlying: any Error) {
        self.underlying = underlying
    }

    public var description: String { "the commit's outcome is unknown (connection lost during COMMIT): \(DatabaseErrors.describe(underlying))" }
}

/// Helpers to classify and describe PostgreSQL errors without leaking data values.
public enum DatabaseErrors {
    /// The SQLSTATE of a server error, if any.
    public static func sqlState(_ error: any Error) -> String? {
        (error as? PSQLError)?.serverInfo?[.sqlState]
    }

    /// The constraint a server error names (a unique violation's index, a failed CHECK), if any.
    public static func constraintName(_ error: any Error) -> String? {
        (error as? PSQLError)?.serverInfo?[.constraintName]
    }

    /// "23505: duplicate key value violates unique constraint …" or the error's kind; never the DETAIL
    /// (which may carry values).
    public static func describe(_ error: any Error) -> String {
        if let e = error as? PSQLError {
            if let info = e.serverInfo {
                return "\(info[.sqlState] ?? "?????"): \(info[.message] ?? "server error")"
            }
            var text = "\(e.code)"
            if let u = e.underlying { text += " (\(u))" }
            return text
        }
        return "\(error)"
    }

    /// True for errors after which a retry on a (possibly new) primary may succeed: lost connections,
    /// a read-only node (25006), shutdowns (57P), serialization failures and deadlocks.
    public static func isTransient(_ error: any Error) -> Bool {
        if isFailover(error) { return true }
        if let e = error as? PSQLError, e.code == .server {
            let state = e.serverInfo?[.sqlState] ?? ""
            return state == "40001" || state == "40P01"
        }
        return false
    }

    /// True for errors that say the database could not be written just now — no writable node, a read-only node,
    /// a node shutting down, a lost connection, a closed pool, a commit whose outcome is unknown — rather than
    /// anything about the work itself. A stage tries such work again later without spending an attempt: while a
    /// failover lasts, no job may go dead for it.
    public static func isFailover(_ error: any Error) -> Bool {
        if error is NoWritablePrimary || error is CommitOutcomeUnknown || error is ConnectionPoolError { return true }
        return primaryTrouble(error) != .none
    }

    /// What an error says about the node it came from.
    enum PrimaryTrouble: Equatable {
        case none
        /// 25006: it no longer accepts writes (a demoted primary, a promoted node not yet open for writes).
        case readOnly
        /// A shutdown (57P), a connection failure (08) or a lost connection: it may be gone.
        case maybeGone
    }

    static func primaryTrouble(_ error: any Error) -> PrimaryTrouble {
        if let e = error as? CommitOutcomeUnknown { return primaryTrouble(e.underlying) == .none ? .maybeGone : primaryTrouble(e.underlying) }
        if let e = error as? ConnectionPoolError, e == .connectionCreationCircuitBreakerTripped { return .maybeGone }
        if error is ConnectionClosed { return .maybeGone }
        guard let e = error as? PSQLError else { return .none }
        switch e.code {
        case .server:
            let state = e.serverInfo?[.sqlState] ?? ""
            if state == "25006" { return .readOnly }
            return state.hasPrefix("57P") || state.hasPrefix("08") ? .maybeGone : .none
        case .serverClosedConnection, .clientClosedConnection, .connectionError, .uncleanShutdown:
            return .maybeGone
        default:
            return .none
        }
    }

    /// True when a failed COMMIT leaves the outcome unknown (connection-level, or 57Pxx/08xxx).
    static func commitOutcomeIsUnknown(_ error: any Error) -> Bool {
        guard let e = error as? PSQLError else { return true }
        if e.code == .server {
            let state = e.serverInfo?[.sqlState] ?? ""
            return state.hasPrefix("57") || state.hasPrefix("08")
        }
        return true
    }
}

/// The one handle through which every process reaches PostgreSQL — a single server, or the node of a highly
/// available formation that accepts writes (`PrimaryRouter`: found by `SHOW transaction_read_only`, checked every
/// `probe_interval`, followed through switchovers and crashes). Run it as the first service of the process.
///
/// Writes go through `transaction`, which acknowledges only a successful `COMMIT` (postgres-nio
/// reports an autocommit statement as done before it commits: DESIGN.md §2). Reads may use `query`.
/// While no node accepts writes every call fails at once with `NoWritablePrimary` (`DatabaseErrors.isFailover`).
public final class Database: Service, Sendable {
    public let config: DatabaseConfig
    let logger: Logger
    let router: PrimaryRouter
    let notifier: WakeupNotifier

    /// - Parameter quietPool: log the pool's own background messages only from error up (for
    ///   short-lived commands, which lease a connection while the pool is still starting).
    public init(config: DatabaseConfig, logger: Logger, quietPool: Bool = false) {
        var background = logger
        if quietPool { background.logLevel = .error }
        self.config = config
        self.logger = logger
        self.router = PrimaryRouter(config: config, logger: background)
        self.notifier = WakeupNotifier(router: router, logger: logger)
    }

    /// Runs the connection pool of the writable node (and the search for it) until graceful shutdown.
    public func run() async throws {
        await router.run()
    }

    /// What `/healthz` reports: the node written to, or how long there has been none.
    public var health: (ok: Bool, text: String) { router.health }

    /// Runs `body` in a transaction and returns only after `COMMIT` succeeded.
    ///
    /// Errors: the body's own error when it threw (rolled back); the server error when COMMIT was
    /// refused (rolled back); `CommitOutcomeUnknown` when the connection failed during COMMIT;
    /// `NoWritablePrimary` when no node accepts writes (nothing was sent).
    public func transaction<Result: Sendable>(
        file: String = #fileID, line: Int = #line,
        _ body: (DatabaseConnection) async throws -> sending Result
    ) async throws -> Result {
        let pool = try await router.pool()
        let wakeups = WakeupCollector()
        let calls = router.inFlight
        let call = calls.begin(pool, "transaction at \(file):\(line)")
        defer { calls.end(call) }
        do {
            let result = try await JobQueue.$pendingWakeups.withValue(wakeups) {
                // postgres-nio's withTransaction, with every statement sent through DatabaseConnection.
                try await pool.client.withConnection { raw in
                    let c = DatabaseConnection(raw)
                    try await c.query("BEGIN", logger: logger, file: file, line: line)
                    calls.phase(call, .running)
                    let result: Result
                    do {
                        result = try await body(c)
                    } catch {
                        // On a closed connection DatabaseConnection does not send it (the server has ended the
                        // transaction itself).
                        _ = try? await c.query("ROLLBACK", logger: logger, file: file, line: line)
                        throw error
                    }
                    calls.phase(call, .committing)
                    do {
                        try await c.query("COMMIT", logger: logger, file: file, line: line)
                    } catch {
                        if DatabaseErrors.commitOutcomeIsUnknown(error) { throw CommitOutcomeUnknown(underlying: error) }
                        throw error
                    }
                    return result
                }
            }
            let stages = wakeups.take()
            if !stages.isEmpty { notifier.wake(stages) }
            return result
        } catch {
            router.report(error, from: pool)
            throw error
        }
    }

    /// A read outside a transaction. Never use it for writes.
    ///
    /// Sent through postgres-nio's pool (the lease ends when the rows have been read), not `DatabaseConnection`: a
    /// connection that closes in the instant between its lease and the statement's write would leave this call waiting
    /// (`DatabaseConnection` says why). The watch over calls in flight logs such a call; callers bound it by their deadlines.
    @discardableResult
    public func query(_ query: PostgresQuery, file: String = #fileID, line: Int = #line) async throws -> PostgresRowSequence {
        let pool = try await router.pool()
        let call = router.inFlight.begin(pool, "query at \(file):\(line)")
        defer { router.inFlight.end(call) }
        do {
            return try await pool.client.query(query, logger: logger, file: file, line: line)
        } catch {
            router.report(error, from: pool)
            throw error
        }
    }

    /// One write statement in its own (implicit) transaction: one round trip instead of BEGIN,
    /// statement, COMMIT. Only for a write that is whole by itself and enqueues no jobs (a job
    /// enqueued here would not wake the workers); everything else goes through `transaction`.
    /// Not for a write whose success the caller acts on (completing a job, answering a client):
    /// postgres-nio reports the statement done at CommandComplete, before its implicit commit, so a
    /// crash of the server in between loses a write the caller saw succeed. `transaction` returns
    /// only after COMMIT's answer.
    public func execute(_ query: PostgresQuery, file: String = #fileID, line: Int = #line) async throws {
        let pool = try await router.pool()
        let call = router.inFlight.begin(pool, "statement at \(file):\(line)")
        defer { router.inFlight.end(call) }
        do {
            try await pool.client.withConnection { raw in
                for try await _ in try await DatabaseConnection(raw).query(query, logger: logger, file: file, line: line) {}
            }
        } catch {
            router.report(error, from: pool)
            throw error
        }
    }

    /// Leases one connection for `body` (LISTEN, or several reads that must see one session). On the writable node:
    /// after a failover the next call gets a connection to the new one (a LISTEN subscribes again there).
    public func withConnection<Result: Sendable>(_ body: (DatabaseConnection) async throws -> sending Result) async throws -> Result {
        let pool = try await router.pool()
        let calls = router.inFlight
        let call = calls.begin(pool, "connection")
        defer { calls.end(call) }
        do {
            return try await pool.client.withConnection { c in
                // Only the wait for the connection is watched: a leased connection may be held for long (LISTEN).
                calls.end(call)
                return try await body(DatabaseConnection(c))
            }
        } catch {
            router.report(error, from: pool)
            throw error
        }
    }
}

/// Sends the queue's wake-up notifications for committed transactions, coalesced: at most one
/// `pg_notify` per stage in flight, and the committers never wait for it.
///
/// A NOTIFY is itself a transaction that takes a database-wide lock and flushes its commit record,
/// so one per committed enqueue serialises every enqueuing request behind a disk flush (measured:
/// ~680 withdraw requests/s at 32 connections). Coalesced, a burst of commits costs a few
/// notifications. A lost or late notification only costs latency: workers also poll.
final class WakeupNotifier: Sendable {
    let router: PrimaryRouter
    let logger: Logger
    private let state = Mutex<(dirty: Set<String>, sending: Bool)>(([], false))

    init(router: PrimaryRouter, logger: Logger) {
        self.router = router
        self.logger = logger
    }

    func wake(_ stages: Set<String>) {
        let start = state.withLock { s -> Bool in
            s.dirty.formUnion(stages)
            if s.sending { return false }
            s.sending = true
            return true
        }
        if start { Task { await self.send() } }
    }

    private func send() async {
        while true {
            let stages = state.withLock { s -> Set<String> in
                let d = s.dirty
                s.dirty.removeAll()
                if d.isEmpty { s.sending = false }
                return d
            }
            if stages.isEmpty { return }
            for stage in stages.sorted() {
                do {
                    try await router.pool().client.query("SELECT pg_notify(\(JobQueue.notifyChannel), \(stage))", logger: logger)
                } catch {
                    logger.debug("wake-up notification not sent", metadata: ["stage": "\(stage)", "error": "\(DatabaseErrors.describe(error))"])
                }
            }
        }
    }
}
