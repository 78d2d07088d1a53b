import Dispatch
import Foundation
import GatewayCore
import GatewayRuntime
import Logging
import PostgresNIO

/// Databases for tests: one migrated template per test process, and a fresh copy of it per test.
/// Their names carry the test process's id: a run that was killed before it dropped its databases
/// (and every run's template) is cleaned up by the next run on the cluster, once that process is gone.
///
/// The cluster comes from `POSTGRES_HOSTNAME/PORT/USER/PASSWORD/DB` (what `scripts/test.sh`
/// exports). A cluster that cannot be reached fails the test: tests never skip for lack of it.
public enum TestDatabase {
    /// The repository root (from this file's path).
    public static let repositoryRoot: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// The `sql/` folder of this checkout.
    public static var sqlDirectory: String { repositoryRoot.appendingPathComponent("sql").path }

    /// The cluster's connection settings from the environment.
    public static func clusterConfig() -> DatabaseConfig {
        var c = DatabaseConfig(host: "127.0.0.1", port: 5432, user: "gateway", password: nil, database: "postgres", poolSize: 8,
                               connectTimeout: .seconds(5))
        try? c.applyEnvironment(ProcessInfo.processInfo.environment)
        return c
    }

    public static let logger: Logger = {
        var l = Logger(label: "gateway.test")
        l.logLevel = ProcessInfo.processInfo.environment["TEST_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .warning
        return l
    }()

    private static let template = TemplateHolder()

    /// Creates an empty database (no migrations) and returns its settings.
    public static func createEmpty() async throws -> DatabaseConfig {
        var config = clusterConfig()
        let name = freshName()
        try await offload { try admin { try $0.exec("CREATE DATABASE \(name)") } }
        config.database = name
        return config
    }

    /// Creates a migrated database for one test and returns its settings.
    public static func createMigrated() async throws -> DatabaseConfig {
        let templateName = try await template.name()
        var config = clusterConfig()
        let name = freshName()
        try await offload { try admin { try $0.exec("CREATE DATABASE \(name) TEMPLATE \(templateName)") } }
        config.database = name
        return config
    }

    private static var processID: Int32 { ProcessInfo.processInfo.processIdentifier }

    /// `gw_test_p<pid>_<random>`.
    private static func freshName() -> String { "gw_test_p\(processID)_\(UInt64.random(in: 0...UInt64.max) & 0xffff_ffff_ffff)" }

    /// Drops the test databases and templates of test processes that no longer run on this machine
    /// (the cluster is a local one: scripts/test.sh's or the developer's).
    public static func dropLeftovers(_ m: Migrator) throws {
        for row in try m.exec("SELECT datname FROM pg_database WHERE datname ~ '^gw_(template_|test_p)[0-9]+'") {
            guard let name = row.first ?? nil else { continue }
            let digits = name.drop { !$0.isNumber }.prefix { $0.isNumber }
            guard let pid = Int32(digits), pid != processID, kill(pid, 0) != 0, errno == ESRCH else { continue }
            _ = try m.exec("DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
        }
    }

    /// Drops a test database (disconnecting what is left).
    public static func drop(_ config: DatabaseConfig) async {
        try? await offload { try admin { try $0.exec("DROP DATABASE IF EXISTS \(config.database) WITH (FORCE)") } }
    }

    /// Runs blocking work (libpq) off the cooperative thread pool.
    public static func offload<R: Sendable>(_ work: @escaping @Sendable () throws -> R) async throws -> R {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(with: Result { try work() }) }
        }
    }

    /// Runs `body` with a migrated database of its own and a running connection pool.
    public static func withDatabase<R: Sendable>(migrated: Bool = true, _ body: @Sendable (Database) async throws -> R) async throws -> R {
        let config = migrated ? try await createMigrated() : try await createEmpty()
        let database = Database(config: config, logger: logger)
        let result = await withThrowingTaskGroup(of: Void.self) { group -> Result<R, any Error> in
            group.addTask { try? await database.run() }
            defer { group.cancelAll() }
            do { return .success(try await body(database)) } catch { return .failure(error) }
        }
        await drop(config)
        return try result.get()
    }

    public static func admin(_ body: (Migrator) throws -> Void) throws {
        var c = clusterConfig()
        c.database = "postgres"
        do {
            try body(try Migrator(connectionString: c.libpqConnectionString, logger: logger))
        } catch {
            throw MigrationError("test cluster \(c.redactedDescription): \(error) (run the tests with scripts/test.sh, or export POSTGRES_*)")
        }
    }

    actor TemplateHolder {
        // A task, not a value: callers arriving while the template is being made wait for it.
        var making: Task<String, any Error>?

        func name() async throws -> String {
            if let making { return try await making.value }
            let task = Task { try await TestDatabase.offload { try Self.make() } }
            making = task
            return try await task.value
        }

        static func make() throws -> String {
            let name = "gw_template_\(TestDatabase.processID)"
            try TestDatabase.admin { m in
                try TestDatabase.dropLeftovers(m)
                try m.exec("DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
                try m.exec("CREATE DATABASE \(name)")
            }
            var c = TestDatabase.clusterConfig()
            c.database = name
            do {
                let migrator = try Migrator(connectionString: c.libpqConnectionString, logger: TestDatabase.logger)
                try migrator.migrate(try GatewaySchema.loadMigrations(directory: TestDatabase.sqlDirectory))
            }
            return name
        }
    }
}

/// Locates the package's built executables (beside the test bundle) and runs them as real processes.
public enum TestProcesses {
    /// The folder holding the built executables (`.build/<triple>/debug`).
    public static var binDirectory: URL {
        URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
    }

    /// A built executable of this package; fails clearly when it was not built.
    public static func executable(_ name: String) throws -> URL {
        let url = binDirectory.appendingPathComponent(name)
        guard FileManager.default.isExecutableFile(atPath: url.path) else {
            throw MigrationError("executable \(name) not found in \(binDirectory.path); build it first (swift build)")
        }
        return url
    }

    /// Writes a workers.yml for a child process to a temporary file; returns its path.
    public static func configFile(_ yaml: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("workers-\(UUID().uuidString).yml").path
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// The environment pointing a process at `config`'s database.
    public static func environment(for config: DatabaseConfig, extra: [String: String] = [:]) -> [String: String] {
        var env = ProcessInfo.processInfo.environment
        env["DATABASE_URL"] = nil
        env["POSTGRES_HOSTNAME"] = config.host
        env["POSTGRES_PORT"] = "\(config.port)"
        env["POSTGRES_USER"] = config.user
        env["POSTGRES_PASSWORD"] = config.password ?? ""
        env["POSTGRES_DB"] = config.database
        env["GATEWAY_SQL_DIR"] = TestDatabase.sqlDirectory
        for (k, v) in extra { env[k] = v }
        return env
    }

    /// Starts a process with its output captured to a temporary file.
    public static func start(_ name: String, _ arguments: [String], environment: [String: String]) throws -> RunningProcess {
        let p = Process()
        p.executableURL = try executable(name)
        p.arguments = arguments
        p.environment = environment
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("gw-\(name)-\(UUID().uuidString).log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        p.standardOutput = handle
        p.standardError = handle
        try p.run()
        return RunningProcess(process: p, logURL: log)
    }
}

/// A child process started by a test.
public final class RunningProcess: Sendable {
    public let process: Process
    public let logURL: URL

    init(process: Process, logURL: URL) {
        self.process = process
        self.logURL = logURL
    }

    public var pid: Int32 { process.processIdentifier }
    /// Everything the process printed so far.
    public var output: String { (try? String(contentsOf: logURL, encoding: .utf8)) ?? "" }

    /// Sends a signal (SIGTERM, SIGKILL…).
    public func signal(_ sig: Int32) { kill(process.processIdentifier, sig) }

    /// Waits for the process to exit, up to `timeout`; returns its status, or nil on timeout.
    public func wait(timeout: Duration) async -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            if ContinuousClock.now > deadline { return nil }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return process.terminationStatus
    }

    /// Waits until the output contains `text`, up to `timeout`.
    public func waitForOutput(_ text: String, timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if output.contains(text) { return true }
            if !process.isRunning { return output.contains(text) }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return false
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        try? FileManager.default.removeItem(at: logURL)
    }
}

/// Polls `condition` until it holds or `timeout` passes (for state in another process or the
/// database, where there is no signal to wait on).
public func eventually(timeout: Duration = .seconds(20), every: Duration = .milliseconds(25),
                       _ condition: @Sendable () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: every)
    }
    return try await condition()
}
