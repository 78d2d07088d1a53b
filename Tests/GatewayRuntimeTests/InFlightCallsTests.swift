import Foundation
import GatewayCore
@testable import GatewayRuntime
import GatewayTesting
import Logging
import PostgresNIO
import Testing

/// The router's watch over the calls in flight: a lease wait past its bound names its pool once (the router then
/// checks that node at once), a call past the warning age is reported once, and a finished call is forgotten.
struct InFlightCallsTests {
    @Test func overdueLeasesAndSlowCallsAreReportedOnceAndFinishedCallsForgotten() async throws {
        let config = DatabaseConfig(host: "127.0.0.1", port: 1)
        let a = HostPool(endpoint: DatabaseEndpoint(host: "127.0.0.1", port: 1), generation: 1, config: config, logger: Logger(label: "test"))
        let b = HostPool(endpoint: DatabaseEndpoint(host: "127.0.0.1", port: 2), generation: 2, config: config, logger: Logger(label: "test"))
        let calls = InFlightCalls()
        let waiting = calls.begin(a, "transaction at A")
        let running = calls.begin(b, "query at B")
        calls.phase(running, .running)
        let finished = calls.begin(b, "statement at B")
        calls.end(finished)
        #expect(calls.count == 2)

        // Nothing is overdue yet.
        var (pools, slow) = calls.overdue(leaseBound: .seconds(60), warnAfter: .seconds(60))
        #expect(pools.isEmpty && slow.isEmpty)

        try await Task.sleep(for: .milliseconds(30))
        (pools, slow) = calls.overdue(leaseBound: .milliseconds(10), warnAfter: .milliseconds(10))
        #expect(pools.map(\.generation) == [1], "only the call still waiting for a connection names its pool")
        #expect(Set(slow.map(\.what)) == ["transaction at A", "query at B"])
        #expect(slow.first { $0.what == "query at B" }?.phase == .running)

        // Each is reported once.
        (pools, slow) = calls.overdue(leaseBound: .milliseconds(10), warnAfter: .milliseconds(10))
        #expect(pools.isEmpty && slow.isEmpty)

        calls.end(waiting)
        calls.end(running)
        #expect(calls.count == 0)
    }

    /// The same with a server that does not answer at all (its backend stopped, as a crashed host's would be): the call
    /// fails when its pool is lost — the connection is closed from this side, and the ROLLBACK after the failed statement
    /// is not sent into the closed connection. (Before DatabaseConnection this call never returned in 3 runs of 4.)
    @Test(.timeLimit(.minutes(1)))
    func aCallInFlightOnAStoppedServerFailsWhenItsPoolIsLost() async throws {
        try await TestDatabase.withDatabase(migrated: false) { db in
            let log = TestDatabase.logger
            try await db.transaction { c in try await c.query("SELECT 1", logger: log) }
            async let blocked: Void = db.transaction { c in
                try await c.query("SELECT 1", logger: log)
                try await c.query("SELECT pg_sleep(3), 'stopped-backend-probe'", logger: log)
            }
            var pid: Int32?
            for _ in 0..<100 where pid == nil {
                try await Task.sleep(for: .milliseconds(20))
                let rows = try await db.query("SELECT pid FROM pg_stat_activity WHERE query LIKE '%stopped-backend-probe''' AND pid <> pg_backend_pid()")
                for try await p in rows.decode(Int32.self) { pid = p }
            }
            let backend = try #require(pid)
            #expect(kill(backend, SIGSTOP) == 0)
            defer { kill(backend, SIGCONT) }
            try await Task.sleep(for: .seconds(4))  // past the sleep: the stopped backend never answers
            let started = ContinuousClock.now
            let pool = try await db.router.pool()
            db.router.lose(pool, because: "test")
            var failed = false
            do { try await blocked } catch { failed = true }
            #expect(failed, "the statement's call fails")
            #expect(ContinuousClock.now - started < .seconds(3), "when its pool is lost")
        }
    }

    /// A statement sent on a connection that has closed fails at once with `ConnectionClosed`. (postgres-nio 1.33.2 alone
    /// drops a statement written to a closed channel, and its call waits forever: DatabaseConnection.)
    @Test(.timeLimit(.minutes(1)))
    func aStatementOnAClosedConnectionFailsAtOnce() async throws {
        try await TestDatabase.withDatabase(migrated: false) { db in
            let log = TestDatabase.logger
            var error: (any Error)?
            do {
                try await db.transaction { c in
                    try await c.query("SELECT 1", logger: log)
                    try await c.underlying.close()
                    try await c.query("SELECT 2", logger: log)
                }
            } catch let e { error = e }
            #expect(error is ConnectionClosed, "got \(String(describing: error))")
            #expect(DatabaseErrors.isFailover(try #require(error)), "a stage retries it later without spending an attempt")
            // The pool replaces the closed connection: the next call works.
            try await db.transaction { c in try await c.query("SELECT 1", logger: log) }
        }
    }

    /// A statement in flight on a node the router gives up (a switchover, a crash: the server may never answer it)
    /// fails when its pool is lost, not when — or if ever — the server ends it.
    @Test func aCallInFlightOnALostPoolFailsAtOnce() async throws {
        try await TestDatabase.withDatabase(migrated: false) { db in
            let log = TestDatabase.logger
            try await db.transaction { c in try await c.query("SELECT 1", logger: log) }
            let started = ContinuousClock.now
            async let blocked: Void = db.transaction { c in try await c.query("SELECT pg_sleep(20)", logger: log) }
            var running = false
            for _ in 0..<100 where !running {
                try await Task.sleep(for: .milliseconds(20))
                running = db.router.inFlight.count > 0
            }
            #expect(running)
            try await Task.sleep(for: .milliseconds(200))
            let pool = try await db.router.pool()
            db.router.lose(pool, because: "test")
            var failed = false
            do { try await blocked } catch { failed = true }
            #expect(failed, "the statement's call fails")
            #expect(ContinuousClock.now - started < .seconds(5), "at once, not after the statement's 20 s")
        }
    }
}
