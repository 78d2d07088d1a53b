import Foundation
import GatewayCore
import Logging
import Metrics
import NIOCore
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// No node of the configured PostgreSQL accepts writes right now (a failover in progress, every node down, or
/// every node a standby). Transient: every stage treats it as "try again later", and it comes fast — a call does
/// not wait on a dead node.
public struct NoWritablePrimary: Error, CustomStringConvertible, Sendable {
    /// Each node tried and why it was not taken ("read-only", "connection refused", …).
    public var tried: [(endpoint: DatabaseEndpoint, reason: String)]

    public init(tried: [(endpoint: DatabaseEndpoint, reason: String)]) {
        self.tried = tried
    }

    public var description: String {
        "no PostgreSQL node accepts writes: " + tried.map { "\($0.endpoint) (\($0.reason))" }.joined(separator: ", ")
    }
}

/// The pool of connections to one node, run while that node is the one written to.
final class HostPool: Sendable {
    let endpoint: DatabaseEndpoint
    /// Increases with every pool made: an error reported from an older pool changes nothing.
    let generation: Int
    let client: PostgresClient
    private let stopSignal: AsyncStream<Void>
    private let stopper: AsyncStream<Void>.Continuation

    init(endpoint: DatabaseEndpoint, generation: Int, config: DatabaseConfig, logger: Logger) {
        self.endpoint = endpoint
        self.generation = generation
        client = PostgresClient(configuration: Self.configuration(endpoint, config), backgroundLogger: logger)
        (stopSignal, stopper) = AsyncStream<Void>.makeStream()
    }

    static func configuration(_ endpoint: DatabaseEndpoint, _ config: DatabaseConfig) -> PostgresClient.Configuration {
        var c = PostgresClient.Configuration(host: endpoint.host, port: endpoint.port, username: config.user, password: config.password,
                                             database: config.database, tls: .disable)
        c.tls = PrimaryRouter.tls(config.tls)
        c.options.maximumConnections = config.poolSize
        c.options.connectTimeout = config.connectTimeout
        return c
    }

    /// Runs the pool until graceful shutdown, cancellation or `stop()`.
    func run() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.client.run() }
            group.addTask { for await _ in self.stopSignal {} }
            await group.next()
            group.cancelAll()
        }
    }

    /// Closes the pool at once: requests waiting for a connection fail (`poolShutdown`), statements in flight lose
    /// their connection. For a node that no longer takes writes, failing fast is the point.
    func stop() { stopper.finish() }
}

/// The database calls in flight in this process, watched by the router: a call still waiting for a connection after
/// `probe_timeout` makes the router check its node at once (a lease wait past a bound is a sign of a lost node), and a
/// call still going after `slowCallWarning` is logged once with its phase and node, so that a call that never returns
/// (postgres-failover.md §6: an in-flight statement is not cancelled) is seen, not silent.
final class InFlightCalls: Sendable {
    enum Phase: UInt8, Sendable, CustomStringConvertible {
        case leasing, running, committing
        var description: String {
            switch self {
            case .leasing: return "waiting for a connection"
            case .running: return "running its statements"
            case .committing: return "committing"
            }
        }
    }

    struct Call {
        var pool: HostPool
        var what: String
        var started: ContinuousClock.Instant
        var phase: Phase
        var warned = false
        var reported = false
    }

    private let calls = Mutex<(next: Int, byID: [Int: Call])>((0, [:]))

    func begin(_ pool: HostPool, _ what: String) -> Int {
        calls.withLock { c in
            c.next += 1
            c.byID[c.next] = Call(pool: pool, what: what, started: .now, phase: .leasing)
            return c.next
        }
    }

    func phase(_ id: Int, _ phase: Phase) { calls.withLock { $0.byID[id]?.phase = phase } }

    func end(_ id: Int) { calls.withLock { _ = $0.byID.removeValue(forKey: id) } }

    /// The pools with a call waiting for a connection longer than `leaseBound` (each call reported once), and the calls
    /// going longer than `warnAfter` not yet warned of.
    func overdue(leaseBound: Duration, warnAfter: Duration) -> (slowLeases: [HostPool], slowCalls: [Call]) {
        let now = ContinuousClock.now
        return calls.withLock { c in
            var pools: [Int: HostPool] = [:]
            var slow: [Call] = []
            for (id, call) in c.byID {
                let age = now - call.started
                if call.phase == .leasing, age > leaseBound, !call.reported {
                    c.byID[id]?.reported = true
                    pools[call.pool.generation] = call.pool
                }
                if age > warnAfter, !call.warned {
                    c.byID[id]?.warned = true
                    slow.append(call)
                }
            }
            return (Array(pools.values), slow)
        }
    }

    var count: Int { calls.withLock { $0.byID.count } }
}

/// Finds the node that accepts writes among `DatabaseConfig.hosts` (refreshed from a pg_auto_failover monitor when one
/// is configured) and keeps one connection pool to it; `Database` sends every call there.
///
/// A node is writable when `SHOW transaction_read_only` says `off` — never judged by `pg_is_in_recovery()` alone: a
/// promoted pg_auto_failover node stays read-only until the old primary is demoted (postgres-failover.md §3). The
/// choice is cached; it is checked every `probe_interval`, and at once when a call fails with 25006 (read-only),
/// 57P (shutdown), 08 (connection) or a lost connection. A node that fails the check has its pool closed, so calls
/// waiting on it fail at once instead of queueing for a minute, and the next call looks for the writable node.
/// While none is writable, calls fail fast with `NoWritablePrimary`.
final class PrimaryRouter: Sendable {
    let config: DatabaseConfig
    let logger: Logger
    private let state: Mutex<State>
    private let starts: AsyncStream<HostPool>
    private let starter: AsyncStream<HostPool>.Continuation
    /// The calls in flight through `Database`, watched every `probe_interval`.
    let inFlight = InFlightCalls()
    /// A call going longer than this is logged once (with its phase and node).
    static let slowCallWarning: Duration = .seconds(10)
    private let writable = Gauge(label: "gateway.database.writable")
    private let changes = Counter(label: "gateway.database.primary_changes")

    /// How long a failed search answers calls at once with its error before the next search; also how often the
    /// watch searches while there is no writable node (a new primary is found within this of opening for writes).
    static let searchRetryDelay: Duration = .milliseconds(100)

    struct State {
        var hosts: [DatabaseEndpoint]
        var monitorHosts: [DatabaseEndpoint]?
        var current: HostPool?
        var generation = 0
        var search: Task<HostPool, any Error>?
        var failedSearch: (at: ContinuousClock.Instant, error: NoWritablePrimary)?
        var checking = false
        /// The node written to before the last loss, and when it was lost (for the log line at the next change).
        var lost: (endpoint: DatabaseEndpoint, at: ContinuousClock.Instant)?
        var lastMonitorComplaint: ContinuousClock.Instant?
        var closed = false
    }

    init(config: DatabaseConfig, logger: Logger) {
        self.config = config
        self.logger = logger
        state = Mutex(State(hosts: config.hosts))
        (starts, starter) = AsyncStream<HostPool>.makeStream()
    }

    /// What `/healthz` says: the node written to, or how long there has been none.
    var health: (ok: Bool, text: String) {
        state.withLock { s in
            if let c = s.current { return (true, "database: writing to \(c.endpoint)") }
            if let lost = s.lost {
                return (false, "database: no writable node for \(DurationText.format(ContinuousClock.now - lost.at)) (was \(lost.endpoint))")
            }
            return (false, "database: no writable node found yet among \(s.hosts.map(\.description).joined(separator: ", "))")
        }
    }

    /// The pool of the writable node: the cached one, else the result of a search (one at a time, shared by every
    /// caller). Throws `NoWritablePrimary` at once while a search has just failed.
    func pool() async throws -> HostPool {
        enum Next { case ready(HostPool), wait(Task<HostPool, any Error>) }
        let next: Next = try state.withLock { s in
            if let c = s.current { return .ready(c) }
            if let search = s.search { return .wait(search) }
            if s.closed { throw NoWritablePrimary(tried: []) }
            if let failed = s.failedSearch, ContinuousClock.now - failed.at < Self.searchRetryDelay { throw failed.error }
            let search = Task { try await self.searchAndTake() }
            s.search = search
            return .wait(search)
        }
        switch next {
        case .ready(let pool): return pool
        case .wait(let search): return try await search.value
        }
    }

    /// Looks at every node at once and takes the first that accepts writes.
    private func searchAndTake() async throws -> HostPool {
        // The monitor's nodes first (its list follows the formation), then every configured one it did not name: a
        // monitor's answer may leave out a node in transition, and a configured node is never given up.
        let hosts = state.withLock { s in
            let monitor = s.monitorHosts ?? []
            return monitor + s.hosts.filter { !monitor.contains($0) }
        }
        let found = await Self.findWritable(hosts, config: config, logger: logger)
        return try state.withLock { s in
            s.search = nil
            guard case .success(let endpoint) = found else {
                if case .failure(let error) = found { s.failedSearch = (ContinuousClock.now, error) }
                writable.record(0)
                throw s.failedSearch!.error
            }
            s.failedSearch = nil
            s.generation += 1
            let pool = HostPool(endpoint: endpoint, generation: s.generation, config: config, logger: logger)
            s.current = pool
            starter.yield(pool)
            writable.record(1)
            if let lost = s.lost {
                changes.increment()
                let without = DurationText.format(ContinuousClock.now - lost.at)
                logger.notice("writing to the PostgreSQL node that accepts writes",
                              metadata: ["db.to": "\(endpoint)", "db.from": "\(lost.endpoint)", "db.without_primary": "\(without)"])
            } else {
                logger.info("writing to the PostgreSQL node that accepts writes", metadata: ["db.to": "\(endpoint)"])
            }
            s.lost = nil
            return pool
        }
    }

    /// Closes `pool` and forgets it (if it is still the one written to): the next call searches.
    func lose(_ pool: HostPool, because reason: String) {
        let dropped = state.withLock { s -> Bool in
            guard let c = s.current, c.generation == pool.generation else { return false }
            s.current = nil
            s.lost = (pool.endpoint, ContinuousClock.now)
            return true
        }
        guard dropped else { return }
        writable.record(0)
        logger.warning("the PostgreSQL node written to no longer accepts writes; looking for the one that does",
                       metadata: ["db.from": "\(pool.endpoint)", "db.reason": "\(reason)"])
        pool.stop()
    }

    /// A call on `pool` failed with `error`: 25006 means the node no longer takes writes; a shutdown or a lost
    /// connection may mean it is gone, so it is checked now (one check at a time).
    func report(_ error: any Error, from pool: HostPool) {
        switch DatabaseErrors.primaryTrouble(error) {
        case .none: return
        case .readOnly: lose(pool, because: "read-only (25006)")
        case .maybeGone:
            let start = state.withLock { s -> Bool in
                guard let c = s.current, c.generation == pool.generation, !s.checking else { return false }
                s.checking = true
                return true
            }
            guard start else { return }
            Task {
                await self.check(pool)
                self.state.withLock { $0.checking = false }
            }
        }
    }

    /// Checks that `pool`'s node still accepts writes: through the pool (a connection leased within the probe
    /// timeout), else on a connection of its own (the pool may only be busy). Closes the pool if not.
    func check(_ pool: HostPool) async {
        let timeout = config.probeTimeout
        do {
            let readOnly = try await withDeadline(timeout) { [client = pool.client] in
                try await Self.readOnly(try await client.query("SHOW transaction_read_only"))
            }
            if !readOnly { return }
            lose(pool, because: "read-only")
        } catch {
            switch await Self.probe(pool.endpoint, config: config, logger: logger) {
            case .success(true): return
            case .success(false): lose(pool, because: "read-only")
            case .failure(let reason): lose(pool, because: reason.description)
            }
        }
    }

    /// Runs the pools and the periodic check until graceful shutdown.
    func run() async {
        await withDiscardingTaskGroup { group in
            group.addTask { try? await cancelWhenGracefulShutdown { await self.watch() } }
            for await pool in starts.cancelOnGracefulShutdown() {
                group.addTask { await pool.run() }
            }
            state.withLock { $0.closed = true }
        }
    }

    /// Every `probe_interval`: checks the node written to, or looks for one when there is none; refreshes the node
    /// list from the monitor every 30 s (and while no node is writable).
    private func watch() async {
        var lastMonitor = ContinuousClock.now - .seconds(3600)
        while !Task.isCancelled {
            let waiting = state.withLock { $0.current == nil }
            try? await Task.sleep(for: waiting ? min(config.probeInterval, Self.searchRetryDelay) : config.probeInterval)
            if Task.isCancelled { return }
            let current = state.withLock { $0.current }
            if config.monitor != nil, current == nil || ContinuousClock.now - lastMonitor > .seconds(30) {
                lastMonitor = ContinuousClock.now
                await refreshFromMonitor()
            }
            watchInFlight()
            if let current {
                await check(current)
            } else {
                _ = try? await pool()
            }
        }
    }

    /// A lease wait past `probe_timeout` has its node checked now; a call past `slowCallWarning` is logged once.
    private func watchInFlight() {
        let (slowLeases, slowCalls) = inFlight.overdue(leaseBound: config.probeTimeout, warnAfter: Self.slowCallWarning)
        for pool in slowLeases {
            let start = state.withLock { s -> Bool in
                guard let c = s.current, c.generation == pool.generation, !s.checking else { return false }
                s.checking = true
                return true
            }
            guard start else { continue }
            Task {
                await self.check(pool)
                self.state.withLock { $0.checking = false }
            }
        }
        for call in slowCalls {
            logger.warning("a database call has not ended", metadata: [
                "db.call": "\(call.what)", "db.phase": "\(call.phase)", "db.node": "\(call.pool.endpoint)",
                "db.pool": "\(call.pool.generation)", "db.running_for": "\(DurationText.format(ContinuousClock.now - call.started))",
                "db.current_pool": "\(state.withLock { $0.current?.generation.description ?? "none" })",
            ])
        }
    }

    /// Refreshes the monitor's node list (`pgautofailover.get_nodes`), searched before the configured nodes; a monitor
    /// that does not answer is logged once a minute and the last list it gave stays in use (the configured nodes
    /// always are).
    private func refreshFromMonitor() async {
        guard let monitor = config.monitor else { return }
        do {
            let nodes = try await Self.monitorNodes(monitor, timeout: config.probeTimeout, logger: logger)
            guard !nodes.isEmpty else { throw MonitorAnswer(description: "it lists no node in formation \(monitor.formation)") }
            let changed = state.withLock { s -> Bool in
                defer { s.monitorHosts = nodes }
                return s.monitorHosts != nil && s.monitorHosts != nodes
            }
            if changed { logger.notice("node list from the monitor changed", metadata: ["db.nodes": "\(nodes.map(\.description))"]) }
        } catch {
            let complain = state.withLock { s -> Bool in
                guard s.lastMonitorComplaint.map({ ContinuousClock.now - $0 > .seconds(60) }) ?? true else { return false }
                s.lastMonitorComplaint = ContinuousClock.now
                return true
            }
            if complain {
                logger.warning("the pg_auto_failover monitor does not answer; using the node list it gave last (else the configured one)",
                               metadata: ["db.monitor": "\(monitor.redactedDescription)", "error": "\(DatabaseErrors.describe(error))"])
            }
        }
    }

    struct MonitorAnswer: Error, CustomStringConvertible {
        let description: String
    }

    // MARK: Probes

    /// Why a node was not taken.
    struct ProbeFailure: Error, CustomStringConvertible {
        let description: String
    }

    /// Probes every node at once; the first writable one wins, without waiting for the others' answers (a node that
    /// does not answer costs its probe's timeout only to its own probe).
    static func findWritable(_ hosts: [DatabaseEndpoint], config: DatabaseConfig, logger: Logger) async -> Result<DatabaseEndpoint, NoWritablePrimary> {
        let (answers, sink) = AsyncStream<(Int, Result<Bool, ProbeFailure>)>.makeStream()
        for (i, host) in hosts.enumerated() {
            Task { sink.yield((i, await probe(host, config: config, logger: logger))) }
        }
        var tried: [Int: String] = [:]
        for await (i, result) in answers {
            switch result {
            case .success(true):
                sink.finish()
                return .success(hosts[i])
            case .success(false): tried[i] = "read-only"
            case .failure(let f): tried[i] = f.description
            }
            if tried.count == hosts.count { break }
        }
        sink.finish()
        return .failure(NoWritablePrimary(tried: hosts.enumerated().map { ($1, tried[$0] ?? "no answer") }))
    }

    /// Connects to `endpoint` on a connection of its own and asks `SHOW transaction_read_only`: true when `off`.
    static func probe(_ endpoint: DatabaseEndpoint, config: DatabaseConfig, logger: Logger) async -> Result<Bool, ProbeFailure> {
        var c = PostgresConnection.Configuration(host: endpoint.host, port: endpoint.port, username: config.user, password: config.password,
                                                 database: config.database, tls: .disable)
        c.tls = connectionTLS(config.tls)
        c.options.connectTimeout = .milliseconds(Int64(config.probeTimeout / .milliseconds(1)))
        var quiet = logger
        quiet.logLevel = .critical
        do {
            let isReadOnly = try await withDeadline(config.probeTimeout) { [c, quiet] in
                let connection = try await PostgresConnection.connect(configuration: c, id: 0, logger: quiet)
                do {
                    let ro = try await Self.readOnly(try await connection.query("SHOW transaction_read_only", logger: quiet))
                    try? await connection.close()
                    return ro
                } catch {
                    try? await connection.close()
                    throw error
                }
            }
            return .success(!isReadOnly)
        } catch is DeadlineExceeded {
            return .failure(ProbeFailure(description: "no answer within \(DurationText.format(config.probeTimeout))"))
        } catch {
            return .failure(ProbeFailure(description: DatabaseErrors.describe(error)))
        }
    }

    static func readOnly(_ rows: PostgresRowSequence) async throws -> Bool {
        var value = "on"
        for try await v in rows.decode(String.self) { value = v }
        return value != "off"
    }

    /// The nodes the monitor lists for the formation, on a connection of its own.
    static func monitorNodes(_ monitor: DatabaseConfig.MonitorConfig, timeout: Duration, logger: Logger) async throws -> [DatabaseEndpoint] {
        var c = PostgresConnection.Configuration(host: monitor.endpoint.host, port: monitor.endpoint.port, username: monitor.user,
                                                 password: monitor.password, database: monitor.database, tls: .disable)
        c.tls = connectionTLS(monitor.tls)
        var quiet = logger
        quiet.logLevel = .critical
        let formation = monitor.formation
        return try await withDeadline(timeout) { [c, quiet] in
            let connection = try await PostgresConnection.connect(configuration: c, id: 0, logger: quiet)
            defer { Task { try? await connection.close() } }
            var nodes: [DatabaseEndpoint] = []
            for try await (host, port) in try await connection.query(
                "SELECT node_host, node_port FROM pgautofailover.get_nodes(\(formation)) ORDER BY node_id", logger: quiet
            ).decode((String, Int32).self) {
                nodes.append(DatabaseEndpoint(host: host, port: Int(port)))
            }
            return nodes
        }
    }

    static func tls(_ mode: DatabaseConfig.TLSMode) -> PostgresClient.Configuration.TLS {
        switch mode {
        case .disable: return .disable
        case .prefer: return .prefer(.makeClientConfiguration())
        case .require: return .require(.makeClientConfiguration())
        }
    }

    static func connectionTLS(_ mode: DatabaseConfig.TLSMode) -> PostgresConnection.Configuration.TLS {
        switch mode {
        case .disable: return .disable
        case .prefer: return (try? .prefer(.init(configuration: .makeClientConfiguration()))) ?? .disable
        case .require: return (try? .require(.init(configuration: .makeClientConfiguration()))) ?? .disable
        }
    }
}
