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
import MerchantSide
import NIOCore
import NIOHTTP1
import PostgresNIO
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// `gatewayctl chaos …`: exactly-once checks under failure, against real processes.
struct Chaos: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the gateway's processes under failure and check that nothing was paid twice or lost.",
        subcommands: [ChaosWithdrawals.self, ChaosSweeps.self, ChaosFailover.self])
}

/// `gatewayctl chaos withdrawals`: N withdrawals on EVM and TRON paid by several autopay-worker
/// processes while one of them is SIGKILLed every few seconds, devchain fails requests and drops
/// broadcasts, and PostgreSQL is restarted once; then every invariant is counted.
struct ChaosWithdrawals: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "withdrawals",
        abstract: "Pay N withdrawals under SIGKILLs, node faults and a database restart; count that each was paid exactly once.",
        discussion: """
            Needs a running devchain (--devchain; started by scripts/chaos-withdrawals.sh) that the configuration's chains \
            point at, and the stage executables beside gatewayctl. Sets up a fresh merchant with wallets from the configured \
            seed (a new account), funds its hot wallets and deposits its balance through devchain (credited by chain-worker), \
            then submits --count withdrawals (half TRON, half Ethereum, half of them proxypay) to fresh destinations, approved \
            by rule. Meanwhile --autopay-workers autopay-worker processes pay them; every --kill-every one of them, at random, \
            is SIGKILLed and started again; devchain fails --fault-rate of requests and loses --drop-rate of accepted \
            transactions; --pg-restart-command runs once a third of the way. At the end it prints the counts and exits 1 \
            unless: every withdrawal is confirmed; every destination holds exactly its amount on chain; each withdrawal has one \
            confirmed transaction (and the Ethereum hot address's nonce equals the number of Ethereum payments); callbacks 1 \
            and 3 were delivered once per withdrawal; the ledger is consistent, reconciles with the chain (ledger reconcile, \
            every address and coin of both chains), and the merchant's reservations are empty.
            """)

    @OptionGroup var options: ProcessOptions
    @Option(help: "Base URL of the devchain the configuration points at.") var devchain = "http://127.0.0.1:8545"
    @Option(help: "Withdrawals to pay.") var count = 300
    @Option(help: "autopay-worker processes.") var autopayWorkers = 4
    @Option(help: "Seconds between SIGKILLs of a random autopay-worker.") var killEvery = 3.0
    @Option(help: "Share of devchain requests that fail (HTTP 500 / node errors).") var faultRate = 0.2
    @Option(help: "Share of accepted transactions devchain silently drops.") var dropRate = 0.05
    @Option(help: "Shell command that restarts PostgreSQL (run once, a third of the way); empty: no restart.") var pgRestartCommand = ""
    @Option(help: "Seconds to wait for every withdrawal to confirm.") var timeout = 600.0
    @Option(help: "Folder for the child processes' logs.") var logs = ".local/logs/chaos"

    func validate() throws {
        guard count >= 2, autopayWorkers >= 1, killEvery > 0, (0...0.9).contains(faultRate), (0...0.5).contains(dropRate), timeout > 0 else {
            throw ValidationError("count ≥ 2, autopay-workers ≥ 1, kill-every > 0, fault-rate 0…0.9, drop-rate 0…0.5, timeout > 0")
        }
    }

    func run() async throws {
        let this = self
        try await Self.execute(options, devchain: devchain, logs: logs) { ctx, node, children, started in
            try await this.runChaos(ctx, node: node, children: children, started: started)
        }
    }

    /// A chaos run of either script: child processes of this build (same configuration file, logs in
    /// `logs`), devchain's control endpoints at `devchain`; `body` runs the chaos and returns its report.
    /// Whether it returns or fails, the children are stopped, devchain's faults cleared and the HTTP client
    /// shut down; then the report is printed and a failed check exits 1.
    static func execute(_ options: ProcessOptions, devchain: String, logs: String,
                        _ body: @escaping @Sendable (CLIContext, DevchainControl, Children, ContinuousClock.Instant) async throws -> Report) async throws {
        let configPath = URL(fileURLWithPath: options.configPath).standardizedFileURL.path
        let binDir = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
        try FileManager.default.createDirectory(atPath: logs, withIntermediateDirectories: true)
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        let node = DevchainControl(http: http, url: devchain)
        let children = Children(bin: binDir, config: configPath, logs: logs)
        let started = ContinuousClock.now
        let outcome: Result<Report, any Error>
        do {
            outcome = .success(try await CLIContext.with(options, label: "gateway.chaos") { ctx in try await body(ctx, node, children, started) })
        } catch {
            outcome = .failure(error)
        }
        children.stopAll()
        try? await node.post("/devchain/faults/clear", [:])
        try? await http.shutdown()
        let report = try outcome.get()
        FileHandle.standardOutput.write(Data((report.lines.joined(separator: "\n") + "\n").utf8))
        if !report.ok { throw ExitCode(1) }
    }

    struct Report: Sendable {
        var lines: [String] = []
        var ok = true
        mutating func check(_ condition: Bool, _ line: String) {
            lines.append((condition ? "ok    " : "FAIL  ") + line)
            if !condition { ok = false }
        }
    }

    /// Progress lines, unbuffered (the script's output is a pipe).
    func say(_ s: String) { FileHandle.standardOutput.write(Data("==> \(s)\n".utf8)) }

    func runChaos(_ ctx: CLIContext, node: DevchainControl, children: Children, started: ContinuousClock.Instant) async throws -> Report {
        let logger = ctx.logger
        let db = ctx.database
        let chains = ctx.config.chains
        guard let tronChain = chains.first(where: { $0.kind == .tron }), let evmChain = chains.first(where: { $0.kind == .evm }),
            let tronUSDT = tronChain.tokens.first, let evmUSDT = evmChain.tokens.first
        else { throw ValidationError("the configuration needs a tron and an evm chain, each with a token") }

        // Set-up: coins, a merchant with wallets on a fresh account of the seed, deposit addresses.
        let (merchantID, _) = try await DemoCommand.Deposits.setUp(ctx, chains: chains, merchantName: "Chaos \(Int(Date().timeIntervalSince1970))",
                                                                   account: nil)
        try await db.transaction { c in
            try await c.query("UPDATE gateway.merchants SET auto_payment = true WHERE id = \(merchantID)", logger: logger)
        }
        var coins: [String: Coin] = [:]
        var hot: [String: String] = [:]
        var deposit: [String: String] = [:]
        try await db.withConnection { c in
            for chain in [tronChain, evmChain] {
                let token = chain.kind == .tron ? tronUSDT : evmUSDT
                coins[chain.name] = try await Coins.find(mainCoinType: chain.kind == .tron ? "195" : "60",
                                                         coinType: Coins.canonicalCoinType(chain.kind.format(token.contract)), on: c, logger: logger)
            }
            for w in try await Wallets.list(merchantID: merchantID, on: c, logger: logger) { hot[w.chain] = w.hotAddress }
        }
        // The merchant receiver: counts every POST per (tradeId, status).
        let secrets = try await db.withConnection { c in try await Merchants.signingSecrets(merchantID, on: c, logger: logger) }
        guard let secrets else { throw ValidationError("chaos: merchant \(merchantID) has no secrets") }
        let receiver = try await MerchantReceiver(apiKey: secrets.apiKey, webhookSecret: secrets.webhookSecret)
        defer { Task { await receiver.stop() } }
        try await db.transaction { c in
            for chain in [tronChain, evmChain] {
                deposit[chain.name] = try await Addresses.create(merchantID: merchantID, chain: chain.name, callURL: receiver.baseURL + "/deposits",
                                                                 alias: "chaos", walletRef: "", count: 1, maxAddresses: nil,
                                                                 directory: ChainDirectory(config: ctx.config), on: c, logger: logger)[0]
            }
        }
        guard let tronCoin = coins[tronChain.name], let evmCoin = coins[evmChain.name], let tronHot = hot[tronChain.name], let evmHot = hot[evmChain.name]
        else { throw ValidationError("chaos: coins or wallets missing after set-up") }

        // Amounts: random whole cents of 1…50 USDT, each to a fresh destination.
        struct Planned: Sendable { var chain: ChainConfig; var coin: Coin; var destination: String; var amount: BigUInt; var proxypay: Bool }
        var planned: [Planned] = []
        for i in 0..<count {
            let chain = i % 2 == 0 ? tronChain : evmChain
            let key = try Secp256k1.PrivateKey(Data((0..<32).map { _ in UInt8.random(in: 0...255) }))
            let destination = chain.kind == .tron ? TronAddress(publicKey: key.publicKey).base58 : EVMAddress(publicKey: key.publicKey).checksummed
            let cents = BigUInt(Int.random(in: 100...5_000))
            planned.append(Planned(chain: chain, coin: chain.kind == .tron ? tronCoin : evmCoin, destination: destination,
                                   amount: cents * 10_000, proxypay: i % 4 < 2))
        }
        let needed = planned.reduce(into: [String: BigUInt]()) { $0[$1.chain.name, default: 0] += $1.amount }

        say("funding hot wallets \(tronHot) / \(evmHot) and depositing the merchant's balance")
        for chain in [tronChain, evmChain] {
            let name = chain.kind == .tron ? "tron" : "evm"
            let total = needed[chain.name] ?? 0
            _ = try await node.post("/devchain/\(name)/fund", ["address": .string(hot[chain.name]!),
                                                               "amount": .string(chain.kind == .tron ? "50000000000" : "100000000000000000000")])
            // Twice what is paid: autopay counts payments in flight against the balance until it sees them mined.
            _ = try await node.post("/devchain/\(name)/usdt", ["to": .string(hot[chain.name]!), "amount": .string((total * 2).description)])
            _ = try await node.post("/devchain/\(name)/usdt", ["to": .string(deposit[chain.name]!), "amount": .string((total * 2).description)])
        }

        // The pipeline: review, chain (deposits + confirmations), callbacks, and the autopay workers under fire.
        say("starting review-worker, 2 chain-workers, callback-worker and \(autopayWorkers) autopay-workers")
        try children.start("review-worker")
        try children.start("chain-worker")
        try children.start("chain-worker")
        try children.start("callback-worker")
        var autopay: [Int] = []
        for _ in 0..<autopayWorkers { autopay.append(try children.start("autopay-worker")) }

        let credited = try await poll(timeout: .seconds(120)) {
            let a = try await db.withConnection { c in try await Ledger.available(merchantID: merchantID, on: c, logger: logger) }
            return (a[tronCoin.id] ?? 0) >= BigInt(needed[tronChain.name] ?? 0) && (a[evmCoin.id] ?? 0) >= BigInt(needed[evmChain.name] ?? 0)
        }
        guard credited else { throw ValidationError("chaos: the merchant's deposits were not credited within 120 s (see \(logs)/chain-worker*.log)") }


        say("devchain: \(Int(faultRate * 100)) % of requests fail, \(Int(dropRate * 100)) % of accepted transactions are dropped")
        _ = try await node.post("/devchain/faults", ["mode": .string("http500"), "rate": .string(String(faultRate / 2)), "scope": .string("any")])
        _ = try await node.post("/devchain/faults", ["mode": .string("node_error"), "rate": .string(String(faultRate / 2)), "scope": .string("any")])
        for name in ["evm", "tron"] { _ = try await node.post("/devchain/\(name)/pool-faults", ["drop_rate": .string(String(dropRate))]) }

        say("submitting \(count) withdrawals")
        let callURL = receiver.baseURL + "/withdrawals"
        var ids: [Int64] = []
        let policy = CallbackURLPolicy(allowLoopback: true)
        let directory = ChainDirectory(config: ctx.config)
        for chunk in stride(from: 0, to: planned.count, by: 50) {
            let slice = planned[chunk..<min(chunk + 50, planned.count)]
            let made = try await db.transaction { c -> [Int64] in
                var out: [Int64] = []
                for (offset, p) in slice.enumerated() {
                    out.append(try await Withdrawals.submit(
                        WithdrawalRequest(merchantID: merchantID, mainCoinType: p.coin.mainCoinType, coinType: p.coin.coinType, address: p.destination,
                                          amount: CoinAmount.format(p.amount, decimals: p.coin.decimals), callURL: callURL,
                                          businessID: "chaos-\(chunk + offset)", proxypay: p.proxypay),
                        directory: directory, callbackPolicy: policy, on: c, logger: logger))
                }
                return out
            }
            ids += made
        }

        // Chaos until every withdrawal is confirmed.
        let deadline = ContinuousClock.now + .seconds(timeout)
        var restartedDatabase = pgRestartCommand.isEmpty
        var kills = 0
        var lastKill = ContinuousClock.now
        var confirmed: Int64 = 0
        var lastReport = ContinuousClock.now
        while ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(250))
            if ContinuousClock.now - lastKill >= .milliseconds(Int64(killEvery * 1000)) {
                lastKill = ContinuousClock.now
                let victim = autopay.randomElement()!
                await children.kill(victim)
                kills += 1
                autopay.removeAll { $0 == victim }
                autopay.append(try children.start("autopay-worker"))
            }
            confirmed = (try? await countRows(db, "SELECT count(*) FROM gateway.withdrawals WHERE id = ANY(\(ids)) AND state = 'confirmed'")) ?? confirmed
            if !restartedDatabase, confirmed >= Int64(count / 3) {
                restartedDatabase = true
                say("restarting PostgreSQL (\(confirmed)/\(count) confirmed)")
                let status = await Children.run(["/bin/bash", "-c", pgRestartCommand], quiet: true, timeout: .seconds(120))
                if status != 0 { say("the restart command exited \(status)") }
            }
            if ContinuousClock.now - lastReport >= .seconds(5) {
                lastReport = ContinuousClock.now
                say("\(confirmed)/\(count) confirmed, \(kills) autopay-workers killed so far")
            }
            if confirmed == Int64(count) { break }
        }
        say("stopping the chaos: clearing devchain faults")
        try? await node.post("/devchain/faults/clear", [:])
        for name in ["evm", "tron"] { _ = try? await node.post("/devchain/\(name)/pool-faults", ["drop_rate": .string("0")]) }
        // Let callbacks drain (they were sent while the faults were on).
        let allIDs = ids
        let expected = Int64(2 * count)
        _ = try await poll(timeout: .seconds(120)) {
            try await countRows(db, """
                SELECT count(*) FROM gateway.callbacks WHERE trade_type = 2 AND trade_id = ANY(\(allIDs)) AND status IN (1, 3) AND state = 'delivered'
                """) >= expected
        }
        let elapsed = ContinuousClock.now - started

        // The counts.
        var report = Report()
        report.lines.append("chaos: \(count) withdrawals (\(count / 2 + count % 2) TRON, \(count / 2) Ethereum), \(autopayWorkers) autopay-workers, "
            + "\(kills) SIGKILLs, database restarted: \(pgRestartCommand.isEmpty ? "no" : "yes"), fault rate \(faultRate), drop rate \(dropRate), "
            + "\(String(format: "%.1f", elapsed.inSeconds)) s")
        let byState = try await db.withConnection { c -> [String: Int64] in
            var out: [String: Int64] = [:]
            for try await (s, n) in try await c.query("SELECT state, count(*) FROM gateway.withdrawals WHERE id = ANY(\(ids)) GROUP BY state",
                                                      logger: logger).decode((String, Int64).self) { out[s] = n }
            return out
        }
        report.check(byState["confirmed"] == Int64(count), "withdrawals confirmed: \(byState["confirmed"] ?? 0)/\(count) (by state: \(byState))")
        // Destinations hold exactly their amounts.
        var exact = 0
        var wrong: [String] = []
        let sent = try await db.withConnection { c -> [Int64: BigUInt] in
            var out: [Int64: BigUInt] = [:]
            for try await (id, a) in try await c.query("SELECT id, coalesce(sent_amount, 0)::text FROM gateway.withdrawals WHERE id = ANY(\(ids))",
                                                       logger: logger).decode((Int64, String).self) { out[id] = BigUInt(a) ?? 0 }
            return out
        }
        for (i, p) in planned.enumerated() {
            let balance = try await node.usdtBalance(chain: p.chain.kind == .tron ? "tron" : "evm", address: p.destination)
            if balance == sent[ids[i]] && balance == p.amount { exact += 1 } else if wrong.count < 5 {
                wrong.append("\(p.destination) holds \(balance), expected \(p.amount)")
            }
        }
        report.check(exact == count, "destinations holding exactly their amount: \(exact)/\(count)\(wrong.isEmpty ? "" : " — " + wrong.joined(separator: "; "))")
        let txCounts = try await db.withConnection { c -> (confirmed: Int64, signed: Int64, replaced: Int64, expired: Int64, maxPerWithdrawal: Int64) in
            var r: (Int64, Int64, Int64, Int64, Int64) = (0, 0, 0, 0, 0)
            for try await row in try await c.query("""
                SELECT count(*) FILTER (WHERE state = 'confirmed'), count(*), count(*) FILTER (WHERE state = 'replaced'),
                       count(*) FILTER (WHERE state = 'expired'),
                       coalesce(max(n), 0)
                FROM gateway.outgoing_txs o
                LEFT JOIN (SELECT ref_id, count(*) FILTER (WHERE state = 'confirmed') AS n FROM gateway.outgoing_txs
                           WHERE purpose = 'withdrawal' AND ref_id = ANY(\(ids)) GROUP BY ref_id) m ON m.ref_id = o.ref_id
                WHERE o.purpose = 'withdrawal' AND o.ref_id = ANY(\(ids))
                """, logger: logger).decode((Int64, Int64, Int64, Int64, Int64).self) { r = row }
            return r
        }
        report.check(txCounts.confirmed == Int64(count) && txCounts.maxPerWithdrawal == 1,
                     "on-chain transactions: \(txCounts.confirmed) confirmed for \(count) withdrawals (at most \(txCounts.maxPerWithdrawal) per withdrawal); "
                        + "\(txCounts.signed) signed in all, \(txCounts.replaced) replaced on their nonce, \(txCounts.expired) TRON expired unseen")
        let evmPayments = planned.filter { $0.chain.kind == .evm }.count
        let evmNonce = try await node.nonce(evmHot)
        report.check(evmNonce == UInt64(evmPayments), "Ethereum hot address nonce: \(evmNonce) for \(evmPayments) payments (one transaction each on chain)")
        let delivered = try await db.withConnection { c -> [Int: Int64] in
            var out: [Int: Int64] = [:]
            for try await (s, n) in try await c.query("""
                SELECT status::int4, count(*) FROM gateway.callbacks WHERE trade_type = 2 AND trade_id = ANY(\(ids)) AND state = 'delivered' GROUP BY status
                """, logger: logger).decode((Int32, Int64).self) { out[Int(s)] = n }
            return out
        }
        let got = receiver.received.filter { $0.path == "/withdrawals" }
        var seen: [String: Int] = [:]
        for r in got { seen["\(r.webhookID ?? "")", default: 0] += 1 }
        let distinct1 = Set(got.filter { $0.form["body"]?.contains("\"status\":1") == true }.compactMap(\.webhookID)).count
        let distinct3 = Set(got.filter { $0.form["body"]?.contains("\"status\":3") == true }.compactMap(\.webhookID)).count
        report.check(delivered[1] == Int64(count) && delivered[3] == Int64(count) && distinct1 == count && distinct3 == count,
                     "callbacks delivered: status 1 \(delivered[1] ?? 0), status 3 \(delivered[3] ?? 0) for \(count) withdrawals; the receiver saw "
                        + "\(distinct1) + \(distinct3) distinct (\(got.count) POSTs, re-sends of the same webhook-id included)")
        if delivered[1] != Int64(count) || delivered[3] != Int64(count) {
            // Which ones, and what their jobs are doing: enough to tell a slow retry from a lost job.
            try await db.withConnection { c in
                for try await (id, trade, status, state, attempts, error, webhook, job) in try await c.query("""
                    SELECT c.id, c.trade_id, c.status::int4, c.state, c.attempts, coalesce(c.last_error, ''), c.webhook_id,
                           coalesce((SELECT j.id || ' ' || j.state || ' attempt ' || j.attempt || ' run_at ' || j.run_at || ' owner '
                                            || coalesce(j.lease_owner, '-') || ' error ' || coalesce(j.last_error, '-')
                                     FROM gateway.jobs j WHERE j.stage = 'callback' AND j.unique_key = 'callback:' || c.id), 'no job')
                    FROM gateway.callbacks c WHERE c.trade_type = 2 AND c.trade_id = ANY(\(ids)) AND c.status IN (1, 3) AND c.state <> 'delivered'
                    """, logger: logger).decode((Int64, Int64, Int32, String, Int32, String, String, String).self) {
                    report.lines.append("      callback \(id) (withdrawal \(trade), status \(status)): \(state), \(attempts) attempts, last error "
                        + "\(error.isEmpty ? "-" : error), webhook-id \(webhook) POSTed \(seen[webhook] ?? 0)×; job: \(job)")
                }
            }
        }
        let problems = try await db.withConnection { c in try await Ledger.inconsistencies(on: c, logger: logger) }
        let reserved = try await countRows(db, """
            SELECT count(*) FROM gateway.ledger_accounts WHERE merchant_id = \(merchantID) AND kind = 'reserved' AND balance <> 0
            """)
        report.check(problems.isEmpty && reserved == 0, "ledger: \(problems.count) inconsistencies, \(reserved) non-zero reservations left")
        // The ledger reconciles with the chain: every deposit and hot address, every coin (gatewayctl ledger reconcile).
        // Wait for the scanners to pass the last payment's block (a transfer in an unscanned block shows as a difference).
        for chain in [tronChain, evmChain] {
            let client = ChainStage.nodeClient(for: chain, logger: logger)
            var r = try await Reconciliation.run(chain: chain.name, node: client, database: db, logger: logger)
            for _ in 0..<40 where !r.isClean {
                try await Task.sleep(for: .milliseconds(500))
                r = try await Reconciliation.run(chain: chain.name, node: client, database: db, logger: logger)
            }
            let sample = r.differences.prefix(3).map { "\($0.address) \($0.symbol) expected \($0.expected) node \($0.node)" }
                + r.ledgerDifferences.prefix(3).map { "ledger \($0.symbol) \($0.ledger) vs records \($0.records)" }
            report.check(r.isClean, "ledger reconcile \(chain.name): \(r.addresses) addresses, \(r.coins) coins, "
                            + "\(r.differences.count + r.ledgerDifferences.count) differences\(sample.isEmpty ? "" : " — " + sample.joined(separator: "; "))")
        }
        let hotTron = try await node.usdtBalance(chain: "tron", address: tronHot)
        let hotEVM = try await node.usdtBalance(chain: "evm", address: evmHot)
        let spent = planned.reduce(into: [String: BigUInt]()) { $0[$1.chain.name, default: 0] += $1.amount }
        report.check(hotTron + (spent[tronChain.name] ?? 0) == 2 * (needed[tronChain.name] ?? 0)
                        && hotEVM + (spent[evmChain.name] ?? 0) == 2 * (needed[evmChain.name] ?? 0),
                     "hot wallets: TRON \(hotTron), Ethereum \(hotEVM) USDT base units left = funded − paid")
        return report
    }

    func poll(timeout: Duration, _ condition: @Sendable () async throws -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if (try? await condition()) == true { return true }
            try await Task.sleep(for: .milliseconds(250))
        }
        return false
    }

    /// One count, given up after 15 s (a query caught by the database restart must not stall the run).
    func countRows(_ db: Database, _ sql: PostgresQuery) async throws -> Int64 {
        try await withDeadline(.seconds(15)) {
            var n: Int64 = 0
            for try await v in try await db.query(sql).decode(Int64.self) { n = v }
            return n
        }
    }
}

/// The parsed options are read-only once `run` starts.
extension ChaosWithdrawals: @unchecked Sendable {}

/// The stage processes the chaos run starts, kills and restarts (logs under `logs/`).
final class Children: Sendable {
    let bin: URL
    let config: String
    let logs: String
    private let running = Mutex<[Int: Process]>([:])
    private let serial = Mutex(0)

    init(bin: URL, config: String, logs: String) {
        self.bin = bin
        self.config = config
        self.logs = logs
    }

    /// Starts an executable; returns its handle number.
    @discardableResult
    func start(_ name: String) throws -> Int {
        let n = serial.withLock { $0 += 1; return $0 }
        let p = Process()
        p.executableURL = bin.appendingPathComponent(name)
        p.arguments = ["--config", config]
        let path = "\(logs)/\(name)-\(n).log"
        FileManager.default.createFile(atPath: path, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        p.standardOutput = handle
        p.standardError = handle
        try p.run()
        running.withLock { $0[n] = p }
        return n
    }

    /// SIGKILL, then wait (polling) until it is gone.
    func kill(_ n: Int) async {
        guard let p = running.withLock({ $0.removeValue(forKey: n) }) else { return }
        Glibc.kill(p.processIdentifier, SIGKILL)
        _ = await Self.reap(p.processIdentifier, timeout: .seconds(10))
    }

    /// Runs a command (posix_spawn) and waits for it, polling `waitpid` (Foundation's Process did not notice a child's
    /// exit here: it stayed a zombie and `isRunning` true); its exit status, or -1. `quiet` sends its output to /dev/null.
    static func run(_ args: [String], quiet: Bool, timeout: Duration) async -> Int32 {
        var pid: pid_t = 0
        let argv: [UnsafeMutablePointer<CChar>?] = args.map { (s: String) in strdup(s) } + [nil]
        defer { for a in argv { free(a) } }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if quiet {
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
            posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        }
        guard posix_spawn(&pid, args[0], &actions, nil, argv, environ) == 0 else { return -1 }
        return await reap(pid, timeout: timeout)
    }

    /// Waits for a child to exit (polling `waitpid`); its exit status, or -1 (already reaped elsewhere, or timed out).
    static func reap(_ pid: pid_t, timeout: Duration) async -> Int32 {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            var status: Int32 = 0
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid { return (status & 0x7f) == 0 ? (status >> 8) & 0xff : -1 }
            if r < 0 { return Glibc.kill(pid, 0) == 0 ? -1 : 0 }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return -1
    }

    /// SIGTERM to everyone, then SIGKILL to whoever is still there after 10 s.
    func stopAll() {
        let all = running.withLock { r -> [Process] in
            let v = Array(r.values)
            r.removeAll()
            return v
        }
        for p in all where p.isRunning { Glibc.kill(p.processIdentifier, SIGTERM) }
        let deadline = Date().addingTimeInterval(10)
        for p in all {
            while p.isRunning && Date() < deadline { usleep(50_000) }
            if p.isRunning { Glibc.kill(p.processIdentifier, SIGKILL) }
        }
    }
}

/// devchain's control API, over HTTP (it runs as its own process here).
struct DevchainControl: Sendable {
    let http: HTTPClient
    let url: String

    @discardableResult
    func post(_ path: String, _ body: [String: ChainKit.JSONValue]) async throws -> ChainKit.JSONValue {
        var request = HTTPClientRequest(url: url.trimmingCharacters(in: CharacterSet(charactersIn: "/")) + path)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: ChainKit.JSONValue.object(body.map { JSONMember(key: $0.key, value: $0.value) }).encoded()))
        let response = try await http.execute(request, timeout: .seconds(30))
        let bytes = try await response.body.collect(upTo: 1 << 20)
        let value = try ChainKit.JSONValue.parse(Array(buffer: bytes))
        guard response.status == .ok else { throw ValidationError("devchain \(path): \(value["error"]?.stringValue ?? "HTTP \(response.status.code)")") }
        return value
    }

    func get(_ path: String) async throws -> ChainKit.JSONValue {
        let response = try await http.execute(HTTPClientRequest(url: url.trimmingCharacters(in: CharacterSet(charactersIn: "/")) + path), timeout: .seconds(30))
        return try ChainKit.JSONValue.parse(Array(buffer: try await response.body.collect(upTo: 1 << 20)))
    }

    func usdtBalance(chain: String, address: String) async throws -> BigUInt {
        let v = try await get("/devchain/\(chain)/balance?address=\(address)")
        return BigUInt(v["usdt"]?.stringValue ?? "") ?? 0
    }

    /// An EVM account's mined transaction count, over JSON-RPC.
    func nonce(_ address: String) async throws -> UInt64 {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        let body = #"{"jsonrpc":"2.0","id":1,"method":"eth_getTransactionCount","params":["\#(address)","latest"]}"#
        request.body = .bytes(ByteBuffer(string: body))
        let response = try await http.execute(request, timeout: .seconds(30))
        let v = try ChainKit.JSONValue.parse(Array(buffer: try await response.body.collect(upTo: 1 << 16)))
        guard let hex = v["result"]?.stringValue, let n = UInt64(hex.dropFirst(2), radix: 16) else { throw ValidationError("eth_getTransactionCount: \(v)") }
        return n
    }
}
