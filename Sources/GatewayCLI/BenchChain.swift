import DevChain
import Foundation
import GatewayCore
import GatewayRuntime
import Logging
import PostgresNIO

/// The start of the benchmarks that run a chain (deposits, payouts, sweeps): the configuration pointed
/// at the scratch database (prepared: migrated, earlier runs' jobs dropped) with a pool of at least
/// `poolSize`, warnings-only logging, devchain in this process (quiet, seeded `seedPrefix`-<uuid>); runs
/// `measure` and prints the figures it returns, one `name value` line each.
enum BenchChain {
    typealias Measure = @Sendable (_ config: GatewayConfig, _ db: Database, _ node: DevChain, _ url: String, _ logger: Logger) async throws
        -> [(String, String)]

    static func run(_ options: ProcessOptions, database: String?, poolSize: Int, seedPrefix: String, automine: Bool,
                    adjust: (inout GatewayConfig) -> Void = { _ in }, measure: @escaping Measure) async throws {
        var config = try options.loadConfig()
        Observability.bootstrapLogging(level: .warning)
        var benchLogger = Logger(label: "gateway.bench")
        benchLogger.logLevel = .warning
        let logger = benchLogger
        config.database.database = database ?? config.database.database + "_bench"
        config.database.poolSize = max(config.database.poolSize, poolSize)
        adjust(&config)
        try ScratchDatabase.prepare(config.database, logger: logger)
        let db = Database(config: config.database, logger: logger)
        let frozen = config
        let quiet = Logger(label: "devchain", factory: { _ in SwiftLogNoOpLogHandler() })
        let figures = try await withThrowingTaskGroup(of: Void.self) { tasks -> [(String, String)] in
            tasks.addTask { try? await db.run() }
            defer { tasks.cancelAll() }
            return try await DevChain.withRunning(DevChainOptions(seed: "\(seedPrefix)-\(UUID().uuidString)", automine: automine), logger: quiet) {
                node, url in try await measure(frozen, db, node, url, logger)
            }
        }
        for (k, v) in figures { print("\(k) \(v)") }
    }
}
