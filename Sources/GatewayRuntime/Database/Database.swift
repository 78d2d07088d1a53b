import GatewayCore
import Logging
import NIOCore
import PostgresNIO
import Synchronization

/// A commit whose outcome cannot be known from this side: the connection failed while COMMIT was
/// in flight, so the transaction may or may not have committed. Resolve by re-reading, never by
/// assuming either way (postgres-failover.md §6).
public struct CommitOutcomeUnknown: Error, CustomStringConvertible {
    public let underlying: any Error
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
        if let e = error as? PostgresTransactionError {
            if let c = e.closureError { return describe(c) }
            if let c = e.commitError { return "COMMIT failed: \(describe(c))" }
            if let b = e.beginError { return "BEGIN failed: \(describe(b))" }
        }
        return "\(error)"
    }

    /// True for errors after which a retry on a (possibly new) primary may succeed: lost connections,
    /// a read-only node (25006), shutdowns (57P), serialization failures and deadlocks.
    public static func isTransient(_ error: any Error) -> Bool {
        if error is CommitOutcomeUnknown { return true }
        guard let e = error as? PSQLError else { return false }
        switch e.code {
        case .server:
            let state = e.serverInfo?[.sqlState] ?? ""
            return state == "25006" || state == "40001" || state == "40P01" || state.hasPrefix("57P") || state.hasPrefix("08")
        case .serverClosedConnection, .clientClosedConnection, .connectionError, .uncleanShutdown, .poolClosed:
            return true
        default:
            return false
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

/// The one handle through which every process reaches PostgreSQL.
///
/// Writes go through `transaction`, which acknowledges only a successful `COMMIT` (postgres-nio
/// reports an autocommit statement as done before it commits: DESIGN.md §2). Reads may use `query`.
public final class Database: Sendable {
    /// The connection pool; run it as the first service of the process.
    public let client: PostgresClient
    public let config: DatabaseConfig
    let logger: Logger
    let notifier: WakeupNotifier

    /// - Parameter quietPool: log the pool's own background messages only from error up (for
    ///   short-lived commands, which lease a connection while the pool is still starting).
    public init(config: DatabaseConfig, logger: Logger, quietPool: Bool = false) {
        var c = PostgresClient.Configuration(
            host: config.host, port: config.port, username: config.user, password: config.password,
            database: config.database, tls: .disable)
        switch config.tls {
        case .disable: c.tls = .disable
        case .prefer: c.tls = .prefer(.makeClientConfiguration())
        case .require: c.tls = .require(.makeClientConfiguration())
        }
        c.options.maximumConnections = config.poolSize
        c.options.connectTimeout = config.connectTimeout
        var background = logger
        if quietPool { background.logLevel = .error }
        self.client = PostgresClient(configuration: c, backgroundLogger: background)
        self.config = config
        self.logger = logger
        self.notifier = WakeupNotifier(client: client, logger: logger)
    }

    /// Runs `body` in a transaction and returns only after `COMMIT` succeeded.
    ///
    /// Errors: the body's own error when it threw (rolled back); the server error when COMMIT was
    /// refused (rolled back); `CommitOutcomeUnknown` when the connection failed during COMMIT.
    public func transaction<Result: Sendable>(
        file: String = #fileID, line: Int = #line,
        _ body: (PostgresConnection) async throws -> sending Result
    ) async throws -> Result {
        let wakeups = WakeupCollector()
        do {
            let result = try await JobQueue.$pendingWakeups.withValue(wakeups) {
                try await client.withTransaction(logger: logger, file: file, line: line, body)
            }
            let stages = wakeups.take()
            if !stages.isEmpty { notifier.wake(stages) }
            return result
        } catch let e as PostgresTransactionError {
            if let closureError = e.closureError { throw closureError }
            if let commitError = e.commitError {
                if DatabaseErrors.commitOutcomeIsUnknown(commitError) { throw CommitOutcomeUnknown(underlying: commitError) }
                throw commitError
            }
            if let beginError = e.beginError { throw beginError }
            throw e
        }
    }

    /// A read outside a transaction. Never use it for writes.
    @discardableResult
    public func query(_ query: PostgresQuery, file: String = #fileID, line: Int = #line) async throws -> PostgresRowSequence {
        try await client.query(query, logger: logger, file: file, line: line)
    }

    /// One write statement in its own (implicit) transaction: one round trip instead of BEGIN,
    /// statement, COMMIT. Only for a write that is whole by itself and enqueues no jobs (a job
    /// enqueued here would not wake the workers); everything else goes through `transaction`.
    /// Not for a write whose success the caller acts on (completing a job, answering a client):
    /// postgres-nio reports the statement done at CommandComplete, before its implicit commit, so a
    /// crash of the server in between loses a write the caller saw succeed. `transaction` returns
    /// only after COMMIT's answer.
    public func execute(_ query: PostgresQuery, file: String = #fileID, line: Int = #line) async throws {
        for try await _ in try await client.query(query, logger: logger, file: file, line: line) {}
    }

    /// Leases one connection for `body` (LISTEN, or several reads that must see one session).
    public func withConnection<Result: Sendable>(_ body: (PostgresConnection) async throws -> sending Result) async throws -> Result {
        try await client.withConnection(body)
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
    let client: PostgresClient
    let logger: Logger
    private let state = Mutex<(dirty: Set<String>, sending: Bool)>(([], false))

    init(client: PostgresClient, logger: Logger) {
        self.client = client
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
                    try await client.query("SELECT pg_notify(\(JobQueue.notifyChannel), \(stage))", logger: logger)
                } catch {
                    logger.debug("wake-up notification not sent", metadata: ["stage": "\(stage)", "error": "\(DatabaseErrors.describe(error))"])
                }
            }
        }
    }
}
