import BigInt
import ChainKit
import Foundation
import GatewayCore
import GatewayRuntime
import GatewayServices
import Logging
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// The sweep stage (DESIGN.md §4 "Sweep"): a scheduled planner per chain finds deposit addresses worth
/// sweeping; each sweep tops up gas from the hot address when it must, waits for that top-up to be
/// confirmed, then moves the funds with the deposit address's own key. Transactions go through the
/// withdrawals' machinery (Payments.store before broadcast, chain-worker's `confirm` jobs re-broadcast,
/// settle at depth, TRON expiry). The only process besides autopay-worker that loads the seed.
public enum SweepStage {
    /// Handlers by job kind: `plan` (a chain's scheduled planner), `sweep` (one sweep's next step).
    public static func handlers(_ env: StageRunner.Environment) throws -> [String: any JobHandler] {
        try parts(env).handlers
    }

    /// The handlers, and a service that makes sure every swept chain has its planner job.
    public static func parts(_ env: StageRunner.Environment) throws -> StageRunner.Parts {
        let seed: Data
        do {
            seed = try env.config.wallet.loadSeed(relativeTo: env.config.source)
        } catch let e as ConfigError {
            throw ConfigError(key: e.key, "sweep-worker signs top-ups and sweeps and needs the gateway seed: \(e.problem)")
        }
        let sweeper = try Sweeper(config: env.config, seed: seed, database: env.database, logger: env.logger)
        let swept = env.config.chains.filter { $0.sweep != nil }.map(\.name)
        return StageRunner.Parts(handlers: [Sweeps.planJobKind: PlanHandler(sweeper: sweeper), Sweeps.sweepJobKind: StepHandler(sweeper: sweeper),
                                            Payments.replaceJobKind: SweepReplaceHandler(sweeper: sweeper)],
                                 services: [PlannerSchedule(chains: swept, database: env.database, logger: env.logger)])
    }
}

/// What one planner run found: the sweeps it planned (stored unless a dry run) and the addresses it
/// left waiting, with the reason.
public struct SweepPlanReport: Sendable {
    public var chain: String
    public var planned: [PlannedSweep] = []
    public var waiting: [(address: String, symbol: String, balance: BigInt, reason: String)] = []
    /// Ids of the sweeps stored (empty for a dry run).
    public var stored: [Int64] = []
}

/// Plans the sweeps of one chain. Needs no key: `gatewayctl sweep plan` runs it too.
public struct SweepPlanner: Sendable {
    let chain: ChainConfig
    let settings: SweepConfig
    let node: PaymentNode
    let database: Database
    let logger: Logger
    /// When this planner (this process) last looked at every deposit address; nil: never.
    private let lastFullScan = LastFullScan()

    private final class LastFullScan: Sendable {
        let at = Mutex<ContinuousClock.Instant?>(nil)
    }

    /// A planner for `chain`; an error when the chain has no `sweep:` section.
    public init(chain: ChainConfig, database: Database, logger: Logger) throws {
        guard let settings = chain.sweep else { throw ConfigError(key: "chains.\(chain.name).sweep", "chain \(chain.name) is not swept (no sweep section)") }
        self.init(chain: chain, settings: settings, node: PaymentNode.make(chain, logger: logger), database: database, logger: logger)
    }

    init(chain: ChainConfig, settings: SweepConfig, node: PaymentNode, database: Database, logger: Logger) {
        self.chain = chain
        self.settings = settings
        self.node = node
        self.database = database
        self.logger = logger
    }

    /// Gas of one sweep of a coin, native base units: (gas limit, max fee per gas) on EVM; TRON: the
    /// burn allowed (fee_limit, plus bandwidth) as the limit and 1 as the price.
    struct Gas: Sendable {
        var limit: UInt64
        var price: BigUInt
        var tip: BigUInt = 0
        var total: BigUInt { BigUInt(limit) * price }
    }

    /// The gas a sweep of `isToken` from `from` to `to` needs now.
    func gas(isToken: Bool, token: String?, from: AccountID, to: AccountID, amount: BigUInt) async throws -> Gas {
        switch node {
        case .evm(let evm):
            let query: FeeQuery = isToken ? .token(token: try chain.kind.parseAddress(token ?? ""), from: from, to: to, amount: amount)
                : .native(from: from, to: to, amount: amount)
            guard case .evm(let fee) = try await evm.feeEstimate(query) else { throw PermanentJobError("not an EVM fee estimate") }
            let price = min(fee.maxFeePerGas, chain.payments.maxFeePerGas)
            return Gas(limit: isToken ? max(fee.gasLimit, 100_000) : 21_000, price: price, tip: min(fee.maxPriorityFeePerGas, price))
        case .tron:
            // Energy burns up to fee_limit; bandwidth and a possible activation of the destination stay under 1.2 TRX.
            return Gas(limit: UInt64(isToken ? chain.payments.feeLimit + 1_200_000 : 1_200_000), price: 1)
        }
    }

    /// One planner run: candidates by our records, each checked against the node, the dust rule, the
    /// hot cap; stored (with their first step job) unless `dryRun`, a chunk at a time so a run cut short
    /// (a killed worker) keeps what it planned. A node failure on one address leaves it waiting for the
    /// next run instead of failing the run.
    ///
    /// The candidates are the watched addresses (gateway.sweep_watch: a deposit confirmed there, or a
    /// sweep of theirs ended, since the planner last looked), or `address` alone. This planner's first
    /// run, and one every `full_scan_every`, looks at every address instead (a full pass). Afterwards the
    /// planner stops watching the addresses it planned (their sweep's end marks them again) and those
    /// below every threshold; the ones above a threshold that wait (dust, the node, the run's limit) stay
    /// watched, and a full pass adds those it found unwatched.
    public func plan(address: String? = nil, dryRun: Bool, chunk: Int = 200) async throws -> SweepPlanReport {
        var report = SweepPlanReport(chain: chain.name)
        struct Records: Sendable {
            var coins: [Reconciliation.ChainCoin], candidates: [SweepCandidate], holdings: [Int64: [Int32: BigInt]]
            var watched: [(addressID: Int64, mark: Int64)]
        }
        let chainName = chain.name, settings = self.settings, logger = self.logger
        let now = ContinuousClock.now
        let fullPass = address == nil && lastFullScan.at.withLock { last in last.map { now - $0 >= settings.fullScanEvery } ?? true }
        let records: Records = try await database.withConnection { c in
            let coins = try await Reconciliation.coins(chain: chainName, on: c, logger: logger).filter { settings.coins[$0.symbol.uppercased()] != nil }
            var watched: [(addressID: Int64, mark: Int64)] = []
            let scope: Sweeps.CandidateScope
            if let address {
                scope = .address(address)
            } else {
                watched = try await Sweeps.watched(chain: chainName, on: c, logger: logger)
                scope = fullPass ? .all : .addresses(watched.map(\.addressID))
            }
            let candidates = try await Sweeps.candidates(chain: chainName, coinIDs: coins.map(\.id), scope: scope, on: c, logger: logger)
            return Records(coins: coins, candidates: candidates,
                           holdings: try await Sweeps.hotHoldings(chain: chainName, coinIDs: coins.map(\.id), on: c, logger: logger), watched: watched)
        }
        if fullPass && !dryRun {  // a dry run reads every address but watches none: the next run is still a full pass
            lastFullScan.at.withLock { $0 = now }
            logger.info("sweep planner looked at every deposit address (full pass)", metadata: ["chain": "\(chainName)", "candidates": "\(records.candidates.count)"])
        }
        var holdings = records.holdings
        // One sweep per address: the first coin (tokens first) above its threshold.
        var seen = Set<String>()
        let candidates = records.candidates.filter { c in
            guard let cfg = settings.coins[c.symbol.uppercased()], c.balance >= BigInt(cfg.threshold), !seen.contains(c.address) else { return false }
            seen.insert(c.address)
            return true
        }.prefix(settings.maxPerRun)
        var gasByCoin: [Int32: Gas] = [:]
        for start in stride(from: candidates.startIndex, to: candidates.endIndex, by: max(1, chunk)) {
            let slice = Array(candidates[start..<min(start + max(1, chunk), candidates.endIndex)])
            // What the node says each address holds (EVM: JSON-RPC batches; TRON: 16 requests at a time).
            let reads = await self.reads(slice)
            var planned: [PlannedSweep] = []
            for (i, cand) in slice.enumerated() {
                guard let cfg = settings.coins[cand.symbol.uppercased()] else { continue }
                let balance = BigUInt(cand.balance)
                let read: NodeRead
                switch reads[i] {
                case .success(let r)?: read = r
                case .failure(let error)?:
                    report.waiting.append((cand.address, cand.symbol, cand.balance, "node: \(error)"))
                    continue
                case nil: continue
                }
                // The node must hold what our records say (a reorg or a record ahead of the node waits).
                guard read.coin >= balance else {
                    report.waiting.append((cand.address, cand.symbol, cand.balance, "the node shows \(read.coin), our records \(balance)"))
                    continue
                }
                // Destination: hot while it holds less than its cap, else cold (when the wallet has one).
                var role = "hot", destination = cand.hotAddress
                let held = holdings[cand.walletID]?[cand.coinID] ?? 0
                if let cap = cfg.hotCap, held >= BigInt(cap) {
                    if let cold = cand.coldAddress {
                        role = "cold"
                        destination = cold
                    } else {
                        logger.warning("hot wallet above its cap and the wallet has no cold address: sweeping to the hot address",
                                       metadata: ["chain": "\(chain.name)", "hot_address": "\(cand.hotAddress)", "coin": "\(cand.symbol)"])
                    }
                }
                let gas: Gas
                if let g = gasByCoin[cand.coinID] {
                    gas = g
                } else {
                    do {
                        gas = try await self.gas(isToken: cand.isToken, token: cand.coinType, from: try chain.kind.parseAddress(cand.address),
                                                 to: try chain.kind.parseAddress(destination), amount: balance)
                    } catch {
                        report.waiting.append((cand.address, cand.symbol, cand.balance, "node: fee estimate: \(error)"))
                        continue
                    }
                    gasByCoin[cand.coinID] = gas
                }
                let amount: BigUInt
                var topup: BigUInt = 0
                if cand.isToken {
                    amount = balance
                    let need = gas.total * BigUInt(settings.gasMarginPercent) / 100
                    if read.native < need { topup = need - read.native }
                } else {
                    guard balance > gas.total else {
                        report.waiting.append((cand.address, cand.symbol, cand.balance, "holds no more than the fee (\(gas.total))"))
                        continue
                    }
                    amount = balance - gas.total
                }
                // Dust rule: the gas weighed against the amount, in the coin's units.
                let cost: BigUInt? = cand.isToken
                    ? cfg.nativePrice.map { gas.total * $0 / BigUInt(10).power(chain.nativeDecimals) } : gas.total
                if let cost, cost * 1_000_000 > amount * cfg.dustFractionPPM {
                    report.waiting.append((cand.address, cand.symbol, cand.balance,
                                           "dust: gas worth \(cost) is more than \(cfg.dustFractionPPM) ppm of \(amount)"))
                    continue
                }
                if role == "hot" { holdings[cand.walletID, default: [:]][cand.coinID, default: 0] += BigInt(amount) }
                planned.append(PlannedSweep(chain: chain.name, merchantID: cand.merchantID, walletID: cand.walletID, addressID: cand.addressID,
                                            address: cand.address, coinID: cand.coinID, symbol: cand.symbol, amount: amount,
                                            destination: destination, destinationRole: role, gasEstimate: gas.total, topupAmount: topup))
            }
            report.planned += planned
            if !dryRun && !planned.isEmpty {
                let toStore = planned
                report.stored += try await database.transaction { c in try await Sweeps.insert(toStore, on: c, logger: logger) }
            }
        }
        if !dryRun && address == nil {
            // Still watched: what holds a threshold and was not planned now (it waits for the dust rule, the
            // node or the next run).
            let planned = Set(report.planned.map(\.addressID))
            let waiting = Set(records.candidates.filter { c in
                settings.coins[c.symbol.uppercased()].map { c.balance >= BigInt($0.threshold) } ?? false
            }.map(\.addressID)).subtracting(planned)
            let done = records.watched.filter { !waiting.contains($0.addressID) }
            let unwatched = fullPass ? waiting.subtracting(records.watched.map(\.addressID)).sorted() : []
            if !done.isEmpty || !unwatched.isEmpty {
                try await database.transaction { c in
                    try await Sweeps.unwatch(done, on: c, logger: logger)
                    try await Sweeps.watch(chain: chainName, addressIDs: unwatched, on: c, logger: logger)
                }
            }
        }
        return report
    }

    /// What the node says a candidate address holds: of the coin, and of the native coin (tokens only).
    struct NodeRead: Sendable {
        var coin: BigUInt
        var native: BigUInt
    }

    /// `read` of many candidates, by index; a failure is the candidate's own (it waits), not the run's.
    func reads(_ slice: [SweepCandidate]) async -> [Int: Result<NodeRead, any Error>] {
        if case .evm(let evm) = node {
            do {
                var queries: [(account: AccountID, token: AccountID?)] = []
                for cand in slice {
                    let from = try chain.kind.parseAddress(cand.address)
                    queries.append((from, cand.isToken ? try chain.kind.parseAddress(cand.coinType) : nil))
                    queries.append((from, nil))
                }
                let outcomes = try await evm.balances(queries)
                var out: [Int: Result<NodeRead, any Error>] = [:]
                for i in slice.indices {
                    switch (outcomes[2 * i], outcomes[2 * i + 1]) {
                    case (.success(let coin), .success(let native)): out[i] = .success(NodeRead(coin: coin, native: native))
                    case (.failure(let error), _), (_, .failure(let error)): out[i] = .failure(error)
                    }
                }
                return out
            } catch {
                return Dictionary(uniqueKeysWithValues: slice.indices.map { ($0, .failure(error)) })
            }
        }
        return await withTaskGroup(of: (Int, Result<NodeRead, any Error>).self) { group -> [Int: Result<NodeRead, any Error>] in
            var out: [Int: Result<NodeRead, any Error>] = [:]
            var next = 0
            func add() {
                let i = next, cand = slice[i]
                group.addTask {
                    do { return (i, .success(try await self.read(cand))) } catch { return (i, .failure(error)) }
                }
                next += 1
            }
            while next < min(16, slice.count) { add() }
            for await (i, r) in group {
                out[i] = r
                if next < slice.count { add() }
            }
            return out
        }
    }

    func read(_ cand: SweepCandidate) async throws -> NodeRead {
        let from = try chain.kind.parseAddress(cand.address)
        if cand.isToken {
            let coin = try await node.client.tokenBalance(of: from, token: try chain.kind.parseAddress(cand.coinType))
            return NodeRead(coin: coin, native: try await node.client.nativeBalance(of: from).amount)
        }
        let native = try await node.client.nativeBalance(of: from).amount
        return NodeRead(coin: native, native: native)
    }
}

/// Deposit address keys (`…/account'/0/index`) and gas address keys (`…/account'/2/0`), checked against the stored address. The branch key
/// (`…/account'/0`) is kept per account, so a key costs one child derivation, not five.
final class DepositKeys: Sendable {
    let master: ExtendedPrivateKey
    private let branches = Mutex<[String: ExtendedPrivateKey]>([:])

    init(master: ExtendedPrivateKey) {
        self.master = master
    }

    /// The key of `account`'s gas address (`…/account'/2/0`); an error when the seed does not derive `expected`.
    func gasKey(kind: ChainKit.ChainKind, account: Int?, expected: String) throws -> Secp256k1.PrivateKey {
        guard let account, account >= 0 else {
            throw PermanentJobError("the wallet of gas address \(expected) was attached from an xpub of another seed: this gateway cannot sign for it")
        }
        let scheme: AddressScheme = kind == .evm ? .evm : .tron
        let key = try master.addressKey(scheme: scheme, account: UInt32(account), change: 2, index: 0)
        let address = scheme.address(for: key.publicKey)
        guard address.caseInsensitiveCompare(expected) == .orderedSame else {
            throw PermanentJobError("the gateway seed derives \(address) for account \(account), not the wallet's gas address \(expected): wrong seed?")
        }
        return key
    }

    func key(kind: ChainKit.ChainKind, account: Int?, index: Int, expected: String) throws -> Secp256k1.PrivateKey {
        guard let account, account >= 0, index >= 0 else {
            throw PermanentJobError("the wallet of deposit address \(expected) was attached from an xpub of another seed: this gateway cannot sign for it")
        }
        let scheme: AddressScheme = kind == .evm ? .evm : .tron
        let cacheKey = "\(kind):\(account)"
        let branch: ExtendedPrivateKey
        if let b = branches.withLock({ $0[cacheKey] }) {
            branch = b
        } else {
            branch = try master.derived(path: scheme.accountPath(account: UInt32(account))).derived(childNumber: 0)
            branches.withLock { $0[cacheKey] = branch }
        }
        let key = try branch.derived(childNumber: UInt32(index)).privateKey
        let address = scheme.address(for: key.publicKey)
        guard address.caseInsensitiveCompare(expected) == .orderedSame else {
            throw PermanentJobError("the gateway seed derives \(address) for account \(account) index \(index), not the deposit address \(expected)")
        }
        return key
    }
}

/// Signs and sends one sweep's transactions.
final class Sweeper: Sendable {
    let chains: [String: ChainConfig]
    let nodes: [String: PaymentNode]
    let planners: [String: SweepPlanner]
    let hotKeys: HotKeys
    let depositKeys: DepositKeys
    let database: Database
    let logger: Logger
    /// Step jobs that arrive while a signing run is in flight go together into the next run.
    private let runner: Mutex<GroupedRunner<JobContext, JobOutcome>?> = Mutex(nil)

    init(config: GatewayConfig, seed: Data, database: Database, logger: Logger) throws {
        var chains: [String: ChainConfig] = [:], nodes: [String: PaymentNode] = [:], planners: [String: SweepPlanner] = [:]
        for chain in config.chains {
            let node = PaymentNode.make(chain, logger: logger)
            chains[chain.name] = chain
            nodes[chain.name] = node
            if let settings = chain.sweep {
                planners[chain.name] = SweepPlanner(chain: chain, settings: settings, node: node, database: database, logger: logger)
            }
        }
        self.chains = chains
        self.nodes = nodes
        self.planners = planners
        self.hotKeys = try HotKeys(seed: seed)
        self.depositKeys = DepositKeys(master: try ExtendedPrivateKey(seed: seed))
        self.database = database
        self.logger = logger
        let r = GroupedRunner<JobContext, JobOutcome>(maxBatch: 1_000, maxRunners: 2, runTimeout: .seconds(60)) { [weak self] batch in
            guard let self else { return batch.map { _ in .failure(CancellationError()) } }
            return await self.run(batch)
        }
        runner.withLock { $0 = r }
    }

    /// A transaction to sign: what it moves, from which key, with which fees.
    struct Transfer: Sendable {
        /// The sweep as the run read it (its state and top-up are checked again under its lock).
        var sweep: Sweep
        var from: String
        var to: String
        var key: Secp256k1.PrivateKey
        var coinID: Int32
        var tokenContract: String?
        var amount: BigUInt
        var gas: SweepPlanner.Gas
        var reference: TronReferenceBlock?
        var expiration: Int64 = 0
    }

    /// Joins the next signing run (StepHandler).
    func submit(_ ctx: JobContext) async throws -> JobOutcome {
        guard let r = runner.withLock({ $0 }) else { throw CancellationError() }
        return try await r.submit(ctx)
    }

    /// What one group of a signing run signs: top-ups from one funding address (one nonce range, like a
    /// withdrawal payer's hot address), or sweeps of one chain (each from its own deposit address, one nonce each).
    struct Batch: Sendable {
        struct Wait: Sendable { var id: Int64, delay: Duration }
        struct Failure: Sendable {
            var id: Int64
            var permanent: Bool
            var reason: String
            init(id: Int64, error: any Error) {
                self.id = id
                permanent = error is PermanentJobError
                reason = "\(error)"
            }
        }
        var purpose: String
        var chain: ChainConfig
        var node: PaymentNode
        var transfers: [Transfer] = []
        /// Sweeps that cannot be signed yet (the funding address short, no gas on the deposit address).
        var waits: [Wait] = []
        var failures: [Failure] = []
        /// EVM: the node's count for senders that have no nonce row yet.
        var initialNonces: [String: UInt64] = [:]

        /// The state a sweep moves to once its transaction of this batch is stored.
        var next: String { purpose == "topup" ? "gas_topup_sent" : "sweep_sent" }
    }

    /// What a run stored for one node, to broadcast after the commit.
    struct Stored: Sendable {
        var node: PaymentNode
        var txs: [SignedPayment]
    }

    /// One signing run over the step jobs that arrived together: the sweeps read at once; top-ups grouped
    /// by funding address and sweeps by chain, each group's node reads done once (EVM balances and nonce
    /// seeds in JSON-RPC batches); then ONE database transaction completes the jobs, locks the sweeps
    /// (only those still in the state this run read are signed), allocates the nonces, stores every
    /// signed transaction with its confirmation job and moves the sweeps; then batched broadcasts.
    /// Exactly once as before: a sweep leaves `planned`/`gas_confirmed` in the transaction that stores its
    /// transaction, and a sweep is only signed from `gas_confirmed` (or `planned` without a top-up).
    func run(_ batch: [JobContext]) async -> [Result<JobOutcome, any Error>] {
        var results = [Result<JobOutcome, any Error>?](repeating: nil, count: batch.count)
        var index: [Int64: Int] = [:]
        for (i, ctx) in batch.enumerated() {
            guard let id = Sweeps.sweepID(ref: ctx.job.ref) else {
                results[i] = .failure(PermanentJobError("job ref \(ctx.job.ref ?? "nil") is not sweep:<id>"))
                continue
            }
            if index[id] != nil {
                results[i] = .success(.completed)
                continue
            }
            index[id] = i
        }
        let logger = self.logger
        do {
            let ids = Array(index.keys)
            let sweeps = try await database.withConnection { c in try await Sweeps.find(ids: ids, on: c, logger: logger) }
            let found = Set(sweeps.map(\.id))
            for (id, i) in index where !found.contains(id) { results[i] = .success(.completed) }
            var groups: [String: [Sweep]] = [:]
            for s in sweeps {
                guard chains[s.chain] != nil, nodes[s.chain] != nil else {
                    results[index[s.id]!] = .failure(PermanentJobError("chain \(s.chain) is not in this sweep-worker's configuration"))
                    continue
                }
                switch s.state {
                case "planned" where s.topupAmount > 0: groups["topup\u{0}\(s.chain)\u{0}\(topUpSource(s) ?? "")", default: []].append(s)
                case "planned", "gas_confirmed": groups["sweep\u{0}\(s.chain)", default: []].append(s)
                default: results[index[s.id]!] = .success(.completed)  // in flight (chain-worker follows it) or finished
                }
            }
            let prepared: [Batch] = await withTaskGroup(of: Batch.self) { group in
                for (key, members) in groups {
                    let sorted = members.sorted { $0.id < $1.id }
                    group.addTask { key.hasPrefix("topup") ? await self.prepareTopUps(sorted) : await self.prepareSweeps(sorted) }
                }
                var out: [Batch] = []
                for await b in group { out.append(b) }
                return out.sorted { ($0.purpose, $0.chain.name, $0.transfers.first?.from ?? "") < ($1.purpose, $1.chain.name, $1.transfers.first?.from ?? "") }
            }
            var toSign: [Batch] = []
            for b in prepared {
                for w in b.waits { results[index[w.id]!] = .success(.snooze(w.delay)) }
                for f in b.failures {
                    results[index[f.id]!] = f.permanent ? .failure(PermanentJobError(f.reason)) : .success(.retry("preparing the \(b.purpose) failed: \(f.reason)"))
                }
                if !b.transfers.isEmpty { toSign.append(b) }
            }
            let inRun = toSign.flatMap { $0.transfers.map(\.sweep.id) }
            guard !inRun.isEmpty else { return results.map { $0 ?? .success(.completed) } }
            let jobs = inRun.map { batch[index[$0]!].job }
            let batches = toSign
            let stored = try await database.transaction { c -> [Stored] in
                let done = try await JobQueue.complete(jobs.map { ($0.id, $0.leaseToken) }, on: c, logger: logger)
                if let lost = jobs.first(where: { !done.contains($0.id) }) { throw LeaseLost(jobID: lost.id) }
                var current: [Int64: Sweep] = [:]
                for s in try await Sweeps.find(ids: inRun, lock: true, on: c, logger: logger) { current[s.id] = s }
                var out: [Stored] = []
                for b in batches {
                    // Only sweeps still where this run read them: another run may have moved one meanwhile.
                    let transfers = b.transfers.filter { t in
                        guard let now = current[t.sweep.id] else { return false }
                        return now.state == t.sweep.state && now.topupAmount == t.sweep.topupAmount
                    }
                    guard !transfers.isEmpty else { continue }
                    var nonces = [UInt64?](repeating: nil, count: transfers.count)
                    if b.chain.kind == .evm {
                        if b.purpose == "topup" {
                            let from = transfers[0].from
                            let first = try await Payments.allocateNonces(chain: b.chain.name, address: from, count: transfers.count,
                                                                          initial: b.initialNonces[from], on: c, logger: logger)
                            for i in transfers.indices { nonces[i] = first + UInt64(i) }
                        } else {
                            let byAddress = try await Payments.allocateNonce(chain: b.chain.name, addresses: transfers.map(\.from), initial: b.initialNonces,
                                                                             on: c, logger: logger)
                            for (i, t) in transfers.enumerated() { nonces[i] = byAddress[t.from] }
                        }
                    }
                    var txs: [SignedPayment] = []
                    for (i, t) in transfers.enumerated() { txs.append(try self.sign(t, nonce: nonces[i], chain: b.chain, refID: t.sweep.id)) }
                    try await Payments.store(txs, purpose: b.purpose, followAfter: max(b.chain.payments.pollInterval, .milliseconds(200)), on: c, logger: logger)
                    try await Sweeps.markSigned(txs.map { (id: $0.withdrawalID, txHash: b.purpose == "sweep" ? $0.txHash : nil) }, state: b.next, on: c,
                                                logger: logger)
                    out.append(Stored(node: b.node, txs: txs))
                }
                return out
            }
            for id in inRun { results[index[id]!] = .success(.completedInTransaction) }
            let count = stored.reduce(0) { $0 + $1.txs.count }
            if count > 0 { logger.info("top-ups and sweeps signed", metadata: ["count": "\(count)"]) }
            await OutgoingBroadcaster(database: database, logger: logger).broadcast(stored.map { (node: $0.node, txs: $0.txs) })
        } catch {
            logger.warning("sweep signing run failed; its jobs will run again", metadata: ["error": "\(DatabaseErrors.describe(error))"])
            for i in results.indices where results[i] == nil { results[i] = .success(.retry("sweep signing run failed: \(error)")) }
        }
        return results.map { $0 ?? .success(.completed) }
    }

    /// Where a sweep's top-up comes from: the wallet's gas address on a chain with `sweep.gas_wallet`, else
    /// its hot address (nil: a gas wallet is configured but the wallet has no gas address yet).
    func topUpSource(_ s: Sweep) -> String? {
        chains[s.chain]?.sweep?.gasWallet == true ? s.gasAddress : s.hotAddress
    }

    /// The funding address of a sweep's top-up and its key (checked against the stored address).
    func topUpSigner(_ s: Sweep, chain: ChainConfig) throws -> (address: String, key: Secp256k1.PrivateKey) {
        guard chain.sweep?.gasWallet == true else {
            return (s.hotAddress, try hotKeys.key(kind: chain.kind, account: s.accountIndex, expected: s.hotAddress))
        }
        guard let gas = s.gasAddress else {
            throw PermanentJobError("chains.\(chain.name).sweep.gas_wallet is on but the wallet has no gas address yet: run gatewayctl migrate")
        }
        return (gas, try depositKeys.gasKey(kind: chain.kind, account: s.accountIndex, expected: gas))
    }

    /// Top-ups of `sweeps` (one chain, one funding address): one fee estimate, one balance read, the nonce
    /// seed; greedy in sweep order, what the address cannot afford beside what it has in flight waits.
    func prepareTopUps(_ sweeps: [Sweep]) async -> Batch {
        let first = sweeps[0]
        let chain = chains[first.chain]!, node = nodes[first.chain]!
        var b = Batch(purpose: "topup", chain: chain, node: node)
        do {
            let (source, key) = try topUpSigner(first, chain: chain)
            let hot = try chain.kind.parseAddress(source)
            let planner = SweepPlanner(chain: chain, settings: chain.sweep ?? SweepConfig(), node: node, database: database, logger: logger)
            let gas = try await planner.gas(isToken: false, token: nil, from: hot, to: try chain.kind.parseAddress(first.address), amount: first.topupAmount)
            let native = try await node.client.nativeBalance(of: hot).amount
            struct Records: Sendable { var inFlight: (amounts: [Int32: BigUInt], maxFees: BigUInt), nativeID: Int32?, hasNonceRow: Bool }
            let logger = self.logger
            let records = try await database.withConnection { c in
                Records(inFlight: try await Payments.inFlight(chain: chain.name, from: source, on: c, logger: logger),
                        nativeID: try await Payments.nativeCoinID(chain: chain.name, on: c, logger: logger),
                        hasNonceRow: try await Payments.hasNonceRow(chain: chain.name, address: source, on: c, logger: logger))
            }
            guard let nativeID = records.nativeID else {
                throw PermanentJobError("chain \(chain.name) has no native coin in gateway.coins: a gas top-up is booked in it")
            }
            var reference: TronReferenceBlock?, expiration: Int64 = 0
            switch node {
            case .evm(let evm):
                if !records.hasNonceRow { b.initialNonces[source] = try await evm.nonce(of: hot).pending }
            case .tron(let tron):
                reference = try await tron.referenceBlock().0
                expiration = try await tron.nowBlock().ref.timestampMillis + chain.payments.expiration.inMilliseconds
            }
            let committed = records.inFlight.maxFees + (records.inFlight.amounts[nativeID] ?? 0)
            var free = native > committed ? native - committed : 0
            for s in sweeps {
                let need = s.topupAmount + gas.total
                guard free >= need else {
                    b.waits.append(.init(id: s.id, delay: chain.sweep?.interval ?? .seconds(30)))
                    continue
                }
                free -= need
                b.transfers.append(Transfer(sweep: s, from: source, to: s.address, key: key, coinID: nativeID, tokenContract: nil, amount: s.topupAmount,
                                            gas: gas, reference: reference, expiration: expiration))
            }
            if !b.waits.isEmpty {
                logger.warning("the hot (or gas) address cannot pay every gas top-up yet; those sweeps wait", metadata: [
                    "address": "\(source)", "waiting": "\(b.waits.count)", "free": "\(free)", "chain": "\(chain.name)",
                ])
            }
        } catch {
            b.transfers = []
            b.waits = []
            b.failures = sweeps.map { .init(id: $0.id, error: error) }
        }
        return b
    }

    /// Sweeps of one chain, each signed with its deposit address's key within the native coin the address
    /// holds: one fee estimate per (coin, destination), the deposit addresses' balances and nonce seeds in
    /// JSON-RPC batches (EVM), one reference block (TRON).
    func prepareSweeps(_ sweeps: [Sweep]) async -> Batch {
        let chain = chains[sweeps[0].chain]!, node = nodes[sweeps[0].chain]!
        var b = Batch(purpose: "sweep", chain: chain, node: node)
        var ready: [(sweep: Sweep, key: Secp256k1.PrivateKey, from: AccountID)] = []
        for s in sweeps {
            do {
                ready.append((s, try depositKeys.key(kind: chain.kind, account: s.accountIndex, index: s.derivationIndex, expected: s.address),
                              try chain.kind.parseAddress(s.address)))
            } catch {
                b.failures.append(.init(id: s.id, error: error))
            }
        }
        do {
            let planner = SweepPlanner(chain: chain, settings: chain.sweep ?? SweepConfig(), node: node, database: database, logger: logger)
            var gasBy: [String: SweepPlanner.Gas] = [:]
            func gasKey(_ s: Sweep) -> String { "\(s.coinID)\u{0}\(s.destination)" }
            for r in ready where gasBy[gasKey(r.sweep)] == nil {
                do {
                    gasBy[gasKey(r.sweep)] = try await planner.gas(isToken: r.sweep.isToken, token: r.sweep.tokenContract, from: r.from,
                                                                   to: try chain.kind.parseAddress(r.sweep.destination), amount: r.sweep.amount)
                } catch let error as ChainNodeError where chain.kind == .evm {
                    // A node may refuse to estimate for an address holding just its top-up once fees rose ("insufficient
                    // funds"): each sweep's planned gas stands, capped below by what its address holds.
                    logger.notice("fee estimate refused for sweeps; signing with the planned gas", metadata: ["chain": "\(chain.name)", "error": "\(error)"])
                    break
                }
            }
            func gas(_ s: Sweep) -> SweepPlanner.Gas {
                if let g = gasBy[gasKey(s)] { return g }
                let limit: UInt64 = s.isToken ? 100_000 : 21_000
                return SweepPlanner.Gas(limit: limit, price: s.gasEstimate / BigUInt(limit), tip: 0)
            }
            switch node {
            case .evm(let evm):
                let addresses = ready.map(\.sweep.address)
                let logger = self.logger
                let rows = try await database.withConnection { c in try await Payments.nonceRows(chain: chain.name, addresses: addresses, on: c, logger: logger) }
                let balances = try await evm.balances(ready.map { (account: $0.from, token: nil) })
                let seeds = ready.indices.filter { !rows.contains(ready[$0].sweep.address) }
                let counts = try await evm.pendingNonces(of: seeds.map { ready[$0].from })
                var failed = Set<Int>()
                for (j, i) in seeds.enumerated() {
                    switch counts[j] {
                    case .success(let n): b.initialNonces[ready[i].sweep.address] = n
                    case .failure(let error):
                        failed.insert(i)
                        b.failures.append(.init(id: ready[i].sweep.id, error: error))
                    }
                }
                var waiting = 0
                for (i, r) in ready.enumerated() where !failed.contains(i) {
                    let native: BigUInt
                    switch balances[i] {
                    case .success(let n): native = n
                    case .failure(let error):
                        b.failures.append(.init(id: r.sweep.id, error: error))
                        continue
                    }
                    let s = r.sweep
                    var g = gas(s)
                    let spendable = s.isToken ? native : (native > s.amount ? native - s.amount : 0)
                    // What the address holds caps the fee: a sweep never asks for gas it was not given.
                    g.price = min(g.price, spendable / BigUInt(g.limit))
                    g.tip = min(g.tip, g.price)
                    guard g.price > 0 else {
                        waiting += 1
                        b.waits.append(.init(id: s.id, delay: chain.sweep?.interval ?? .seconds(30)))
                        continue
                    }
                    b.transfers.append(Transfer(sweep: s, from: s.address, to: s.destination, key: r.key, coinID: s.coinID, tokenContract: s.tokenContract,
                                                amount: s.amount, gas: g))
                }
                if waiting > 0 {
                    logger.warning("deposit addresses hold no gas for their sweeps yet", metadata: ["chain": "\(chain.name)", "waiting": "\(waiting)"])
                }
            case .tron(let tron):
                let reference = try await tron.referenceBlock().0
                let expiration = try await tron.nowBlock().ref.timestampMillis + chain.payments.expiration.inMilliseconds
                for r in ready {
                    let s = r.sweep
                    b.transfers.append(Transfer(sweep: s, from: s.address, to: s.destination, key: r.key, coinID: s.coinID, tokenContract: s.tokenContract,
                                                amount: s.amount, gas: gas(s), reference: reference, expiration: expiration))
                }
            }
        } catch {
            let failedAlready = Set(b.failures.map(\.id))
            b.transfers = []
            b.waits = []
            b.failures += ready.filter { !failedAlready.contains($0.sweep.id) }.map { .init(id: $0.sweep.id, error: error) }
        }
        return b
    }

    func sign(_ t: Transfer, nonce: UInt64?, chain: ChainConfig, refID: Int64) throws -> SignedPayment {
        let kind = chain.kind
        switch kind {
        case .evm:
            guard let chainID = chain.chainID, let nonce else { throw PermanentJobError("chain \(chain.name) has no chain_id") }
            let to = try kind.parseAddress(t.to).evmAddress
            let tx: EVMEIP1559Transaction
            if let contract = t.tokenContract {
                tx = .erc20Transfer(chainID: chainID, nonce: nonce, maxPriorityFeePerGas: t.gas.tip, maxFeePerGas: t.gas.price, gasLimit: t.gas.limit,
                                    token: try kind.parseAddress(contract).evmAddress, to: to, amount: t.amount)
            } else {
                tx = .nativeTransfer(chainID: chainID, nonce: nonce, maxPriorityFeePerGas: t.gas.tip, maxFeePerGas: t.gas.price, to: to, value: t.amount,
                                     gasLimit: t.gas.limit)
            }
            let signed = try EVMTransaction.eip1559(tx).sign(with: t.key)
            return SignedPayment(withdrawalID: refID, coinID: t.coinID, chain: chain.name, from: t.from, to: t.to, amount: t.amount, nonce: nonce,
                                 expiration: nil, maxFee: t.gas.price, tip: t.gas.tip, gasLimit: t.gas.limit, txHash: EthHex.data(signed.hash),
                                 raw: signed.rawBytes)
        default:
            guard let reference = t.reference else { throw PermanentJobError("no reference block") }
            let owner = try kind.parseAddress(t.from).tronAddress, to = try kind.parseAddress(t.to).tronAddress
            let timestamp = Int64(Date().timeIntervalSince1970 * 1000)
            let raw: TronRawData
            if let contract = t.tokenContract {
                raw = try TronRawData.trc20Transfer(from: owner, token: try kind.parseAddress(contract).tronAddress, to: to, amount: t.amount,
                                                    feeLimit: chain.payments.feeLimit, reference: reference, expiration: t.expiration, timestamp: timestamp)
            } else {
                guard t.amount <= BigUInt(Int64.max) else { throw PermanentJobError("amount exceeds int64 sun") }
                raw = try TronRawData.trxTransfer(from: owner, to: to, amount: Int64(t.amount), reference: reference, expiration: t.expiration,
                                                  timestamp: timestamp)
            }
            let tx = try TronTransaction(rawData: raw).signed(with: t.key)
            return SignedPayment(withdrawalID: refID, coinID: t.coinID, chain: chain.name, from: t.from, to: t.to, amount: t.amount, nonce: nil,
                                 expiration: t.expiration, maxFee: BigUInt(chain.payments.feeLimit), tip: 0, gasLimit: 0, txHash: Hex.encode(tx.txID),
                                 raw: tx.serialized())
        }
    }
}

/// `replace` (ref `topup:<id>` or `sweep:<id>`): a stuck EVM top-up or sweep is replaced on its nonce with
/// higher fees, by autopay's rules (ReplaceHandler.replacementFees); whichever lands, exactly one moves
/// the funds. A sweep's replacement must fit in the native coin its deposit address holds, or it waits.
struct SweepReplaceHandler: JobHandler {
    let sweeper: Sweeper

    /// Tells operators (once per `OperatorNotifications.repeatLasting`) that a top-up or sweep is stuck.
    static func notifyStuck(_ ctx: JobContext, purpose: String, latest: OutgoingTx, why: String) async throws {
        try await ctx.database.transaction { c in
            try await OperatorNotifications.enqueueUnlessRecent(
                "\(purpose) \(latest.withdrawalID)'s transaction \(latest.txHash) on \(latest.chain) is not mined after "
                    + "\(DurationText.format(.seconds(Int64(latest.age)))) and cannot be replaced: \(why).",
                prefix: "Sweep stuck: ", ref: "\(purpose):\(latest.withdrawalID)", quiet: OperatorNotifications.repeatLasting, link: "/pipeline",
                on: c, logger: ctx.logger)
        }
    }

    func handle(_ ctx: JobContext) async throws -> JobOutcome {
        guard let (purpose, id) = Payments.paymentRef(ctx.job.ref), purpose != "withdrawal" else {
            throw PermanentJobError("job ref \(ctx.job.ref ?? "nil") is not topup:<id> or sweep:<id>")
        }
        let logger = ctx.logger, database = ctx.database
        let (open, found) = try await database.withConnection { c in
            (try await Payments.openTransactions(withdrawalIDs: [id], purpose: purpose, on: c, logger: logger)[id] ?? [],
             try await Sweeps.find(id, on: c, logger: logger))
        }
        guard let sweep = found, let latest = open.last, let nonce = latest.nonce, let chain = sweeper.chains[latest.chain],
            case .evm(let evm)? = sweeper.nodes[latest.chain]
        else { return .completed }
        guard latest.age >= chain.payments.replaceAfter.inSeconds else { return .completed }
        for tx in open {
            switch try await evm.transactionStatus(tx.txHash) {
            case .confirmed, .failed: return .completed  // one landed: chain-worker settles it
            case .pending, .notFound: continue
            }
        }
        let from = try chain.kind.parseAddress(latest.from), to = try chain.kind.parseAddress(latest.to)
        let isToken = purpose == "sweep" && sweep.isToken
        let query: FeeQuery = isToken ? .token(token: try chain.kind.parseAddress(sweep.tokenContract ?? ""), from: from, to: to, amount: latest.amount)
            : .native(from: from, to: to, amount: latest.amount)
        guard case .evm(let estimate) = try await evm.feeEstimate(query),
            let (maxFee, tip) = ReplaceHandler.replacementFees(latest: latest, estimate: estimate, chain: chain)
        else {
            logger.warning("a stuck sweep transaction cannot be replaced: its fees are at the configured cap",
                           metadata: ["\(purpose)": "\(id)", "tx": "\(latest.txHash)", "max_fee": "\(latest.maxFee)"])
            try await Self.notifyStuck(ctx, purpose: purpose, latest: latest,
                                       why: "its fees are at chains.\(latest.chain).payments.max_fee_per_gas (\(latest.maxFee) wei)")
            return .snooze(chain.payments.replaceAfter)
        }
        let key: Secp256k1.PrivateKey
        if purpose == "topup" {
            // The key of the address that sent it (the gas address, or the hot one before gas_wallet was turned on).
            if let gas = sweep.gasAddress, gas.caseInsensitiveCompare(latest.from) == .orderedSame {
                key = try sweeper.depositKeys.gasKey(kind: chain.kind, account: sweep.accountIndex, expected: gas)
            } else {
                key = try sweeper.hotKeys.key(kind: chain.kind, account: sweep.accountIndex, expected: sweep.hotAddress)
            }
        } else {
            key = try sweeper.depositKeys.key(kind: chain.kind, account: sweep.accountIndex, index: sweep.derivationIndex, expected: sweep.address)
            let native = try await evm.nativeBalance(of: from).amount
            let spendable = isToken ? native : (native > latest.amount ? native - latest.amount : 0)
            guard BigUInt(latest.gasLimit) * maxFee <= spendable else {
                logger.warning("a stuck sweep cannot be replaced: its deposit address holds too little gas for higher fees",
                               metadata: ["sweep": "\(id)", "tx": "\(latest.txHash)", "native": "\(native)"])
                try await Self.notifyStuck(ctx, purpose: purpose, latest: latest,
                                           why: "its deposit address holds too little gas (\(native) wei) for higher fees")
                return .snooze(chain.payments.replaceAfter)
            }
        }
        let transfer = Sweeper.Transfer(sweep: sweep, from: latest.from, to: latest.to, key: key, coinID: latest.coinID, tokenContract: isToken ? sweep.tokenContract : nil,
                                        amount: latest.amount, gas: SweepPlanner.Gas(limit: latest.gasLimit, price: maxFee, tip: tip))
        let signed = try sweeper.sign(transfer, nonce: nonce, chain: chain, refID: id)
        let expected = purpose == "topup" ? "gas_topup_sent" : "sweep_sent"
        let stored = try await database.transaction { c -> Bool in
            let current = try await Sweeps.find(id, lock: true, on: c, logger: logger)
            let still = try await Payments.openTransactions(withdrawalIDs: [id], purpose: purpose, on: c, logger: logger)[id] ?? []
            guard current?.state == expected, still.last?.id == latest.id else {
                try await ctx.complete(in: c)
                return false
            }
            try await Payments.store([signed], purpose: purpose, replacing: [id: latest.id], followAfter: chain.payments.pollInterval, on: c, logger: logger)
            if purpose == "sweep" { try await Sweeps.markSigned(id, state: expected, txHash: signed.txHash, on: c, logger: logger) }
            try await ctx.complete(in: c)
            return true
        }
        if stored {
            logger.notice("stuck sweep transaction replaced on the same nonce", metadata: [
                "\(purpose)": "\(id)", "nonce": "\(nonce)", "old_tx": "\(latest.txHash)", "new_tx": "\(signed.txHash)", "max_fee": "\(maxFee)",
            ])
            do {
                _ = try await evm.broadcast(signed.raw)
                try await database.transaction { c in try await Payments.markBroadcast([signed.txHash], on: c, logger: logger) }
            } catch {
                logger.warning("broadcast failed; the confirmation job will send it again", metadata: ["tx": "\(signed.txHash)", "error": "\(error)"])
            }
        }
        return .completedInTransaction
    }
}

/// `plan`: one planner run for the chain of ref `chain:<name>`, then again after the chain's interval.
/// A failed run (node down) is logged and tried at the next interval: the planner never dies.
struct PlanHandler: JobHandler {
    let sweeper: Sweeper

    func handle(_ ctx: JobContext) async throws -> JobOutcome {
        guard let ref = ctx.job.ref, ref.hasPrefix("chain:") else { throw PermanentJobError("job ref \(ctx.job.ref ?? "nil") is not chain:<name>") }
        let name = String(ref.dropFirst("chain:".count))
        guard let planner = sweeper.planners[name] else {
            ctx.logger.warning("a planner job for a chain this sweep-worker does not sweep", metadata: ["chain": "\(name)"])
            return .snooze(.seconds(60))
        }
        do {
            let report = try await planner.plan(dryRun: false)
            if !report.stored.isEmpty || !report.waiting.isEmpty {
                ctx.logger.info("sweeps planned", metadata: ["chain": "\(name)", "planned": "\(report.stored.count)", "waiting": "\(report.waiting.count)"])
            }
        } catch {
            ctx.logger.warning("sweep planning failed; trying again at the next interval", metadata: ["chain": "\(name)", "error": "\(DatabaseErrors.describe(error))"])
        }
        return .snooze(planner.settings.interval)
    }
}

/// `sweep`: the sweep's next step.
struct StepHandler: JobHandler {
    let sweeper: Sweeper
    func handle(_ ctx: JobContext) async throws -> JobOutcome { try await sweeper.submit(ctx) }
}

/// Makes sure each swept chain has its planner job (a unique key: one per chain however many workers
/// start), then waits for shutdown.
struct PlannerSchedule: Service {
    let chains: [String]
    let database: Database
    let logger: Logger

    func run() async throws {
        while !chains.isEmpty && !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                try await database.transaction { c in
                    _ = try await JobQueue.enqueue(chains.map { Sweeps.planJob(chain: $0) }, on: c, logger: logger)
                }
                break
            } catch {
                logger.warning("could not schedule the sweep planners; trying again", metadata: ["error": "\(DatabaseErrors.describe(error))"])
                try? await Task.sleep(for: .seconds(2))
            }
        }
        try? await gracefulShutdown()
    }
}
