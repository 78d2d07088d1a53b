import Foundation
import GatewayRuntime
import GatewayTesting
import Testing

/// The test databases clean up after test runs that could not (killed, or the template every run leaves).
@Suite struct TestDatabaseTests {
    @Test func databasesOfTestProcessesThatAreGoneAreDroppedAndOthersKept() async throws {
        let gone = Process()
        gone.executableURL = URL(fileURLWithPath: "/bin/true")
        try gone.run()
        gone.waitUntilExit()
        let own = ProcessInfo.processInfo.processIdentifier
        let names = ["gw_test_p\(gone.processIdentifier)_1", "gw_template_\(gone.processIdentifier)", "gw_test_p\(own)_2", "gw_test_p1_3"]
        func existing() throws -> Set<String> {
            var out = Set<String>()
            try TestDatabase.admin { m in
                for row in try m.exec("SELECT datname FROM pg_database") { if let n = row.first ?? nil, names.contains(n) { out.insert(n) } }
            }
            return out
        }
        try TestDatabase.admin { m in
            for n in names { _ = try m.exec("DROP DATABASE IF EXISTS \(n)"); _ = try m.exec("CREATE DATABASE \(n)") }
        }
        #expect(try existing() == Set(names))
        try TestDatabase.admin { m in try TestDatabase.dropLeftovers(m) }
        #expect(try existing() == ["gw_test_p\(own)_2", "gw_test_p1_3"], "pid 1 runs; so does this process")
        try TestDatabase.admin { m in for n in names { _ = try m.exec("DROP DATABASE IF EXISTS \(n)") } }
    }
}
