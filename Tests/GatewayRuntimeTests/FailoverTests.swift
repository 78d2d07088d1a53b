import Foundation
import GatewayCore
import GatewayRuntime
import GatewayTesting
import Logging
import PostgresNIO
import Testing

/// The primary router against a real primary and its streaming standby (scripts/test.sh starts them; their ports are
/// in GATEWAY_TEST_HA_PORTS): a switchover (the primary made read-only, the standby promoted), then a moment with no
/// writable node. The pair changes for good here, so the steps run in order in one test.
@Suite(.serialized) struct FailoverTests {
    static var ports: [Int] {
        (ProcessInfo.processInfo.environment["GATEWAY_TEST_HA_PORTS"] ?? "").split(separator: ",").compactMap { Int($0) }
    }

    /// A statement on one node, as its superuser (libpq, no routing).
    static func admin(_ port: Int, _ sql: String) throws -> [[String?]] {
        let m = try Migrator(connectionString: "host=127.0.0.1 port=\(port) user=gateway dbname=gateway_ha connect_timeout=5", logger: log)
        return try m.exec(sql)
    }

    /// The port of the server that ran the statement.
    static func serverPort(_ db: Database) async throws -> Int {
        try await db.transaction { c in
            var port = 0
            for try await p in try await c.query("SELECT inet_server_port()", logger: log).decode(Int32.self) { port = Int(p) }
            return port
        }
    }

    @Test func theRouterWritesWhereWritesAreAcceptedFollowsASwitchoverAndFailsFastWithoutAPrimary() async throws {
        let ports = Self.ports
        try #require(ports.count == 2, "scripts/test.sh exports GATEWAY_TEST_HA_PORTS (a primary and its standby)")
        let (a, b) = (ports[0], ports[1])
        _ = try Self.admin(a, "CREATE TABLE IF NOT EXISTS writes (n int PRIMARY KEY, at_port int NOT NULL)")
        // The standby comes first in the list: the router must judge by transaction_read_only, not by order.
        var config = DatabaseConfig(user: "gateway", database: "gateway_ha", poolSize: 4, connectTimeout: .seconds(2))
        config.hosts = [DatabaseEndpoint(host: "127.0.0.1", port: b), DatabaseEndpoint(host: "127.0.0.1", port: a)]
        config.probeInterval = .milliseconds(200)
        config.probeTimeout = .seconds(1)
        let db = Database(config: config, logger: log)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await db.run() }
            defer { group.cancelAll() }
            @Sendable func write(_ n: Int) async throws {
                try await db.transaction { c in
                    try await c.query("INSERT INTO writes VALUES (\(n), inet_server_port())", logger: log)
                }
            }
            try await write(1)
            #expect(try await Self.serverPort(db) == a)
            #expect(db.health.ok && db.health.text.contains("127.0.0.1:\(a)"))

            // A switchover, as pg_auto_failover does it: the old primary refuses writes, the standby is promoted.
            _ = try Self.admin(a, "ALTER SYSTEM SET default_transaction_read_only = on")
            _ = try Self.admin(a, "SELECT pg_reload_conf()")
            _ = try Self.admin(b, "SELECT pg_promote(true, 30)")
            let next = Recorder<Int>()
            let followed = try await eventually(timeout: .seconds(15), every: .milliseconds(50)) {
                next.add(0)
                do {
                    try await write(1 + next.all.count)
                    return true
                } catch {
                    #expect(DatabaseErrors.isFailover(error), "every failure during the switch is a failover error: \(DatabaseErrors.describe(error))")
                    return false
                }
            }
            #expect(followed, "writes reach the promoted node")
            #expect(try await Self.serverPort(db) == b)
            #expect(db.health.ok && db.health.text.contains("127.0.0.1:\(b)"))
            let rows = try Self.admin(b, "SELECT n, at_port FROM writes ORDER BY n")
            #expect(rows.first?[0] == "1" && rows.first?[1] == "\(a)", "the write before the switch was replicated")
            #expect(rows.last?[1] == "\(b)")

            // No writable node: calls fail at once with NoWritablePrimary, naming each node and why.
            _ = try Self.admin(b, "ALTER SYSTEM SET default_transaction_read_only = on")
            _ = try Self.admin(b, "SELECT pg_reload_conf()")
            let lost = await eventually(timeout: .seconds(10), every: .milliseconds(50)) { !db.health.ok }
            #expect(lost, "the periodic check notices the read-only node")
            let started = ContinuousClock.now
            await #expect(throws: NoWritablePrimary.self) { try await write(1000) }
            #expect(ContinuousClock.now - started < .seconds(3), "no wait on a node that takes no writes")
            do {
                try await write(1001)
            } catch {
                #expect(DatabaseErrors.isFailover(error) && DatabaseErrors.isTransient(error))
                #expect("\(error)".contains("127.0.0.1:\(a) (read-only)") && "\(error)".contains("127.0.0.1:\(b) (read-only)"), "\(error)")
            }
            #expect(db.health.text.contains("no writable node for"))

            // Writable again: found by the next call, without a restart.
            _ = try Self.admin(b, "ALTER SYSTEM RESET default_transaction_read_only")
            _ = try Self.admin(b, "SELECT pg_reload_conf()")
            let back = try await eventually(timeout: .seconds(10), every: .milliseconds(100)) { (try? await write(2000)) != nil }
            #expect(back)
        }
    }

    /// No node reachable at start: a clear error naming every node tried, not a hang.
    @Test func aURLNamingNoWritableHostIsAStartupErrorNamingTheHostsTried() async throws {
        let config = try TestProcesses.configFile("log_level: info\n")
        defer { try? FileManager.default.removeItem(atPath: config) }
        var env = TestProcesses.environment(for: TestDatabase.clusterConfig())
        env["POSTGRES_HOSTNAME"] = nil
        env["POSTGRES_PORT"] = nil
        env["DATABASE_URL"] = "postgres://gateway@127.0.0.1:1,127.0.0.1:2/gateway"
        let p = try TestProcesses.start("review-worker", ["--config", config], environment: env)
        let status = await p.wait(timeout: .seconds(30))
        #expect(status != nil && status != 0)
        #expect(p.output.contains("127.0.0.1:1 (") && p.output.contains("127.0.0.1:2 ("), "output:\n\(p.output)")
    }
}
