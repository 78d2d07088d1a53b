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
import MerchantSide
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// `gatewayctl bench deposits`: the deposit path's three figures against an in-process devchain.
struct DepositBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deposits",
        abstract: "Deposits credited per second, callbacks delivered per second, and block-to-callback latency.",
        discussion: """
            Runs devchain (fresh seed), a TRON deposit scanner, the callback worker and a merchant receiver \
            (verifying both signatures of every callback) in this process, against a scratch database \
            (<database>_bench, created and migrated when missing). Phase 1: devchain mines --deposits USDT \
            transfers to --addresses deposit addresses, --per-block per block, plus the confirmations; the \
            scanner reads, records and credits them (ledger rows and callback rows in the same transactions): \
            `deposits_credited_per_s`. Phase 2: the callback worker delivers those callbacks over HTTP: \
            `callbacks_delivered_per_s`. Phase 3: scanner and callback worker run as services; --rounds times, \
            one transfer is mined, then its confirming block, and the time from that block's arrival at the node \
            to the callback's arrival at the merchant is measured: `block_to_callback_p50_ms`, `_p99_ms`.
            """)

    @OptionGroup var options: ProcessOptions
    @Option(help: "Deposits in phases 1 and 2.") var deposits = 5_000
    @Option(help: "USDT transfers per block.") var perBlock = 100
    @Option(help: "Deposit addresses they go to.") var addresses = 1_000
    @Option(help: "Confirmations before a deposit is credited.") var confirmations = 3
    @Option(help: "Callback deliveries in flight.") var concurrency = 64
    @Option(help: "Latency rounds in phase 3.") var rounds = 100
    @Option(help: "Scratch database name (default: <configured database>_bench).") var database: String?

    func validate() throws {
        guard deposits > 0, perBlock > 0, addresses > 0, concurrency > 0, rounds > 0, confirmations >= 0 else {
            throw ValidationError("every count must be positive (confirmations may be 0)")
        }
    }

    func run() async throws {
        let settings = (deposits: deposits, perBlock: perBlock, addresses: addresses, confirmations: confirmations, rounds: rounds)
        let concurrency = self.concurrency
        try await BenchChain.run(options, database: database, poolSize: concurrency + 8, seedPrefix: "bench", automine: true, adjust: { config in
            config.api.callbackURLs.allowLoopback = true
            config.callbacks = CallbackSettings(requestTimeout: .seconds(10), perEndpointConcurrency: concurrency, deadAfter: .seconds(86_400))
            config.stages[.callback] = WorkerConfig(concurrency: concurrency, batchSize: min(concurrency, 50), pollInterval: .milliseconds(200),
                                                    lease: .seconds(60), maxAttempts: 100,
                                                    backoff: BackoffPolicy(base: .seconds(1), factor: 2, cap: .seconds(10)), shutdownGrace: .seconds(5))
        }) { config, db, node, url, logger in
            try await Self.measure(config: config, db: db, node: node, url: url, settings: settings, logger: logger)
        }
    }

    static func measure(config: GatewayConfig, db: Database, node: DevChain, url: String,
                        settings: (deposits: Int, perBlock: Int, addresses: Int, confirmations: Int, rounds: Int), logger: Logger) async throws -> [(String, String)] {
        // Set-up: a merchant with a TRON wallet and its addresses, devchain's USDT as a coin.
        let usdt = ChainKit.ChainKind.tron.format(node.tron.usdt)
        let root = try ExtendedPrivateKey(seed: try BIP39.seed(fromMnemonic: "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"))
        let account = UInt32.random(in: 1_000...1_000_000)  // fresh addresses in a scratch database kept across runs
        let xpub = try root.derived(path: .account(coinType: DerivationPath.tronCoinType, account: account)).extendedPublicKey.serialized()
        let (merchant, secrets, addresses) = try await db.transaction { c in
            try await c.query("DELETE FROM gateway.chain_blocks WHERE chain = 'tron'", logger: logger)
            try await c.query("DELETE FROM gateway.chain_scanners WHERE chain = 'tron'", logger: logger)
            if try await Coins.find(mainCoinType: "195", coinType: usdt, includeDisabled: true, on: c, logger: logger) == nil {
                _ = try await Coins.add(Coin(chain: "tron", mainCoinType: "195", coinType: usdt, symbol: "USDT", name: "USDT", coinName: "TRON", decimals: 6,
                                             isToken: true), directory: .standard, actor: "bench", on: c, logger: logger)
            }
            let (m, secrets) = try await Merchants.create(name: "deposit bench \(Date())", actor: "bench", on: c, logger: logger)
            _ = try await Wallets.attach(merchantID: m.id, chain: "tron", xpub: xpub, accountIndex: Int(account), coldAddress: nil, directory: .standard,
                                         actor: "bench", on: c, logger: logger)
            return (m.id, secrets, [String]())
        }
        let receiver = try await MerchantReceiver(apiKey: secrets.apiKey, webhookSecret: secrets.webhookSecret)
        var created: [String] = addresses
        while created.count < settings.addresses {
            let n = min(500, settings.addresses - created.count)
            created += try await db.transaction { c in
                try await Addresses.create(merchantID: merchant, chain: "tron", callURL: receiver.baseURL + "/cb", alias: "", walletRef: "", count: n,
                                           maxAddresses: nil, directory: .standard, on: c, logger: logger)
            }
        }
        let accounts = try created.map { try ChainKit.ChainKind.tron.parseAddress($0) }
        let chain = ChainConfig(name: "tron", kind: .tron, nodeURL: url, confirmations: settings.confirmations, blockTime: .seconds(3),
                                scanFrom: UInt64(node.tron.height + 1), scanBatch: 50, pollInterval: .milliseconds(5))
        let scanner = ChainScanner(chain: chain, node: ChainStage.nodeClient(for: chain, logger: logger), database: db, lease: .seconds(60),
                                   backoff: BackoffPolicy(base: .milliseconds(100), factor: 2, cap: .seconds(2)), logger: logger)

        // Phase 1: detect and credit.
        var sent = 0
        while sent < settings.deposits {
            let n = min(settings.perBlock, settings.deposits - sent)
            try node.tron.transferUSDT((0..<n).map { i in (to: accounts[(sent + i) % accounts.count], amount: BigUInt(1_000_000 + sent + i)) })
            sent += n
        }
        node.tron.mine(max(1, settings.confirmations))
        let meter = await CPUMeter(db: db)
        let cpu1 = meter.read()
        let t1 = ContinuousClock.now
        while true {
            let step = try await scanner.step()
            if case .caughtUp = step { break }
            if case .scanned(_, _, _, _, _, 0) = step { break }
        }
        let phase1 = seconds(ContinuousClock.now - t1)
        let cpu1End = meter.read()
        let confirmed = try await count(db, "SELECT count(*) FROM gateway.deposits WHERE merchant_id = \(merchant) AND status = 'confirmed'")
        guard confirmed == Int64(settings.deposits) else { throw ValidationError("bench: \(confirmed) of \(settings.deposits) deposits credited") }

        // Phase 2: deliver the callbacks. Statistics first, as a running system has them (autovacuum
        // would take up to a minute to notice thousands of new rows; plans made blind scan them).
        try await db.execute("ANALYZE gateway.callbacks, gateway.jobs, gateway.deposits")
        let env = StageRunner.Environment(config: config, database: db, logger: logger)
        let parts = try CallbackStage.parts(env)
        let worker = QueueWorker(database: db, settings: .init(stage: "callback", config: config.worker(.callback), handlers: parts.handlers), logger: logger)
        let t2 = ContinuousClock.now
        let cpu2 = meter.read()
        let group = ServiceGroup(configuration: .init(services: [worker] + parts.services, logger: logger))
        return try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            // Watch the receiver (free), then the database (the definition of delivered) sparingly.
            while receiver.received.count < settings.deposits { try await Task.sleep(for: .milliseconds(2)) }
            var delivered: Int64 = 0
            while delivered < Int64(settings.deposits) {
                try await Task.sleep(for: .milliseconds(5))
                delivered = try await count(db, "SELECT count(*) FROM gateway.callbacks WHERE merchant_id = \(merchant) AND state = 'delivered'")
            }
            let phase2 = seconds(ContinuousClock.now - t2)
            let cpu2End = meter.read()
            let valid = receiver.received.allSatisfy { $0.udunSignatureValid && $0.webhookSignatureValid }

            // Phase 3: block → callback latency, scanner and worker running.
            let scanning = ServiceGroup(configuration: .init(services: [scanner], logger: logger))
            tasks.addTask { try await scanning.run() }
            var latencies: [Double] = []
            for i in 0..<settings.rounds {
                let before = receiver.received.count
                try node.tron.transferUSDT([(to: accounts[i % accounts.count], amount: 5_000_000)])
                if settings.confirmations > 0 { node.tron.mine(settings.confirmations) }
                let t0 = ContinuousClock.now
                let deadline = t0 + .seconds(30)
                while receiver.received.count == before, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(1)) }
                guard receiver.received.count > before, let arrival = receiver.received.last?.at else {
                    throw ValidationError("bench: round \(i) got no callback within 30 s")
                }
                latencies.append(seconds(arrival - t0) * 1000)
            }
            await scanning.triggerGracefulShutdown()
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
            await receiver.stop()
            latencies.sort()
            func pct(_ p: Double) -> String { String(format: "%.1f", latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))]) }
            return [
                ("deposits", "\(settings.deposits) in \(settings.deposits / settings.perBlock) blocks of \(settings.perBlock), \(settings.addresses) addresses, "
                    + "\(settings.confirmations) confirmations"),
                ("deposits_credited_per_s", String(format: "%.0f", Double(settings.deposits) / phase1)),
            ] + CPUMeter.figures(from: cpu1, to: cpu1End, count: settings.deposits, unit: "deposit_credited") + [
                ("callbacks_delivered_per_s", String(format: "%.0f", Double(settings.deposits) / phase2)),
            ] + CPUMeter.figures(from: cpu2, to: cpu2End, count: settings.deposits, unit: "callback_delivered") + [
                ("callbacks_delivered", "\(delivered) (signatures verified: \(valid ? "all" : "NOT ALL"))"),
                ("block_to_callback_p50_ms", pct(0.5)),
                ("block_to_callback_p99_ms", pct(0.99)),
            ]
        }
    }

    static func count(_ db: Database, _ sql: PostgresQuery) async throws -> Int64 {
        var n: Int64 = 0
        for try await v in try await db.query(sql).decode(Int64.self) { n = v }
        return n
    }
}
