import Foundation
import GatewayCore
import Testing

/// The database settings: one server, or the nodes of a highly available formation (libpq's multi-host form).
@Suite struct DatabaseConfigTests {
    func error(_ body: () throws -> Void) -> ConfigError? {
        do {
            try body()
            return nil
        } catch let e as ConfigError {
            return e
        } catch {
            Issue.record("unexpected \(error)")
            return nil
        }
    }

    @Test func aMultiHostURLListsEveryNodeAsLibpqReadsIt() throws {
        let c = try GatewayConfig.parse(yaml: """
            database:
              url: "postgres://gate%40way:p%3Ass@10.0.0.1:5432,10.0.0.2:5433,db3,[fd00::5]:5434/pay?target_session_attrs=read-write&sslmode=require"
            """).database
        #expect(c.hosts == [DatabaseEndpoint(host: "10.0.0.1", port: 5432), DatabaseEndpoint(host: "10.0.0.2", port: 5433),
                            DatabaseEndpoint(host: "db3", port: 5432), DatabaseEndpoint(host: "fd00::5", port: 5434)])
        #expect(c.user == "gate@way" && c.password == "p:ss" && c.database == "pay" && c.tls == .require)
        #expect(c.redactedDescription == "postgres://gate@way@10.0.0.1:5432,10.0.0.2:5433,db3:5432,[fd00::5]:5434/pay")
        #expect(!c.redactedDescription.contains("p:ss"))
        // libpq (the migrations) gets the same list and looks for the writable node itself.
        #expect(c.libpqConnectionString.contains("host='10.0.0.1,10.0.0.2,db3,fd00::5' port='5432,5433,5432,5434'"))
        #expect(c.libpqConnectionString.contains("target_session_attrs=read-write"))
        // A single host keeps working exactly as before.
        let single = try GatewayConfig.parse(yaml: "database:\n  url: postgres://gateway@127.0.0.1:24329/gateway\n").database
        #expect(single.hosts == [DatabaseEndpoint(host: "127.0.0.1", port: 24329)] && single.host == "127.0.0.1" && single.port == 24329)
    }

    @Test func hostsAMonitorAndTheProbesAreKeysOfTheirOwn() throws {
        let c = try GatewayConfig.parse(yaml: """
            database:
              url: postgres://gateway@ignored:1/gateway
              hosts: [127.0.0.1:56001, "127.0.0.1:56002", 127.0.0.1]
              monitor_url: postgres://autoctl_node@127.0.0.1:56000/pg_auto_failover?sslmode=prefer
              monitor_formation: payments
              probe_interval: 500ms
              probe_timeout: 2s
            """).database
        #expect(c.hosts.map(\.description) == ["127.0.0.1:56001", "127.0.0.1:56002", "127.0.0.1:5432"])
        #expect(c.monitor == .init(endpoint: .init(host: "127.0.0.1", port: 56000), user: "autoctl_node", database: "pg_auto_failover",
                                   tls: .prefer, formation: "payments"))
        #expect(c.probeInterval == .milliseconds(500) && c.probeTimeout == .seconds(2))
        let defaults = try GatewayConfig.parse(yaml: "database:\n  monitor_url: postgres://autoctl_node@m:56000/pg_auto_failover\n").database
        #expect(defaults.monitor?.formation == "default" && defaults.probeInterval == .seconds(1))
    }

    @Test func badHostListsAndParametersAreNamed() {
        let cases: [(String, String, String)] = [
            ("database:\n  url: postgres://u@h1,,h2/db\n", "database.url", "found 'h1,,h2'"),
            ("database:\n  url: postgres://u@h1:99999/db\n", "database.url", "port from 1 to 65535"),
            ("database:\n  url: postgres://u@h1/db?target_session_attrs=read-only\n", "database.url", "only read-write"),
            ("database:\n  url: postgres://u@h1/db?application_name=x\n", "database.url", "unsupported URL parameter 'application_name'"),
            ("database:\n  url: mysql://u@h1/db\n", "database.url", "expected a URL like postgres://"),
            ("database:\n  hosts: [\"h1:x\"]\n", "database.hosts[0]", "port from 1 to 65535"),
            ("database:\n  monitor_url: postgres://m1:1,m2:2/pg_auto_failover\n", "database.monitor_url", "the monitor is one server"),
            ("database:\n  monitor_formation: x\n", "database.monitor_formation", "needs database.monitor_url"),
            ("database:\n  probe_interval: 10ms\n", "database.probe_interval", "at least"),
        ]
        for (yaml, key, text) in cases {
            let e = error { _ = try GatewayConfig.parse(yaml: yaml) }
            #expect(e?.key == key && e?.description.contains(text) == true, "\(yaml): \(String(describing: e))")
        }
    }

    @Test func theEnvironmentMayListHostsAsPGHOSTDoes() throws {
        let both = try GatewayConfig.parse(yaml: "", environment: ["POSTGRES_HOSTNAME": "a,b", "POSTGRES_PORT": "1,2"]).database
        #expect(both.hosts == [DatabaseEndpoint(host: "a", port: 1), DatabaseEndpoint(host: "b", port: 2)])
        let onePort = try GatewayConfig.parse(yaml: "", environment: ["POSTGRES_HOSTNAME": "a,b:7", "POSTGRES_PORT": "9"]).database
        #expect(onePort.hosts == [DatabaseEndpoint(host: "a", port: 9), DatabaseEndpoint(host: "b", port: 9)], "one port is every host's")
        let url = try GatewayConfig.parse(yaml: "", environment: ["DATABASE_URL": "postgres://x@a:1,b:2/d"]).database
        #expect(url.hosts.count == 2 && url.database == "d")
        let mismatch = error { _ = try GatewayConfig.parse(yaml: "", environment: ["POSTGRES_HOSTNAME": "a,b,c", "POSTGRES_PORT": "1,2"]) }
        #expect(mismatch?.key == "POSTGRES_PORT" && mismatch?.description.contains("2 ports for 3 hosts") == true)
    }
}
