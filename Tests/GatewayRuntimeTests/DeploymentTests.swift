import Foundation
import GatewayCore
import GatewayTesting
import Testing

struct DeploymentTestError: Error {
    let text: String
}

/// The systemd units of deploy/systemd, checked by systemd's own tools and against what the processes do.
@Suite struct DeploymentTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let unitDirectory = root.appendingPathComponent("deploy/systemd")

    /// A unit file as key → values (a key may repeat), comments dropped.
    struct Unit {
        let name: String
        let entries: [(key: String, value: String)]

        init(_ url: URL) throws {
            name = url.lastPathComponent
            entries = try String(contentsOf: url, encoding: .utf8).split(separator: "\n").compactMap { line in
                let t = line.trimmingCharacters(in: .whitespaces)
                guard !t.hasPrefix("#"), !t.hasPrefix("["), let eq = t.firstIndex(of: "=") else { return nil }
                return (String(t[..<eq]), String(t[t.index(after: eq)...]))
            }
        }

        func values(_ key: String) -> [String] { entries.filter { $0.key == key }.map(\.value) }
        func value(_ key: String) -> String? { values(key).last }
        var executable: String { String(value("ExecStart")?.split(separator: " ").first ?? "") }
        var credentials: Set<String> { Set(values("LoadCredential").map { String($0.split(separator: ":").first ?? "") }) }
        var isTemplate: Bool { name.contains("@.") }
    }

    static func services() throws -> [Unit] {
        try FileManager.default.contentsOfDirectory(atPath: unitDirectory.path).filter { $0.hasSuffix(".service") }.sorted()
            .map { try Unit(unitDirectory.appendingPathComponent($0)) }
    }

    /// The stage a worker unit runs (usdt-gateway-autopay@.service → autopay).
    static func stage(_ unit: Unit) -> Stage? {
        Stage.allCases.first { unit.name == "usdt-gateway-\($0.rawValue)@.service" }
    }

    /// Runs a command to its end: (status, standard output and error together).
    static func run(_ executable: String, _ arguments: [String]) throws -> (Int32, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = arguments
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// A root directory for `systemd-analyze --root`: the system's own units (for the targets ours name), ours, and an
    /// executable at every ExecStart path, so the check sees the layout a server has. Returns the unit names to check,
    /// templates as one instance each.
    static func withRoot<R>(_ body: (String, [String]) throws -> R) throws -> R {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("systemd-root-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let fm = FileManager.default
        try fm.createDirectory(at: dir.appendingPathComponent("lib/systemd"), withIntermediateDirectories: true)
        try fm.createDirectory(at: dir.appendingPathComponent("etc/systemd/system"), withIntermediateDirectories: true)
        let (copied, output) = try run("/bin/cp", ["-a", "/lib/systemd/system", dir.appendingPathComponent("lib/systemd/").path])
        guard copied == 0 else { throw DeploymentTestError(text: "copying the system's units failed: \(output)") }
        var names: [String] = []
        for file in try fm.contentsOfDirectory(atPath: unitDirectory.path) where file.hasSuffix(".service") || file.hasSuffix(".target") {
            try fm.copyItem(at: unitDirectory.appendingPathComponent(file), to: dir.appendingPathComponent("etc/systemd/system/\(file)"))
            names.append(file.replacingOccurrences(of: "@.", with: "@9101."))
        }
        for unit in try services() {
            let exe = dir.appendingPathComponent(String(unit.executable.dropFirst()))
            try fm.createDirectory(at: exe.deletingLastPathComponent(), withIntermediateDirectories: true)
            fm.createFile(atPath: exe.path, contents: Data("#!/bin/sh\n".utf8), attributes: [.posixPermissions: 0o755])
        }
        return try body(dir.path, names.sorted())
    }

    @Test func everyUnitPassesSystemdAnalyzeVerify() throws {
        let (status, output) = try Self.withRoot { root, names in
            #expect(names.count == 8, "api, console, five stage templates and the target: \(names)")
            return try Self.run("/usr/bin/systemd-analyze", ["verify", "--root=\(root)"] + names)
        }
        // verify exits 0 even for an unknown key or a bad value: any word from it is a defect.
        #expect(status == 0 && output.isEmpty, "systemd-analyze verify:\n\(output)")
    }

    @Test func everyUnitIsHardenedByTheMeasureOfSystemdAnalyzeSecurity() throws {
        let (status, output) = try Self.withRoot { root, names in
            try Self.run("/usr/bin/systemd-analyze", ["security", "--offline=yes", "--threshold=15", "--root=\(root)"]
                + names.filter { $0.hasSuffix(".service") })
        }
        #expect(status == 0, "an overall exposure above 1.5:\n\(output)")
        #expect(output.components(separatedBy: "Overall exposure level").count == 8, "\(output)")
        for unit in try Self.services() {
            for (key, value) in [("User", "usdt-gateway"), ("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"), ("PrivateTmp", "yes"),
                                 ("CapabilityBoundingSet", ""), ("Restart", "on-failure"), ("KillMode", "mixed"), ("Type", "exec")] {
                #expect(unit.value(key) == value, "\(unit.name): \(key)=\(value)")
            }
            #expect(unit.values("ReadWritePaths").isEmpty, "\(unit.name) writes nothing but its journal")
            #expect(unit.value("Environment") == nil && unit.value("EnvironmentFile") == nil, "\(unit.name): secrets never in the environment")
        }
    }

    /// Signing keys only in the processes that sign; every process gets the database password; only the console the TOTP key.
    @Test func eachUnitGetsExactlyTheCredentialsItsProcessReads() throws {
        let config = try GatewayConfig.load(path: Self.root.appendingPathComponent("deploy/workers.production.yml").path,
                                            environment: ["POSTGRES_PASSWORD": "x"])
        let password = try #require(config.database.passwordCredential)
        let seed = try #require(config.wallet.seedCredential)
        let totp = try #require(config.console.totpKeyCredential)
        for unit in try Self.services() {
            var expected: Set<String> = [password]
            if [.autopay, .sweep].contains(Self.stage(unit)) { expected.insert(seed) }
            if unit.name == "usdt-gateway-console.service" { expected.insert(totp) }
            #expect(unit.credentials == expected, "\(unit.name)")
            for line in unit.values("LoadCredential") {
                let parts = line.split(separator: ":", maxSplits: 1)
                #expect(parts.count == 2 && parts[1].hasPrefix("/etc/usdt-gateway/credentials/"), "\(unit.name): \(line)")
            }
            // A default for each: a missing file reaches the process, which names it (systemd would not).
            #expect(Set(unit.values("SetCredential")) == Set(expected.map { "\($0):\(SystemdCredentials.missingMarker)" }), "\(unit.name)")
        }
    }

    /// systemd's SIGKILL must not cut short the stop the process bounds itself: for a stage, graceful for its
    /// shutdown_grace + 30 s, then 15 s of cancellation; api and console 60 s + 15 s.
    @Test func eachUnitWaitsLongerThanItsProcessTakesToStopAndRunsABuiltExecutable() throws {
        let config = try GatewayConfig.load(path: Self.root.appendingPathComponent("deploy/workers.production.yml").path,
                                            environment: ["POSTGRES_PASSWORD": "x"])
        let shipped = try GatewayConfig.load(path: Self.root.appendingPathComponent("workers.yml").path, environment: [:])
        var stages: Set<Stage> = []
        for unit in try Self.services() {
            let timeout = try #require(unit.value("TimeoutStopSec").flatMap { Int($0.replacingOccurrences(of: "s", with: "")) }, "\(unit.name)")
            let bound: Duration
            if let stage = Self.stage(unit) {
                stages.insert(stage)
                #expect(unit.isTemplate && unit.value("ExecStart")?.hasSuffix("--metrics-port %i") == true, "\(unit.name): one copy per port")
                bound = max(config.worker(stage).shutdownGrace, shipped.worker(stage).shutdownGrace) + .seconds(45)
            } else {
                bound = .seconds(75)
            }
            #expect(Duration.seconds(timeout) > bound, "\(unit.name): TimeoutStopSec=\(timeout)s, the process may take \(bound)")
            #expect(unit.value("ExecStart")?.contains("--config /etc/usdt-gateway/workers.yml") == true)
            let exe = String(unit.executable.split(separator: "/").last ?? "")
            #expect(unit.executable == "/opt/usdt-gateway/bin/\(exe)", "\(unit.name)")
            #expect((try? TestProcesses.executable(exe)) != nil, "\(unit.name) runs \(exe), which this package builds")
        }
        #expect(stages == Set(Stage.allCases), "a template for every stage")
    }
}
