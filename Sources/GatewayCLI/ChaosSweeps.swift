import ArgumentParser
import AsyncHTTPClient
import BigInt
import ChainKit
import Foundation
import GatewayCore
import GatewayRuntime
import GatewayServices
import GatewayStages
import Logging
import PostgresNIO

/// `gatewayctl chaos sweeps`: N deposit addresses holding USDT on EVM and TRON swept by several
/// sweep-worker processes while one of them is SIGKILLed every few seconds and devchain fails requests;
/// then every invariant is counted.
struct ChaosSweeps: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sweeps",
        abstract: "Sweep N deposit addresses under SIGKILLs and node faults; count that each was swept exactly once.",
        discussion: """
            Needs a running devchain (--devchain; started by scripts/chaos-sweeps.sh) that the configuration's chains point at, \
            with a sweep section for USDT on both chains, and the stage executables beside gatewayctl. Sets up a fresh merchant \
            with wallets from the configured seed (a new account) and a watch-only cold address per wallet, funds its hot \
            wallets with the native coin (gas for top-ups), creates --addresses deposit addresses (half TRON, half Ethereum) and \
            sends each a random USDT amount (credited by chain-worker). Then --sweep-workers sweep-worker processes sweep them \
            while every --kill-every seconds one of them, at random, is SIGKILLed and started again, and devchain fails \
            --fault-rate of requests. At the end it prints the counts and exits 1 unless: every address was swept exactly once \
            (one sweep, one confirmed top-up, one confirmed sweep transaction); every deposit address holds no USDT; the hot and \
            cold addresses received exactly the swept totals; the merchant's balances did not move; the ledger is consistent and \
            reconciles with the chain (every deposit, hot and cold address and coin of both chains).
            """)

    @OptionGroup var options: ProcessOptions
    @Option(help: "Base URL of the devchain the configuration points at.") var devchain = "http://127.0.0.1:8545"
    @Option(help: "Deposit addresses to sweep (half TRON, half Ethereum).") var addresses = 500
    @Option(help: "sweep-worker processes.") var sweepWorkers = 3
    @Option(help: "Seconds between SIGKILLs of a random sweep-worker.") var killEvery = 2.0
    @Option(help: "Share of devchain requests that fail (HTTP 500 / node errors).") var faultRate = 0.2
    @Option(help: "Seconds to wait for every sweep.") var timeout = 900.0
    @Option(help: "Folder for the child processes' logs.") var logs = ".local/logs/chaos-sweeps"

    func validate() throws {
        guard addresses >= 2, sweepWorkers >= 1, killEvery > 0, (0...0.9).contains(faultRate), timeout > 0 else {
            throw ValidationError("addresses ≥ 2, sweep-workers ≥ 1, kill-every > 0, fault-rate 0…0.9, timeout > 0")
        }
    }

    func run() async throws {
        let settings = Settings(addresses: addresses, sweepWorkers: sweepWorkers, killEvery: killEvery, faultRate: faultRate, timeout: timeout,
                                logs: logs)
        try await ChaosWithdrawals.execute(options, devchain: devchain, logs: logs) { ctx, node, children, started in
            try await Self.runChaos(ctx, settings, node: node, children: children, started: started)
        }
    }

    /// The options the run needs, as one Sendable value.
    struct Settings: Sendable {
        var addresses: Int, sweepWorkers: Int, killEvery: Double, faultRate: Double, timeout: Double, logs: String
    }

    static func say(_ s: String) { FileHandle.standardOutput.write(Data("==> \(s)\n".utf8)) }

    static func count(_ db: Database, _ sql: PostgresQuery) async throws -> Int64 {
        var n: Int64 = 0
        for try await v in try await db.query(sql).decode(Int64.self) { n = v }
        return n
    }

    static func runChaos(_ ctx: CLIContext, _ settings: Settings, node: DevchainControl, children: Children, started: ContinuousClock.Instant) async throws
        -> ChaosWithdrawals.Report
    {
        let (addresses, sweepWorkers, killEvery, faultRate, timeout, logs) = (settings.addresses, settings.sweepWorkers, settings.killEvery,
                                                                              settings.faultRate, settings.timeout, settings.logs)
        let logger = ctx.logger
        let db = ctx.database
        let chains = ctx.config.chains.filter { $0.sweep?.coins["USDT"] != nil && $0.token("USDT") != nil }
        guard chains.contains(where: { $0.kind == .tron }), chains.contains(where: { $0.kind == .evm }) else {
            throw ValidationError("the configuration needs a tron and an evm chain, each sweeping USDT (chains.<name>.sweep.coins.USDT)")
        }
        let (merchantID, _) = try await DemoCommand.Deposits.setUp(ctx, chains: chains, merchantName: "Chaos sweeps \(Int(Date().timeIntervalSince1970))",
                                                                   account: nil)
        var hot: [String: String] = [:], cold: [String: String] = [:], usdt: [String: Int32] = [:]
        var deposits: [String: [String]] = [:]
        let directory = ChainDirectory(config: ctx.config)
        try await db.transaction { c in
            for chain in chains {
                // A fresh watch-only cold address: its key is thrown away at once.
                let key = try Secp256k1.PrivateKey(Data((0..<32).map { _ in UInt8.random(in: 0...255) }))
                let address = (chain.kind == .evm ? AddressScheme.evm : AddressScheme.tron).address(for: key.publicKey)
                try await c.query("UPDATE gateway.wallets SET cold_address = \(address) WHERE merchant_id = \(merchantID) AND chain = \(chain.name)",
                                  logger: logger)
                cold[chain.name] = address
                let n = chain.kind == .tron ? addresses / 2 + addresses % 2 : addresses / 2
                deposits[chain.name] = try await Addresses.create(merchantID: merchantID, chain: chain.name, callURL: "http://127.0.0.1:9/deposits",
                                                                  alias: "chaos", walletRef: "", count: n, maxAddresses: nil, directory: directory,
                                                                  on: c, logger: logger)
            }
            for w in try await Wallets.list(merchantID: merchantID, on: c, logger: logger) { hot[w.chain] = w.hotAddress }
            for chain in chains {
                for try await id in try await c.query("""
                    SELECT id FROM gateway.coins WHERE chain = \(chain.name) AND is_token AND symbol = 'USDT' ORDER BY id LIMIT 1
                    """, logger: logger).decode(Int32.self) { usdt[chain.name] = id }
            }
        }
        // Gas for the top-ups, and each deposit address's USDT: 150…5000 USDT in whole cents.
        var sent: [String: BigUInt] = [:]
        var hotBefore: [String: BigUInt] = [:]
        for chain in chains {
            let name = chain.kind == .tron ? "tron" : "evm"
            _ = try await node.post("/devchain/\(name)/fund", ["address": .string(hot[chain.name]!),
                                                               "amount": .string(chain.kind == .tron ? "900000000000" : "1000000000000000000000")])
            hotBefore[chain.name] = try await node.usdtBalance(chain: name, address: hot[chain.name]!)
            for address in deposits[chain.name]! {
                let amount = BigUInt(Int.random(in: 15_000...500_000)) * 10_000
                _ = try await node.post("/devchain/\(name)/usdt", ["to": .string(address), "amount": .string(amount.description)])
                sent[chain.name, default: 0] += amount
            }
        }
        say("\(addresses) deposit addresses funded (\(chains.map { "\($0.name) \(sent[$0.name] ?? 0)" }.joined(separator: ", ")) USDT base units)")
        try children.start("chain-worker")
        let credited = try await poll(timeout: .seconds(300)) {
            try await count(db, "SELECT count(*) FROM gateway.deposits WHERE merchant_id = \(merchantID) AND status = 'confirmed'") == Int64(addresses)
        }
        guard credited else { throw ValidationError("chaos: the deposits were not credited within 300 s (see \(logs)/chain-worker*.log)") }
        let available = try await db.withConnection { c in try await Ledger.available(merchantID: merchantID, on: c, logger: logger) }

        say("devchain: \(Int(faultRate * 100)) % of requests fail; starting \(sweepWorkers) sweep-workers")
        _ = try await node.post("/devchain/faults", ["mode": .string("http500"), "rate": .string(String(faultRate / 2)), "scope": .string("any")])
        _ = try await node.post("/devchain/faults", ["mode": .string("node_error"), "rate": .string(String(faultRate / 2)), "scope": .string("any")])
        var workers: [Int] = []
        for _ in 0..<sweepWorkers { workers.append(try children.start("sweep-worker")) }
        let deadline = ContinuousClock.now + .seconds(timeout)
        var kills = 0
        var lastKill = ContinuousClock.now, lastReport = ContinuousClock.now
        var swept: Int64 = 0
        while ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(250))
            if ContinuousClock.now - lastKill >= .milliseconds(Int64(killEvery * 1000)) {
                lastKill = ContinuousClock.now
                let victim = workers.randomElement()!
                await children.kill(victim)
                kills += 1
                workers.removeAll { $0 == victim }
                workers.append(try children.start("sweep-worker"))
            }
            swept = (try? await count(db, "SELECT count(*) FROM gateway.sweeps WHERE merchant_id = \(merchantID) AND state = 'swept'")) ?? swept
            if ContinuousClock.now - lastReport >= .seconds(5) {
                lastReport = ContinuousClock.now
                say("\(swept)/\(addresses) swept, \(kills) sweep-workers killed so far")
            }
            if swept == Int64(addresses) { break }
        }
        say("stopping the chaos: clearing devchain faults")
        try? await node.post("/devchain/faults/clear", [:])
        let elapsed = ContinuousClock.now - started

        var report = ChaosWithdrawals.Report()
        report.lines.append("chaos sweeps: \(addresses) deposit addresses, \(sweepWorkers) sweep-workers, \(kills) SIGKILLs, fault rate \(faultRate), "
            + "\(String(format: "%.1f", elapsed.inSeconds)) s")
        var byState: [String: Int64] = [:], perAddressMax: Int64 = 0, roles: [String: Int64] = [:]
        var toRole: [String: [String: BigUInt]] = [:]
        for try await (s, n) in try await db.query("SELECT state, count(*) FROM gateway.sweeps WHERE merchant_id = \(merchantID) GROUP BY state")
            .decode((String, Int64).self) { byState[s] = n }
        for try await n in try await db.query("""
            SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM gateway.sweeps WHERE merchant_id = \(merchantID) GROUP BY address_id) x
            """).decode(Int64.self) { perAddressMax = n }
        for try await (chain, role, n, total) in try await db.query("""
            SELECT chain, destination_role, count(*), sum(amount)::text FROM gateway.sweeps WHERE merchant_id = \(merchantID) AND state = 'swept'
            GROUP BY chain, destination_role
            """).decode((String, String, Int64, String).self) {
            roles[role, default: 0] += n
            toRole[chain, default: [:]][role] = BigUInt(total) ?? 0
        }
        report.check(byState["swept"] == Int64(addresses) && byState.count == 1 && perAddressMax == 1,
                     "addresses swept once each: \(byState["swept"] ?? 0)/\(addresses) (by state: \(byState); at most \(perAddressMax) sweep per address); "
                        + "to hot \(roles["hot"] ?? 0), to cold \(roles["cold"] ?? 0)")
        var txs: (topups: Int64, sweeps: Int64, all: Int64, maxTopups: Int64, maxSweeps: Int64) = (0, 0, 0, 0, 0)
        for try await r in try await db.query("""
            SELECT count(*) FILTER (WHERE o.purpose = 'topup' AND o.state = 'confirmed'), count(*) FILTER (WHERE o.purpose = 'sweep' AND o.state = 'confirmed'),
                   count(*),
                   coalesce(max((SELECT count(*) FROM gateway.outgoing_txs t WHERE t.purpose = 'topup' AND t.ref_id = s.id AND t.state = 'confirmed')), 0),
                   coalesce(max((SELECT count(*) FROM gateway.outgoing_txs t WHERE t.purpose = 'sweep' AND t.ref_id = s.id AND t.state = 'confirmed')), 0)
            FROM gateway.sweeps s JOIN gateway.outgoing_txs o ON o.ref_id = s.id AND o.purpose IN ('topup', 'sweep')
            WHERE s.merchant_id = \(merchantID)
            """).decode((Int64, Int64, Int64, Int64, Int64).self) { txs = r }
        report.check(txs.sweeps == Int64(addresses) && txs.maxSweeps == 1 && txs.topups <= Int64(addresses) && txs.maxTopups <= 1,
                     "transactions: \(txs.topups) top-ups and \(txs.sweeps) sweeps confirmed (at most \(txs.maxTopups) top-up and \(txs.maxSweeps) sweep "
                        + "per address), \(txs.all) signed in all")
        var left = 0
        for chain in chains {
            for address in deposits[chain.name]! where try await node.usdtBalance(chain: chain.kind == .tron ? "tron" : "evm", address: address) != 0 {
                left += 1
            }
        }
        report.check(left == 0, "deposit addresses still holding USDT: \(left)")
        for chain in chains {
            let name = chain.kind == .tron ? "tron" : "evm"
            let hotNow = try await node.usdtBalance(chain: name, address: hot[chain.name]!)
            let coldNow = try await node.usdtBalance(chain: name, address: cold[chain.name]!)
            let toHot = toRole[chain.name]?["hot"] ?? 0, toCold = toRole[chain.name]?["cold"] ?? 0
            report.check(hotNow == (hotBefore[chain.name] ?? 0) + toHot && coldNow == toCold && toHot + toCold == sent[chain.name],
                         "\(chain.name): hot received \(toHot), cold holds \(coldNow) (swept to cold \(toCold)); deposited \(sent[chain.name] ?? 0)")
        }
        let availableAfter = try await db.withConnection { c in try await Ledger.available(merchantID: merchantID, on: c, logger: logger) }
        let problems = try await db.withConnection { c in try await Ledger.inconsistencies(on: c, logger: logger) }
        report.check(problems.isEmpty && availableAfter == available,
                     "ledger: \(problems.count) inconsistencies; merchant balances unchanged by the sweeps: \(availableAfter == available)")
        for chain in chains {
            let client = ChainStage.nodeClient(for: chain, logger: logger)
            var r = try await Reconciliation.run(chain: chain.name, node: client, database: db, logger: logger)
            for _ in 0..<60 where !r.isClean {
                try await Task.sleep(for: .milliseconds(500))
                r = try await Reconciliation.run(chain: chain.name, node: client, database: db, logger: logger)
            }
            let sample = r.differences.prefix(3).map { "\($0.role) \($0.address) \($0.symbol) expected \($0.expected) node \($0.node)" }
                + r.ledgerDifferences.prefix(3).map { "ledger \($0.symbol) \($0.ledger) vs records \($0.records)" }
            report.check(r.isClean, "ledger reconcile \(chain.name): \(r.addresses) addresses (deposit, hot, cold), \(r.coins) coins, "
                            + "\(r.differences.count + r.ledgerDifferences.count) differences\(sample.isEmpty ? "" : " — " + sample.joined(separator: "; "))")
        }
        return report
    }

    static func poll(timeout: Duration, _ condition: @Sendable () async throws -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if (try? await condition()) == true { return true }
            try await Task.sleep(for: .milliseconds(250))
        }
        return try await condition()
    }
}
