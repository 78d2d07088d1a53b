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

/// `gatewayctl chaos failover`: the whole pipeline under payment load while PostgreSQL fails over (switchovers, a
/// crashed primary, a crashed secondary, run by `--event-command`); then every acknowledged write, payment, deposit,
/// callback and sweep is counted, with the write gap and the 503 answers of each event.
struct ChaosFailover: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "failover",
        abstract: "Run the pipeline under load while the database fails over; count that nothing acknowledged was lost or paid twice.",
        discussion: """
            Needs a running devchain (--devchain) that the configuration's chains point at, a configuration whose database \
            is a highly available formation (scripts/chaos-failover.sh makes one with pg_auto_failover: a monitor and three \
            nodes), and the stage executables beside gatewayctl. Starts gateway-api, review-worker, --autopay-workers \
            autopay-workers, chain-worker, callback-worker and sweep-worker. Sets up a merchant with automatic payment, funds \
            its hot and gas wallets, deposits its balance; then, until the events are over, sends --rate proxypay withdrawals \
            a second through the Open API (signed as the SDKs sign; an answer other than 200 or 571 is retried with the same \
            businessId, as a merchant does) and a USDT deposit every --deposit-every seconds to one of 10 deposit addresses \
            (swept when they reach the threshold), while each of --events runs in turn, --spacing seconds apart: \
            `<event-command> <event>` returns once the formation is healthy again. Afterwards it waits for the pipeline to \
            settle and exits 1 unless: every request answered 200 (or 571 on a retry) is stored exactly once; every withdrawal \
            is confirmed, its destination holds exactly its amount, one transaction each, the Ethereum hot nonce equals the \
            Ethereum payments; every deposit is credited once; every callback is delivered; no sweep failed; the ledger is \
            consistent and reconciles with the chain; no job is dead. It prints, per event, the write gap (the longest time \
            without an acknowledged API write across the event) and the API answers that were 503.
            """)

    @OptionGroup var options: ProcessOptions
    @Option(help: "Base URL of the devchain the configuration points at.") var devchain = "http://127.0.0.1:8545"
    @Option(help: "Proxypay withdrawals sent per second through the API while the events run.") var rate = 4.0
    @Option(help: "Seconds between USDT deposits to the deposit addresses.") var depositEvery = 1.0
    @Option(help: "The failure events, in order (comma-separated): switchover, crash-primary, crash-secondary.")
    var events = "switchover,crash-primary,switchover,crash-secondary,switchover"
    @Option(help: "Shell command that performs one event (its name is appended) and returns once the formation is healthy.")
    var eventCommand: String
    @Option(help: "Seconds of load before the first event, between events and after the last.") var spacing = 6.0
    @Option(help: "autopay-worker processes.") var autopayWorkers = 2
    @Option(help: "Seconds to wait for the pipeline to settle after the load.") var timeout = 300.0
    @Option(help: "Folder for the child processes' logs.") var logs = ".local/logs/chaos-failover"
    @Option(help: """
        Acknowledged inserts of a peer writing through the same nodes meanwhile (scripts/failover-peer.c: libpq, one \
        insert every 10 ms, lines "<epoch ms> <id>" into public.failover_peer): its write gap is printed beside the \
        gateway's for each event, and its acknowledged ids are looked up on the final primary.
        """)
    var peerAcks: String?

    static let eventNames: Set<String> = ["switchover", "crash-primary", "crash-secondary"]

    func validate() throws {
        let list = events.split(separator: ",").map(String.init)
        guard !list.isEmpty, list.allSatisfy(Self.eventNames.contains) else {
            throw ValidationError("--events: a comma-separated list of switchover, crash-primary, crash-secondary")
        }
        guard rate > 0, rate <= 100, depositEvery > 0, spacing >= 1, autopayWorkers >= 1, timeout > 0 else {
            throw ValidationError("rate 0…100, deposit-every > 0, spacing ≥ 1, autopay-workers ≥ 1, timeout > 0")
        }
    }

    func run() async throws {
        let this = self
        try await ChaosWithdrawals.execute(options, devchain: devchain, logs: logs) { ctx, node, children, started in
            try await this.runChaos(ctx, node: node, children: children, started: started)
        }
    }

    func say(_ s: String) { FileHandle.standardOutput.write(Data("==> \(s)\n".utf8)) }

    /// One withdrawal request as the merchant saw it: each answer's HTTP status and Udun code, and when.
    struct Sent: Sendable {
        var businessID: String
        var chain: String
        var destination: String
        var amount: BigUInt
        var answers: [(at: ContinuousClock.Instant, status: Int, code: Int)] = []
        var final: Int? { answers.last.flatMap { [200, 571].contains($0.code) ? $0.code : nil } }
    }

    struct Event: Sendable {
        var name: String
        var start: ContinuousClock.Instant
        var end: ContinuousClock.Instant
        var status: Int32
        /// The same span on the wall clock, to compare with the peer's acknowledgements.
        var wallStart: Date
        var wallEnd: Date
    }

    /// The peer's acknowledged inserts: "<epoch ms> <id>" per line, in the order acknowledged.
    static func readPeer(_ path: String) throws -> [(at: Int64, id: Int64)] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ValidationError("--peer-acks: cannot read \(path)")
        }
        return text.split(separator: "\n").compactMap { line in
            let parts = line.split(separator: " ")
            guard parts.count == 2, let at = Int64(parts[0]), let id = Int64(parts[1]) else { return nil }
            return (at, id)
        }
    }

    /// The longest time in milliseconds between consecutive acknowledgements (epoch ms) across [from, to].
    static func gap(_ acks: [Int64], from: Date, to: Date) -> Int64 {
        let start = Int64(from.timeIntervalSince1970 * 1000), end = Int64(to.timeIntervalSince1970 * 1000)
        var longest: Int64 = 0
        for (a, b) in zip(acks, acks.dropFirst()) where b >= start && a <= end { longest = max(longest, b - a) }
        return longest
    }

    func runChaos(_ ctx: CLIContext, node: DevchainControl, children: Children, started: ContinuousClock.Instant) async throws
        -> ChaosWithdrawals.Report
    {
        let logger = ctx.logger
        let db = ctx.database
        let chains = ctx.config.chains
        guard let tronChain = chains.first(where: { $0.kind == .tron }), let evmChain = chains.first(where: { $0.kind == .evm }),
            tronChain.token("USDT") != nil, evmChain.token("USDT") != nil
        else { throw ValidationError("the configuration needs a tron and an evm chain, each with a USDT token") }
        let pair = [tronChain, evmChain]

        // Set-up: a merchant with automatic payment and wallets on a fresh account, a receiver, deposit addresses.
        let (merchantID, secrets) = try await DemoCommand.Deposits.setUp(ctx, chains: pair, merchantName: "Failover \(Int(Date().timeIntervalSince1970))",
                                                                         account: nil)
        try await db.transaction { c in try await c.query("UPDATE gateway.merchants SET auto_payment = true, rate_limit_per_min = 1000000 WHERE id = \(merchantID)", logger: logger) }
        var coins: [String: Coin] = [:]
        var wallets: [String: Wallet] = [:]
        try await db.withConnection { c in
            for chain in pair {
                let token = chain.token("USDT")!
                coins[chain.name] = try await Coins.find(mainCoinType: chain.kind == .tron ? "195" : "60",
                                                         coinType: Coins.canonicalCoinType(chain.kind.format(token.contract)), on: c, logger: logger)
            }
            for w in try await Wallets.list(merchantID: merchantID, on: c, logger: logger) { wallets[w.chain] = w }
        }
        let receiver = try await MerchantReceiver(apiKey: secrets.apiKey, webhookSecret: secrets.webhookSecret)
        defer { Task { await receiver.stop() } }
        let directory = ChainDirectory(config: ctx.config)
        var funding: [String: String] = [:]
        var depositAddresses: [String: [String]] = [:]
        try await db.transaction { c in
            for chain in pair {
                let made = try await Addresses.create(merchantID: merchantID, chain: chain.name, callURL: receiver.baseURL + "/deposits", alias: "failover",
                                                      walletRef: "", count: 11, maxAddresses: nil, directory: directory, on: c, logger: logger)
                funding[chain.name] = made[0]
                depositAddresses[chain.name] = Array(made.dropFirst())
            }
        }
        say("merchant \(merchantID): funding hot and gas wallets, depositing its balance")
        for chain in pair {
            guard let w = wallets[chain.name] else { throw ValidationError("no \(chain.name) wallet after set-up") }
            let native = chain.kind == .tron ? "200000000000" : "200000000000000000000"
            _ = try await node.post("/devchain/\(Self.devName(chain))/fund", ["address": .string(w.hotAddress), "amount": .string(native)])
            if let gas = w.gasAddress {
                _ = try await node.post("/devchain/\(Self.devName(chain))/fund", ["address": .string(gas), "amount": .string(native)])
            }
            _ = try await node.post("/devchain/\(Self.devName(chain))/usdt", ["to": .string(w.hotAddress), "amount": .string("100000000000")])
            _ = try await node.post("/devchain/\(Self.devName(chain))/usdt", ["to": .string(funding[chain.name]!), "amount": .string("1000000000000")])
        }

        say("starting gateway-api, review-worker, \(autopayWorkers) autopay-workers, chain-worker, callback-worker, sweep-worker")
        try children.start("gateway-api")
        try children.start("review-worker")
        for _ in 0..<autopayWorkers { try children.start("autopay-worker") }
        try children.start("chain-worker")
        try children.start("callback-worker")
        try children.start("sweep-worker")
        let coinIDs = pair.map { coins[$0.name]!.id }
        let credited = try await Self.poll(timeout: .seconds(180)) {
            let a = try await db.withConnection { c in try await Ledger.available(merchantID: merchantID, on: c, logger: logger) }
            return coinIDs.allSatisfy { (a[$0] ?? 0) >= BigInt(1_000_000_000_000) }
        }
        guard credited else { throw ValidationError("the merchant's balance was not credited within 180 s (see \(logs)/chain-worker*.log)") }

        // The load and the events, side by side.
        let (coinOf, depositTo) = (coins, depositAddresses)
        let api = "http://\(ctx.config.api.listen.host == "0.0.0.0" ? "127.0.0.1" : ctx.config.api.listen.host):\(ctx.config.api.listen.port)"
        let sent = Shared<[Sent]>([])
        let deposits = Shared<[(chain: String, address: String, amount: BigUInt)]>([])
        let loadDone = Shared(false)
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        defer { Task { try? await http.shutdown() } }
        let eventList = events.split(separator: ",").map(String.init)
        let (rate, depositEvery, spacing, eventCommand) = (self.rate, self.depositEvery, self.spacing, self.eventCommand)
        say("load: \(rate) proxypay withdrawals/s through \(api), a deposit every \(depositEvery) s; events: \(eventList.joined(separator: ", "))")
        let eventsRun: [Event] = try await withThrowingTaskGroup(of: [Event].self) { group in
            // Withdrawals: a new one every 1/rate s, each retried until 200 or 571.
            group.addTask {
                try await withThrowingDiscardingTaskGroup { requests in
                    var n = 0
                    while !loadDone.withLock({ $0 }) {
                        let chain = n % 2 == 0 ? tronChain : evmChain
                        let coin = coinOf[chain.name]!
                        let key = try Secp256k1.PrivateKey(Data((0..<32).map { _ in UInt8.random(in: 0...255) }))
                        let destination = chain.kind == .tron ? TronAddress(publicKey: key.publicKey).base58 : EVMAddress(publicKey: key.publicKey).checksummed
                        let amount = BigUInt(Int.random(in: 100...500)) * 10_000
                        let index = sent.withLock { s -> Int in
                            s.append(Sent(businessID: "fo-\(n)", chain: chain.name, destination: destination, amount: amount))
                            return s.count - 1
                        }
                        let body = JSONValue.array([.object([
                            ("merchantId", .string(String(merchantID))), ("mainCoinType", .string(coin.mainCoinType)), ("coinType", .string(coin.coinType)),
                            ("address", .string(destination)), ("amount", .string(CoinAmount.format(amount, decimals: coin.decimals))),
                            ("callUrl", .string(receiver.baseURL + "/withdrawals")), ("businessId", .string("fo-\(n)")),
                        ])]).serialized
                        requests.addTask {
                            // As a merchant does: a new envelope (nonce, timestamp, signature) for each try; retried while the
                            // gateway answers 503 (or not at all), done at 200, 571 or any other Open API error.
                            for attempt in 0..<600 {
                                let (status, code) = await Self.post(http, url: api + "/mch/withdraw/proxypay", body: body, key: secrets.apiKey,
                                                                     nonce: String(index * 1000 + attempt + 1))
                                sent.withLock { $0[index].answers.append((ContinuousClock.now, status, code)) }
                                if status == 200 && code != -1 { return }
                                try await Task.sleep(for: .milliseconds(200))
                            }
                        }
                        n += 1
                        try await Task.sleep(for: .milliseconds(Int64(1000 / rate)))
                    }
                }
                return []
            }
            // Deposits: USDT from devchain's treasury to the deposit addresses, in turn.
            group.addTask {
                var n = 0
                while !loadDone.withLock({ $0 }) {
                    let chain = pair[n % 2]
                    let addresses = depositTo[chain.name]!
                    let to = addresses[(n / 2) % addresses.count]
                    let amount = BigUInt(Int.random(in: 20...80)) * 1_000_000
                    if (try? await node.post("/devchain/\(Self.devName(chain))/usdt", ["to": .string(to), "amount": .string(amount.description)])) != nil {
                        deposits.withLock { $0.append((chain.name, to, amount)) }
                    }
                    n += 1
                    try await Task.sleep(for: .milliseconds(Int64(depositEvery * 1000)))
                }
                return []
            }
            // The events, spaced.
            group.addTask {
                var done: [Event] = []
                for name in eventList {
                    try await Task.sleep(for: .milliseconds(Int64(spacing * 1000)))
                    FileHandle.standardOutput.write(Data("==> event: \(name)\n".utf8))
                    let start = ContinuousClock.now
                    let wallStart = Date()
                    let status = await Children.run(["/bin/bash", "-c", "\(eventCommand) \(name)"], quiet: false, timeout: .seconds(300))
                    done.append(Event(name: name, start: start, end: ContinuousClock.now, status: status, wallStart: wallStart, wallEnd: Date()))
                    FileHandle.standardOutput.write(Data("==> event \(name) over in \(String(format: "%.1f", (ContinuousClock.now - start).inSeconds)) s (exit \(status))\n".utf8))
                }
                try await Task.sleep(for: .milliseconds(Int64(spacing * 1000)))
                loadDone.withLock { $0 = true }
                return done
            }
            var all: [Event] = []
            for try await part in group { all += part }
            return all
        }

        // Settle: every acknowledged withdrawal confirmed, deposits credited, callbacks delivered, sweeps finished.
        let requests = sent.withLock { $0 }
        let acked = requests.filter { $0.final != nil }
        let ackedIDs = acked.map(\.businessID)
        let depositList = deposits.withLock { $0 }
        let loadAddresses = depositAddresses.values.flatMap { $0 }
        say("load over: \(requests.count) withdrawals sent (\(acked.count) acknowledged), \(depositList.count) deposits; waiting for the pipeline to settle")
        let progress = Shared("")
        let settled = try await Self.poll(timeout: .seconds(Int64(timeout))) {
            let confirmed = try await countRows(db, """
                SELECT count(*) FROM gateway.withdrawals WHERE merchant_id = \(merchantID) AND business_id = ANY(\(ackedIDs)) AND state = 'confirmed'
                """)
            let credited = try await countRows(db, """
                SELECT count(*) FROM gateway.deposits d JOIN gateway.addresses a ON a.id = d.address_id
                WHERE a.address = ANY(\(loadAddresses)) AND d.status = 'confirmed'
                """)
            let undelivered = try await countRows(db, "SELECT count(*) FROM gateway.callbacks WHERE merchant_id = \(merchantID) AND state <> 'delivered'")
            let openSweeps = try await countRows(db, "SELECT count(*) FROM gateway.sweeps WHERE state NOT IN ('swept', 'failed')")
            let done = confirmed == Int64(acked.count) && credited == Int64(depositList.count) && undelivered == 0 && openSweeps == 0
            progress.withLock { $0 = "withdrawals confirmed \(confirmed)/\(acked.count), deposits credited \(credited)/\(depositList.count), "
                + "callbacks undelivered \(undelivered), sweeps open \(openSweeps)" }
            return done
        }
        if !settled { say("the pipeline did not settle within \(Int(timeout)) s (\(progress.withLock { $0 })); counting what there is") }
        let elapsed = ContinuousClock.now - started

        var report = ChaosWithdrawals.Report()
        let peer = try peerAcks.map(Self.readPeer)
        report.lines.append("failover chaos: \(eventsRun.map(\.name).joined(separator: ", ")); \(requests.count) proxypay withdrawals at \(rate)/s, "
            + "\(depositList.count) deposits, \(autopayWorkers) autopay-workers, \(String(format: "%.1f", elapsed.inSeconds)) s")
        // Per event: the longest time without an acknowledged API write across it, and the 503 answers.
        let writes = requests.flatMap { r in r.answers.filter { $0.code == 200 }.map(\.at) }.sorted()
        for e in eventsRun {
            var gap: Duration = .zero
            for (a, b) in zip(writes, writes.dropFirst()) where b >= e.start && a <= e.end {
                gap = max(gap, b - a)
            }
            let unavailable = requests.reduce(0) { n, r in n + r.answers.filter { $0.status == 503 && $0.at >= e.start && $0.at <= e.end + .seconds(2) }.count }
            report.check(e.status == 0, "event \(e.name): \(String(format: "%.1f", (e.end - e.start).inSeconds)) s until healthy again; write gap "
                + "\(Int(gap.inSeconds * 1000)) ms; \(unavailable) API answers 503"
                + (peer.map { " (peer libpq: write gap \(Self.gap($0.map(\.at), from: e.wallStart, to: e.wallEnd)) ms)" } ?? ""))
        }
        if let peer {
            // The peer's own promise: every insert libpq acknowledged is on the final primary.
            let ids = peer.map(\.id)
            let present = try await countRows(db, "SELECT count(*) FROM public.failover_peer WHERE id = ANY(\(ids))")
            report.lines.append("      peer libpq: \(ids.count) inserts acknowledged, \(Int64(ids.count) - present) of them missing on the final primary")
        }
        // Every acknowledged request stored exactly once; nothing stored that was never acknowledged.
        let stored = try await db.withConnection { c -> [String: Int64] in
            var out: [String: Int64] = [:]
            for try await (b, n) in try await c.query("""
                SELECT business_id, count(*) FROM gateway.withdrawals WHERE merchant_id = \(merchantID) GROUP BY business_id
                """, logger: logger).decode((String, Int64).self) { out[b] = n }
            return out
        }
        for r in requests where r.final == nil {
            report.lines.append("      \(r.businessID) never acknowledged: answers \(r.answers.map { "\($0.status)/\($0.code)" })")
        }
        let retried571 = acked.filter { $0.final == 571 }.count
        let unanswered = requests.count - acked.count
        report.check(acked.allSatisfy { stored[$0.businessID] == 1 } && stored.count == acked.count && unanswered == 0,
                     "API: \(acked.count) acknowledged (\(retried571) of them 571 on a retry whose first try was stored), each stored once; "
                        + "\(stored.count) stored; \(unanswered) never acknowledged; \(requests.reduce(0) { $0 + $1.answers.count }) answers in all")
        let byState = try await db.withConnection { c -> [String: Int64] in
            var out: [String: Int64] = [:]
            for try await (s, n) in try await c.query("SELECT state, count(*) FROM gateway.withdrawals WHERE merchant_id = \(merchantID) GROUP BY state",
                                                      logger: logger).decode((String, Int64).self) { out[s] = n }
            return out
        }
        report.check(byState["confirmed"] == Int64(acked.count), "withdrawals confirmed: \(byState["confirmed"] ?? 0)/\(acked.count) (by state: \(byState))")
        var exact = 0
        var wrong: [String] = []
        for r in acked {
            let chain = r.chain == tronChain.name ? "tron" : "evm"
            let balance = try await node.usdtBalance(chain: chain, address: r.destination)
            if balance == r.amount { exact += 1 } else if wrong.count < 5 { wrong.append("\(r.destination) holds \(balance), expected \(r.amount)") }
        }
        report.check(exact == acked.count, "destinations holding exactly their amount: \(exact)/\(acked.count)\(wrong.isEmpty ? "" : " — " + wrong.joined(separator: "; "))")
        let perWithdrawal = try await countRows(db, """
            SELECT coalesce(max(n), 0) FROM (SELECT count(*) FILTER (WHERE o.state = 'confirmed') AS n FROM gateway.outgoing_txs o
            JOIN gateway.withdrawals w ON w.id = o.ref_id WHERE o.purpose = 'withdrawal' AND w.merchant_id = \(merchantID) GROUP BY o.ref_id) t
            """)
        let evmPayments = acked.filter { $0.chain == evmChain.name }.count
        let evmNonce = try await node.nonce(wallets[evmChain.name]!.hotAddress)
        report.check(perWithdrawal <= 1 && evmNonce == UInt64(evmPayments),
                     "one confirmed transaction per withdrawal (at most \(perWithdrawal)); Ethereum hot nonce \(evmNonce) for \(evmPayments) payments")
        let credited2 = try await countRows(db, """
                SELECT count(*) FROM gateway.deposits d JOIN gateway.addresses a ON a.id = d.address_id
                WHERE a.address = ANY(\(loadAddresses)) AND d.status = 'confirmed'
                """)
        let distinct = try await countRows(db, """
            SELECT count(DISTINCT (d.chain, d.tx_hash, d.log_index)) FROM gateway.deposits d JOIN gateway.addresses a ON a.id = d.address_id
            WHERE a.address = ANY(\(loadAddresses))
            """)
        report.check(credited2 == Int64(depositList.count) && distinct == credited2,
                     "deposits credited: \(credited2)/\(depositList.count), each once (\(distinct) distinct)")
        let callbacks = try await db.withConnection { c -> [String: Int64] in
            var out: [String: Int64] = [:]
            for try await (t, s, st, n) in try await c.query("""
                SELECT trade_type::int4, status::int4, state, count(*) FROM gateway.callbacks WHERE merchant_id = \(merchantID) GROUP BY 1, 2, 3
                """, logger: logger).decode((Int32, Int32, String, Int64).self) { out["\(t)/\(s)/\(st)"] = n }
            return out
        }
        let undelivered = callbacks.filter { !$0.key.hasSuffix("/delivered") }.values.reduce(0, +)
        report.check(undelivered == 0 && callbacks["2/1/delivered"] == Int64(acked.count) && callbacks["2/3/delivered"] == Int64(acked.count)
                        && (callbacks["1/3/delivered"] ?? 0) >= Int64(depositList.count),
                     "callbacks delivered (type/status): \(callbacks.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))")
        let sweeps = try await db.withConnection { c -> [String: Int64] in
            var out: [String: Int64] = [:]
            for try await (s, n) in try await c.query("SELECT state, count(*) FROM gateway.sweeps GROUP BY state", logger: logger)
                .decode((String, Int64).self) { out[s] = n }
            return out
        }
        report.check(sweeps["failed"] == nil && sweeps.keys.allSatisfy { $0 == "swept" }, "sweeps by state: \(sweeps)")
        let problems = try await db.withConnection { c in try await Ledger.inconsistencies(on: c, logger: logger) }
        report.check(problems.isEmpty, "ledger check: \(problems.count) inconsistencies")
        for chain in pair {
            let client = ChainStage.nodeClient(for: chain, logger: logger)
            var r = try await Reconciliation.run(chain: chain.name, node: client, database: db, logger: logger)
            for _ in 0..<40 where !r.isClean {
                try await Task.sleep(for: .milliseconds(500))
                r = try await Reconciliation.run(chain: chain.name, node: client, database: db, logger: logger)
            }
            let sample = r.differences.prefix(3).map { "\($0.address) \($0.symbol) expected \($0.expected) node \($0.node)" }
            report.check(r.isClean, "ledger reconcile \(chain.name): \(r.addresses) addresses, \(r.coins) coins, "
                            + "\(r.differences.count + r.ledgerDifferences.count) differences\(sample.isEmpty ? "" : " — " + sample.joined(separator: "; "))")
        }
        let dead = try await countRows(db, "SELECT count(*) FROM gateway.jobs WHERE state = 'dead'")
        report.check(dead == 0, "dead jobs: \(dead)")
        return report
    }

    /// Sends one signed Open API request (as the Go SDK writes it); (HTTP status, Udun code), -1 for no answer.
    static func post(_ http: HTTPClient, url: String, body: String, key: String, nonce: String) async -> (Int, Int) {
        do {
            let response = try await http.execute(UdunRequests.post(url: url, body: body, key: key, nonce: nonce), timeout: .seconds(30))
            let reply = try await response.body.collect(upTo: 1 << 16)
            var code = -1
            if case .number(let n)? = (try? JSONValue.parse(Array(buffer: reply)))?["code"] { code = Int(n) ?? -1 }
            return (Int(response.status.code), code)
        } catch {
            return (-1, -1)
        }
    }

    /// devchain's name for a chain's control endpoints.
    static func devName(_ chain: ChainConfig) -> String { chain.kind == .tron ? "tron" : "evm" }

    static func poll(timeout: Duration, _ condition: @Sendable () async throws -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if (try? await condition()) == true { return true }
            try await Task.sleep(for: .milliseconds(250))
        }
        return false
    }

    func countRows(_ db: Database, _ sql: PostgresQuery) async throws -> Int64 {
        try await withDeadline(.seconds(15)) {
            var n: Int64 = 0
            for try await v in try await db.query(sql).decode(Int64.self) { n = v }
            return n
        }
    }
}

/// The parsed options are read-only once `run` starts.
extension ChaosFailover: @unchecked Sendable {}

/// A value shared by concurrent tasks, behind a lock.
final class Shared<Value: Sendable>: Sendable {
    private let value: Mutex<Value>
    init(_ value: Value) { self.value = Mutex(value) }
    func withLock<R: Sendable>(_ body: (inout Value) -> R) -> R { value.withLock { body(&$0) } }
}
