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
    /// should still fail when its pool is lost — the connection is closed from this side.
    ///
    /// KNOWN DEFECT (issue 18, the failover chaos's 30 s outliers and its stuck TRON scanner): this call never returns
    /// (3 runs of 4; timing-dependent: it passed once with trace logging), not even after the backend is resumed and has
    /// ended; with the server alive (the test above) the same loss fails it at once. Where it waits (the body's statement, or the ROLLBACK postgres-nio 1.33.2's withTransaction sends after
    /// it) is not found yet; the callers' deadlines (QueueWorker, the API's writers, the scanner) bound it meanwhile.
    /// Enable this test with the fix.
    @Test(.disabled("known defect: hangs until fixed (issue 18)"), .timeLimit(.minutes(1)))
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
