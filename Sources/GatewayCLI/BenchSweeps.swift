import ArgumentParser
import BigInt
import ChainKit
import DevChain
import Foundation
import GatewayCore
import GatewayRuntime
import GatewayServices
import GatewayStages
import Logging
import PostgresNIO
import ServiceLifecycle

/// `gatewayctl bench sweeps`: deposit addresses swept per second (gas top-up, then sweep) on devchain.
struct SweepBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sweeps",
        abstract: "Deposit addresses swept per second (planned → top-up confirmed → sweep confirmed), with --workers sweep workers.",
        discussion: """
            Runs devchain (fresh seed; Ethereum, a block every --block-ms with every pending transaction), --workers sweep \
            workers (each with its own signer, as separate processes would have) and a chain worker following the top-ups \
            and sweeps to --confirmations, all in this process, against a scratch database (<database>_bench). One merchant \
            wallet from the bench's own seed gets --count deposit addresses, each sent USDT by devchain and credited by the \
            chain scanner before the clock starts; its hot address is funded with ETH for the top-ups. Then the planner plans \
            them and the workers sweep them: `sweeps_per_s` = count / time from planning to the last sweep confirmed.
            """)

    @OptionGroup var options: ProcessOptions
    @Option(help: "Deposit addresses to sweep.") var count = 2_000
    @Option(help: "Sweep workers.") var workers = 2
    @Option(help: "Confirmations before a top-up or sweep is settled.") var confirmations = 1
    @Option(help: "Milliseconds between devchain blocks.") var blockMs = 200
    @Option(help: "Scratch database name (default: <configured database>_bench).") var database: String?

    func validate() throws {
        guard count > 0, workers > 0, confirmations >= 0, blockMs >= 10 else {
            throw ValidationError("count and workers must be positive, block-ms at least 10")
        }
    }

    func run() async throws {
        let settings = Settings(count: count, workers: workers, confirmations: confirmations, blockMs: blockMs)
        try await BenchChain.run(options, database: database, poolSize: 40, seedPrefix: "sweeps", automine: false) { config, db, node, url, logger in
            try await Self.measure(config: config, db: db, node: node, url: url, settings: settings, logger: logger)
        }
    }

    struct Settings: Sendable { var count: Int, workers: Int, confirmations: Int, blockMs: Int }

    static func measure(config base: GatewayConfig, db: Database, node: DevChain, url: String, settings: Settings, logger: Logger) async throws
        -> [(String, String)]
    {
        let seed = try BIP39.seed(fromMnemonic: try BIP39.generateMnemonic(wordCount: 12))
        let seedFile = FileManager.default.temporaryDirectory.appendingPathComponent("bench-sweeps-\(UUID().uuidString).seed").path
        try Hex.encode(seed).write(toFile: seedFile, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: seedFile) }
        let master = try ExtendedPrivateKey(seed: seed)
        let usdt = Coins.canonicalCoinType(ChainKit.ChainKind.evm.format(node.evm.usdt))
        let chainName = "ethereum"
        try await db.execute("DELETE FROM gateway.jobs")
        // A fresh devchain each run: the scanner starts over (the scratch database is kept across runs).
        try await db.execute("DELETE FROM gateway.chain_scanners WHERE chain = 'ethereum'")
        try await db.execute("DELETE FROM gateway.chain_blocks WHERE chain = 'ethereum'")
        let xpub = try master.derived(path: AddressScheme.evm.accountPath(account: 0)).extendedPublicKey.serialized()
        var chain = ChainConfig(name: chainName, kind: .evm, nodeURL: url, chainID: node.evm.chainID, confirmations: settings.confirmations,
                                blockTime: .milliseconds(Int64(settings.blockMs)), requestTimeout: .seconds(10), retryAttempts: 3, scanFrom: 1,
                                scanBatch: 1_000, pollInterval: .milliseconds(50))
        chain.payments.pollInterval = .milliseconds(Int64(max(50, settings.blockMs)))
        chain.payments.rebroadcastEvery = .seconds(30)
        chain.payments.replaceAfter = .seconds(600)
        chain.sweep = SweepConfig(interval: .seconds(3600), maxPerRun: settings.count, coins: [SweepCoinConfig(symbol: "USDT", threshold: 1_000_000)])
        let (hot, addresses) = try await db.transaction { c -> (String, [String]) in
            for coin in [Coin(chain: chainName, mainCoinType: "60", coinType: "60", symbol: "ETH", name: "ETH", coinName: "Ethereum", decimals: 18, isToken: false),
                         Coin(chain: chainName, mainCoinType: "60", coinType: usdt, symbol: "USDT", name: "USDT", coinName: "Ethereum", mainSymbol: "ETH",
                              decimals: 6, isToken: true)]
            where try await Coins.find(mainCoinType: coin.mainCoinType, coinType: coin.coinType, includeDisabled: true, on: c, logger: logger) == nil {
                _ = try await Coins.add(coin, directory: .standard, actor: "bench", on: c, logger: logger)
            }
            let (m, _) = try await Merchants.create(name: "sweep bench \(Date())", actor: "bench", on: c, logger: logger)
            let w = try await Wallets.attach(merchantID: m.id, chain: chainName, xpub: xpub, accountIndex: 0, coldAddress: nil, directory: .standard,
                                             actor: "bench", on: c, logger: logger)
            var addresses: [String] = []
            for start in stride(from: 0, to: settings.count, by: 1_000) {
                addresses += try await Addresses.create(merchantID: m.id, chain: chainName, callURL: "http://127.0.0.1:9/deposits", alias: "bench", walletRef: "",
                                                        count: min(1_000, settings.count - start), maxAddresses: nil, directory: .standard, on: c, logger: logger)
            }
            return (w.hotAddress, addresses)
        }
        _ = try node.evm.fund(try ChainKit.ChainKind.evm.parseAddress(hot), amount: BigUInt(10).power(22))
        for start in stride(from: 0, to: addresses.count, by: 500) {
            _ = try node.evm.transferUSDT(try addresses[start..<min(start + 500, addresses.count)].map {
                (to: try ChainKit.ChainKind.evm.parseAddress($0), amount: BigUInt(10_000_000))
            })
        }
        node.evm.mine(settings.confirmations + 1)
        // Credit the deposits through the scanner, as chain-worker would.
        let scanner = ChainScanner(chain: chain, node: ChainStage.nodeClient(for: chain, logger: logger), database: db, lease: .seconds(30),
                                   backoff: BackoffPolicy(base: .milliseconds(100), factor: 2, cap: .seconds(1)), identity: "bench", logger: logger)
        for _ in 0..<1_000 {
            if case .caughtUp = try await scanner.step() { break }
        }

        var config = base
        config.chains = [chain]
        config.wallet = WalletConfig(seedFile: seedFile)
        let backoff = BackoffPolicy(base: .milliseconds(100), factor: 2, cap: .seconds(2))
        config.stages[.sweep] = WorkerConfig(concurrency: 256, batchSize: 128, pollInterval: .milliseconds(50), lease: .seconds(60), maxAttempts: 100,
                                             backoff: backoff, shutdownGrace: .seconds(5))
        config.stages[.chain] = WorkerConfig(concurrency: 1_024, batchSize: 512, pollInterval: .milliseconds(50), lease: .seconds(60), maxAttempts: 1_000,
                                             backoff: backoff, shutdownGrace: .seconds(5))
        let env = StageRunner.Environment(config: config, database: db, logger: logger)
        var services: [any Service] = []
        for _ in 0..<settings.workers {
            services.append(QueueWorker(database: db, settings: .init(stage: "sweep", config: config.worker(.sweep), handlers: try SweepStage.handlers(env)),
                                        logger: logger))
        }
        services.append(QueueWorker(database: db, settings: .init(stage: "chain", config: config.worker(.chain), handlers: try ChainStage.handlers(env)),
                                    logger: logger))
        let group = ServiceGroup(configuration: .init(services: services, logger: logger))
        let blockMs = settings.blockMs, count = settings.count
        return try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            tasks.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: .milliseconds(Int64(blockMs)))
                    node.evm.mine()
                }
            }
            let meter = await CPUMeter(db: db)
            let cpu0 = meter.read()
            let t0 = ContinuousClock.now
            // The planner runs again (as its scheduled job would) until every fresh address has its sweep.
            let planner = try SweepPlanner(chain: chain, database: db, logger: logger)
            var stored: [Int64] = []
            var reasons: [String: Int] = [:]
            for _ in 0..<50 where stored.count < addresses.count {
                let report = try await planner.plan(dryRun: false)
                stored += report.stored
                for w in report.waiting { reasons[String(w.reason.prefix(60)), default: 0] += 1 }
                if stored.count < addresses.count { try await Task.sleep(for: .milliseconds(200)) }
            }
            let planned = stored.count
            var swept: Int64 = 0
            while swept < Int64(planned) {
                try await Task.sleep(for: .milliseconds(100))
                for try await n in try await db.query("SELECT count(*) FROM gateway.sweeps WHERE id = ANY(\(stored)) AND state = 'swept'").decode(Int64.self) {
                    swept = n
                }
                guard ContinuousClock.now - t0 < .seconds(1_800) else { throw ValidationError("bench: not every sweep finished within 30 min") }
            }
            let elapsed = ContinuousClock.now - t0
            let cpu1 = meter.read()
            await group.triggerGracefulShutdown()
            tasks.cancelAll()
            let rate = Double(planned) / elapsed.inSeconds
            let waited = reasons.sorted { $0.value > $1.value }.prefix(3).map { "\($0.value)× \($0.key)" }.joined(separator: "; ")
            return [("addresses", "\(count)"), ("planned", "\(planned)"), ("planner_waits", waited.isEmpty ? "-" : waited), ("workers", "\(settings.workers)"),
                    ("seconds", String(format: "%.2f", elapsed.inSeconds)), ("sweeps_per_s", String(format: "%.1f", rate))]
                + CPUMeter.figures(from: cpu0, to: cpu1, count: planned, unit: "sweep")
        }
    }
}
