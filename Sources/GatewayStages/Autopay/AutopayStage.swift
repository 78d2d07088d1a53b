import BigInt
import ChainKit
import Foundation
import GatewayCore
import GatewayRuntime
import GatewayServices
import Logging
import PostgresNIO
import Synchronization

/// The autopay stage: pays approved withdrawals from their merchant's hot wallet, exactly once
/// (DESIGN.md §4). The only process besides sweep-worker that loads the seed.
public enum AutopayStage {
    /// Handlers by job kind: `pay`, `replace` (a stuck EVM transaction, same nonce, higher fees),
    /// `release` (the configured automatic retry of a withdrawal held for the hot wallet).
    public static func handlers(_ env: StageRunner.Environment) throws -> [String: any JobHandler] {
        let seed: Data
        do {
            seed = try env.config.wallet.loadSeed(relativeTo: env.config.source)
        } catch let e as ConfigError {
            throw ConfigError(key: e.key, "autopay-worker signs payments and needs the gateway seed: \(e.problem)")
        }
        let payer = try Payer(config: env.config, seed: seed, database: env.database, logger: env.logger)
        return [Payments.payJobKind: PayHandler(payer: payer), Payments.replaceJobKind: ReplaceHandler(payer: payer),
                Payments.releaseJobKind: ReleaseHandler()]
    }
}

/// Hot wallet keys, derived from the seed on first use and checked against the wallet's hot address.
final class HotKeys: Sendable {
    private let master: ExtendedPrivateKey
    private let cache = Mutex<[String: Secp256k1.PrivateKey]>([:])

    init(seed: Data) throws {
        master = try ExtendedPrivateKey(seed: seed)
    }

    /// The key of `account`'s hot address (`…/account'/1/0`); an error when the seed does not derive `expected`.
    func key(kind: ChainKit.ChainKind, account: Int?, expected: String) throws -> Secp256k1.PrivateKey {
        guard let account, account >= 0 else {
            throw PermanentJobError("the wallet of hot address \(expected) was attached from an xpub of another seed: this gateway cannot sign for it")
        }
        let cacheKey = "\(kind):\(account)"
        if let k = cache.withLock({ $0[cacheKey] }) { return k }
        let scheme: AddressScheme = kind == .evm ? .evm : .tron
        let key = try master.addressKey(scheme: scheme, account: UInt32(account), change: 1, index: 0)
        let address = scheme.address(for: key.publicKey)
        guard address.caseInsensitiveCompare(expected) == .orderedSame else {
            throw PermanentJobError("the gateway seed derives \(address) for account \(account), not the wallet's hot address \(expected): wrong seed?")
        }
        cache.withLock { $0[cacheKey] = key }
        return key
    }
}

/// A configured chain's node, in the protocol's own client (TRON needs reference blocks, EVM nonces).
enum PaymentNode: Sendable {
    case evm(EVMNodeClient)
    case tron(TronNodeClient)

    var client: any ChainNodeClient {
        switch self {
        case .evm(let c): return c
        case .tron(let c): return c
        }
    }

    static func make(_ chain: ChainConfig, logger: Logger) -> PaymentNode {
        var logger = logger
        logger[metadataKey: "chain"] = "\(chain.name)"
        switch chain.kind {
        case .evm: return .evm(EVMNodeClient(options: chain.nodeClientOptions, logger: logger))
        case .tron: return .tron(TronNodeClient(options: chain.nodeClientOptions, logger: logger))
        }
    }
}

/// Signs and broadcasts payments. Jobs that arrive while a signing run is in flight go together into
/// the next run: one transaction allocates each hot address's nonces once and stores every signed
/// transaction, so payments from one address serialise only there.
final class Payer: Sendable {
    let chains: [String: ChainConfig]
    let nodes: [String: PaymentNode]
    let keys: HotKeys
    let database: Database
    let logger: Logger
    let settings: AutopaySettings
    let reviewLevels: [ReviewLevel]
    private let runner: Mutex<GroupedRunner<JobContext, JobOutcome>?> = Mutex(nil)

    init(config: GatewayConfig, seed: Data, database: Database, logger: Logger) throws {
        var chains: [String: ChainConfig] = [:]
        var nodes: [String: PaymentNode] = [:]
        for chain in config.chains {
            chains[chain.name] = chain
            nodes[chain.name] = PaymentNode.make(chain, logger: logger)
        }
        self.chains = chains
        self.nodes = nodes
        self.keys = try HotKeys(seed: seed)
        self.database = database
        self.logger = logger
        self.settings = config.autopay
        self.reviewLevels = config.review.levels
        let maxBatch = config.autopay.maxBatch
        let r = GroupedRunner<JobContext, JobOutcome>(maxBatch: maxBatch, maxRunners: 2, runTimeout: .seconds(60)) { [weak self] batch in
            guard let self else { return batch.map { _ in .failure(CancellationError()) } }
            return await self.pay(batch)
        }
        runner.withLock { $0 = r }
    }

    func submit(_ ctx: JobContext) async throws -> JobOutcome {
        guard let r = runner.withLock({ $0 }) else { throw CancellationError() }
        return try await r.submit(ctx)
    }

    /// What one hot address will sign in a run.
    struct Plan: Sendable {
        var chain: ChainConfig
        var node: PaymentNode
        var key: Secp256k1.PrivateKey
        var hotAddress: String
        var pay: [PaymentOrder] = []
        var short: [PaymentOrder] = []
        var shortDetail = ""
        // EVM
        var initialNonce: UInt64?
        var maxFee: BigUInt = 0
        var tip: BigUInt = 0
        var gasLimits: [Int64: UInt64] = [:]
        // TRON
        var reference: TronReferenceBlock?
        var expiration: Int64 = 0
        var timestamp: Int64 = 0
    }

    struct PlanOutcome: Sendable {
        var key: String
        var result: Result<Plan, any Error>
    }

    /// One signing run.
    func pay(_ batch: [JobContext]) async -> [Result<JobOutcome, any Error>] {
        var results = [Result<JobOutcome, any Error>?](repeating: nil, count: batch.count)
        var byWithdrawal: [Int64: Int] = [:]
        for (i, ctx) in batch.enumerated() {
            guard let id = Payments.withdrawalID(ref: ctx.job.ref) else {
                results[i] = .failure(PermanentJobError("job ref \(ctx.job.ref ?? "nil") is not withdrawal:<id>"))
                continue
            }
            if byWithdrawal[id] != nil { results[i] = .success(.completed); continue }
            byWithdrawal[id] = i
        }
        do {
            let orders = try await database.withConnection { c in
                try await Payments.approvedOrders(Array(byWithdrawal.keys), lock: false, on: c, logger: self.logger)
            }
            let found = Set(orders.map(\.withdrawalID))
            for (id, i) in byWithdrawal where !found.contains(id) {
                results[i] = .success(.completed)  // no longer approved: paid, held or decided otherwise already
            }
            // Plan each hot address concurrently (node reads only).
            let groups = Dictionary(grouping: orders) { "\($0.chain)\u{0}\($0.hotAddress)" }
            // (A struct, not a tuple, as the group's element: a release build crashed copying a tuple result.)
            let planned: [PlanOutcome] = await withTaskGroup(of: PlanOutcome.self) { group in
                for (key, members) in groups {
                    group.addTask {
                        do { return PlanOutcome(key: key, result: .success(try await self.plan(members))) } catch {
                            return PlanOutcome(key: key, result: .failure(error))
                        }
                    }
                }
                var out: [PlanOutcome] = []
                for await r in group { out.append(r) }
                return out.sorted { $0.key < $1.key }
            }
            var plans: [Plan] = []
            for outcome in planned {
                let key = outcome.key
                switch outcome.result {
                case .success(let p): plans.append(p)
                case .failure(let error):
                    let outcome: Result<JobOutcome, any Error> =
                        error is PermanentJobError ? .failure(error) : .success(.retry("planning the payment failed: \(error)"))
                    for o in groups[key] ?? [] { results[byWithdrawal[o.withdrawalID]!] = outcome }
                    logger.warning("payment planning failed", metadata: ["group": "\(key.replacingOccurrences(of: "\u{0}", with: " "))", "error": "\(error)"])
                }
            }
            let inRun = plans.flatMap { $0.pay.map(\.withdrawalID) + $0.short.map(\.withdrawalID) }
            guard !inRun.isEmpty else { return results.map { $0 ?? .success(.completed) } }
            let jobs = inRun.map { batch[byWithdrawal[$0]!].job }
            let plansToSign = plans
            let signed = try await database.transaction { c -> [(Plan, [SignedPayment])] in
                var plans = plansToSign
                // Everything that needs no nonce first: a nonce row stays locked from allocation to commit,
                // and other runs paying from the same address wait for it.
                let done = try await JobQueue.complete(jobs.map { ($0.id, $0.leaseToken) }, on: c, logger: self.logger)
                if let lost = jobs.first(where: { !done.contains($0.id) }) { throw LeaseLost(jobID: lost.id) }
                let still = Set(try await Payments.approvedOrders(inRun, lock: true, on: c, logger: self.logger).map(\.withdrawalID))
                for i in plans.indices {
                    plans[i].pay = plans[i].pay.filter { still.contains($0.withdrawalID) }
                    plans[i].short = plans[i].short.filter { still.contains($0.withdrawalID) }
                    try await Payments.holdForHotWallet(plans[i].short, detail: plans[i].shortDetail, retryAfter: self.settings.hotWalletRetry,
                                                        levels: self.reviewLevels, on: c, logger: self.logger)
                }
                var out: [(Plan, [SignedPayment])] = []
                for plan in plans {
                    let txs = try await self.sign(plan, on: c)
                    // The first look comes after this run's own broadcasts (a look at a still-`signed` one re-sends it).
                    try await Payments.store(txs, followAfter: max(plan.chain.payments.pollInterval, .seconds(1)), on: c, logger: self.logger)
                    out.append((plan, txs))
                }
                return out
            }
            for id in inRun { results[byWithdrawal[id]!] = .success(.completedInTransaction) }
            let count = signed.reduce(0) { $0 + $1.1.count }
            if count > 0 { logger.info("payments signed", metadata: ["count": "\(count)"]) }
            await broadcast(signed)
        } catch {
            logger.warning("signing run failed; its jobs will run again", metadata: ["error": "\(DatabaseErrors.describe(error))"])
            for i in results.indices where results[i] == nil { results[i] = .success(.retry("signing run failed: \(error)")) }
        }
        return results.map { $0 ?? .success(.completed) }
    }

    /// Reads what the hot address holds and what signing needs (fees, reference block, nonce seed),
    /// and splits the orders into those it can pay and those it cannot.
    func plan(_ orders: [PaymentOrder]) async throws -> Plan {
        let first = orders[0]
        guard let chain = chains[first.chain], let node = nodes[first.chain] else {
            throw PermanentJobError("chain \(first.chain) is not in this autopay-worker's configuration")
        }
        let key = try keys.key(kind: chain.kind, account: first.accountIndex, expected: first.hotAddress)
        var plan = Plan(chain: chain, node: node, key: key, hotAddress: first.hotAddress)
        let hot = try chain.kind.parseAddress(first.hotAddress)
        let inFlight = try await database.withConnection { c in
            try await Payments.inFlight(chain: chain.name, from: first.hotAddress, on: c, logger: self.logger)
        }
        // What the hot address holds, per token and native.
        var tokenBalance: [String: BigUInt] = [:]
        for contract in Set(orders.compactMap(\.tokenContract)) {
            tokenBalance[contract] = try await node.client.tokenBalance(of: hot, token: try chain.kind.parseAddress(contract))
        }
        var native = try await node.client.nativeBalance(of: hot).amount
        var feePerPayment: [Bool: BigUInt] = [:]  // by isToken
        switch node {
        case .evm(let evm):
            if !(try await database.withConnection { c in
                try await Payments.hasNonceRow(chain: chain.name, address: first.hotAddress, on: c, logger: self.logger)
            }) {
                plan.initialNonce = try await evm.nonce(of: hot).pending
            }
            let sample = first
            let to = try chain.kind.parseAddress(sample.destination)
            let query: FeeQuery = sample.tokenContract.map { .token(token: (try? chain.kind.parseAddress($0)) ?? hot, from: hot, to: to, amount: sample.sentAmount) }
                ?? .native(from: hot, to: to, amount: sample.sentAmount)
            guard case .evm(let fee) = try await evm.feeEstimate(query) else { throw PermanentJobError("not an EVM fee estimate") }
            plan.maxFee = min(fee.maxFeePerGas, chain.payments.maxFeePerGas)
            plan.tip = min(fee.maxPriorityFeePerGas, plan.maxFee)
            if fee.maxFeePerGas > chain.payments.maxFeePerGas {
                logger.warning("the node suggests a fee above the configured cap; signing at the cap",
                               metadata: ["chain": "\(chain.name)", "suggested": "\(fee.maxFeePerGas)", "cap": "\(chain.payments.maxFeePerGas)"])
            }
            // Token transfers to a new holder cost more than the sample: sign with room to spare (unused gas is not paid).
            let tokenGas = max(fee.gasLimit, 100_000)
            for o in orders { plan.gasLimits[o.withdrawalID] = o.tokenContract == nil ? 21_000 : tokenGas }
            feePerPayment[true] = BigUInt(tokenGas) * plan.maxFee
            feePerPayment[false] = BigUInt(21_000) * plan.maxFee
        case .tron(let tron):
            let (reference, _) = try await tron.referenceBlock()
            let head = try await tron.nowBlock()
            plan.reference = reference
            plan.expiration = head.ref.timestampMillis + chain.payments.expiration.inMilliseconds
            plan.timestamp = Int64(Date().timeIntervalSince1970 * 1000)
            // Energy burns up to fee_limit; bandwidth and a possible activation are under 1.2 TRX.
            feePerPayment[true] = BigUInt(chain.payments.feeLimit) + 1_200_000
            feePerPayment[false] = 1_200_000
        }
        // Greedy in withdrawal order: what is already in flight from the address is spoken for.
        for (coin, amount) in inFlight.amounts {
            if let contract = orders.first(where: { $0.coinID == coin })?.tokenContract {
                tokenBalance[contract] = tokenBalance[contract].map { $0 > amount ? $0 - amount : 0 }
            } else if orders.contains(where: { $0.coinID == coin }) {
                native = native > amount ? native - amount : 0
            }
        }
        native = native > inFlight.maxFees ? native - inFlight.maxFees : 0
        for o in orders {
            let fee = feePerPayment[o.tokenContract != nil] ?? 0
            if let contract = o.tokenContract {
                let have = tokenBalance[contract] ?? 0
                guard have >= o.sentAmount, native >= fee else {
                    plan.short.append(o)
                    plan.shortDetail = have < o.sentAmount
                        ? "token balance \(have) (base units, after payments in flight) is below \(o.sentAmount)"
                        : "native balance \(native) cannot pay the network fee \(fee)"
                    continue
                }
                tokenBalance[contract] = have - o.sentAmount
                native -= fee
            } else {
                guard native >= o.sentAmount + fee else {
                    plan.short.append(o)
                    plan.shortDetail = "native balance \(native) (after payments in flight) is below \(o.sentAmount) + fee \(fee)"
                    continue
                }
                native -= o.sentAmount + fee
            }
            plan.pay.append(o)
        }
        return plan
    }

    /// Signs a plan's payments (EVM: consecutive nonces from the address's row, locked until commit).
    func sign(_ plan: Plan, on c: DatabaseConnection) async throws -> [SignedPayment] {
        guard !plan.pay.isEmpty else { return [] }
        let kind = plan.chain.kind
        var out: [SignedPayment] = []
        switch plan.node {
        case .evm:
            guard let chainID = plan.chain.chainID else { throw PermanentJobError("chain \(plan.chain.name) has no chain_id") }
            let first = try await Payments.allocateNonces(chain: plan.chain.name, address: plan.hotAddress, count: plan.pay.count,
                                                          initial: plan.initialNonce, on: c, logger: logger)
            for (i, o) in plan.pay.enumerated() {
                let nonce = first + UInt64(i)
                let gasLimit = plan.gasLimits[o.withdrawalID] ?? 100_000
                let signed = try Self.signEVM(o, chainID: chainID, nonce: nonce, maxFee: plan.maxFee, tip: plan.tip, gasLimit: gasLimit, key: plan.key,
                                              kind: kind)
                out.append(SignedPayment(withdrawalID: o.withdrawalID, coinID: o.coinID, chain: o.chain, from: o.hotAddress, to: o.destination,
                                         amount: o.sentAmount, nonce: nonce, expiration: nil, maxFee: plan.maxFee, tip: plan.tip, gasLimit: gasLimit,
                                         txHash: EthHex.data(signed.hash), raw: signed.rawBytes))
            }
        case .tron:
            guard let reference = plan.reference else { throw PermanentJobError("no reference block") }
            let owner = try kind.parseAddress(plan.hotAddress).tronAddress
            for (i, o) in plan.pay.enumerated() {
                let to = try kind.parseAddress(o.destination).tronAddress
                let raw: TronRawData
                if let contract = o.tokenContract {
                    raw = try TronRawData.trc20Transfer(from: owner, token: try kind.parseAddress(contract).tronAddress, to: to, amount: o.sentAmount,
                                                        feeLimit: plan.chain.payments.feeLimit, reference: reference, expiration: plan.expiration,
                                                        timestamp: plan.timestamp + Int64(i))
                } else {
                    guard o.sentAmount <= BigUInt(Int64.max) else { throw PermanentJobError("amount exceeds int64 sun") }
                    raw = try TronRawData.trxTransfer(from: owner, to: to, amount: Int64(o.sentAmount), reference: reference,
                                                      expiration: plan.expiration, timestamp: plan.timestamp + Int64(i))
                }
                let tx = try TronTransaction(rawData: raw).signed(with: plan.key)
                out.append(SignedPayment(withdrawalID: o.withdrawalID, coinID: o.coinID, chain: o.chain, from: o.hotAddress, to: o.destination,
                                         amount: o.sentAmount, nonce: nil, expiration: plan.expiration, maxFee: BigUInt(plan.chain.payments.feeLimit),
                                         tip: 0, gasLimit: 0, txHash: Hex.encode(tx.txID), raw: tx.serialized()))
            }
        }
        return out
    }

    static func signEVM(_ o: PaymentOrder, chainID: UInt64, nonce: UInt64, maxFee: BigUInt, tip: BigUInt, gasLimit: UInt64,
                        key: Secp256k1.PrivateKey, kind: ChainKit.ChainKind) throws -> SignedEVMTransaction {
        let to = try kind.parseAddress(o.destination).evmAddress
        let tx: EVMEIP1559Transaction
        if let contract = o.tokenContract {
            tx = .erc20Transfer(chainID: chainID, nonce: nonce, maxPriorityFeePerGas: tip, maxFeePerGas: maxFee, gasLimit: gasLimit,
                                token: try kind.parseAddress(contract).evmAddress, to: to, amount: o.sentAmount)
        } else {
            tx = .nativeTransfer(chainID: chainID, nonce: nonce, maxPriorityFeePerGas: tip, maxFeePerGas: maxFee, to: to, value: o.sentAmount,
                                 gasLimit: gasLimit)
        }
        return try EVMTransaction.eip1559(tx).sign(with: key)
    }

    /// Sends stored transactions (EVM in nonce order per address). A failure here loses nothing: the
    /// confirmation job re-sends the stored bytes. (OutgoingBroadcaster: shared with sweep-worker.)
    func broadcast(_ signed: [(Plan, [SignedPayment])]) async {
        await OutgoingBroadcaster(database: database, logger: logger).broadcast(signed.map { (node: $0.0.node, txs: $0.1) })
    }

    /// Broadcasts one stored transaction; true when the node accepted it or already had it.
    func send(_ raw: Data, hash: String, node: PaymentNode) async -> Bool {
        await OutgoingBroadcaster(database: database, logger: logger).send(raw, hash: hash, node: node)
    }
}

/// `pay`: joins the next signing run.
struct PayHandler: JobHandler {
    let payer: Payer
    func handle(_ ctx: JobContext) async throws -> JobOutcome { try await payer.submit(ctx) }
}

/// `replace`: a transaction stuck past `replace_after` is replaced on the same nonce with higher fees
/// (both caps raised by at least `replace_bump_percent`, under `max_fee_per_gas`). Whichever lands,
/// exactly one pays: they share the nonce.
struct ReplaceHandler: JobHandler {
    let payer: Payer

    func handle(_ ctx: JobContext) async throws -> JobOutcome {
        guard let id = Payments.withdrawalID(ref: ctx.job.ref) else { throw PermanentJobError("job ref \(ctx.job.ref ?? "nil") is not withdrawal:<id>") }
        let logger = ctx.logger
        let open = try await ctx.database.withConnection { c in try await Payments.openTransactions(withdrawalID: id, on: c, logger: logger) }
        guard let latest = open.last, let nonce = latest.nonce, let chain = payer.chains[latest.chain], case .evm(let evm)? = payer.nodes[latest.chain]
        else { return .completed }
        guard latest.age >= chain.payments.replaceAfter.inSeconds else { return .completed }  // replaced by someone else meanwhile
        for tx in open {
            switch try await evm.transactionStatus(tx.txHash) {
            case .confirmed, .failed: return .completed  // one landed: chain-worker settles it
            case .pending, .notFound: continue
            }
        }
        var order: PaymentOrder?
        var accountIndex: Int?
        var hotAddress = ""
        for try await r in try await ctx.database.query("""
            SELECT w.merchant_id, k.is_token, k.coin_type, wl.hot_address, coalesce(wl.account_index, -1)
            FROM gateway.withdrawals w JOIN gateway.coins k ON k.id = w.coin_id
            JOIN gateway.wallets wl ON wl.merchant_id = w.merchant_id AND wl.chain = w.chain WHERE w.id = \(id)
            """).decode((Int64, Bool, String, String, Int32).self) {
            hotAddress = r.3
            accountIndex = r.4 < 0 ? nil : Int(r.4)
            order = PaymentOrder(withdrawalID: id, merchantID: r.0, coinID: latest.coinID, chain: latest.chain, destination: latest.to,
                                 sentAmount: latest.amount, tokenContract: r.1 ? r.2 : nil, hotAddress: r.3, accountIndex: accountIndex)
        }
        guard let order, hotAddress.caseInsensitiveCompare(latest.from) == .orderedSame else { return .completed }
        let key = try payer.keys.key(kind: chain.kind, account: accountIndex, expected: hotAddress)
        let hot = try chain.kind.parseAddress(hotAddress)
        let to = try chain.kind.parseAddress(order.destination)
        let query: FeeQuery = try order.tokenContract.map { .token(token: try chain.kind.parseAddress($0), from: hot, to: to, amount: order.sentAmount) }
            ?? .native(from: hot, to: to, amount: order.sentAmount)
        guard case .evm(let estimate) = try await evm.feeEstimate(query) else { return .completed }
        guard let (maxFee, tip) = Self.replacementFees(latest: latest, estimate: estimate, chain: chain) else {
            logger.warning("a stuck payment cannot be replaced: its fees are at the configured cap (chains.<name>.payments.max_fee_per_gas)",
                           metadata: ["withdrawal": "\(id)", "tx": "\(latest.txHash)", "max_fee": "\(latest.maxFee)"])
            try await ctx.database.transaction { c in
                try await OperatorNotifications.enqueueUnlessRecent(
                    "withdrawal \(id)'s transaction \(latest.txHash) on \(latest.chain) (nonce \(nonce)) is not mined after "
                        + "\(DurationText.format(.seconds(Int64(latest.age)))) and cannot be replaced: its fees are at chains.\(latest.chain)."
                        + "payments.max_fee_per_gas (\(latest.maxFee) wei). Raise the cap (and restart autopay-worker) or wait for fees to fall.",
                    prefix: "Payment stuck: ", ref: "withdrawal:\(id)", quiet: OperatorNotifications.repeatLasting, on: c, logger: logger)
            }
            return .snooze(chain.payments.replaceAfter)
        }
        let signed = try Payer.signEVM(order, chainID: chain.chainID ?? 0, nonce: nonce, maxFee: maxFee, tip: tip, gasLimit: latest.gasLimit,
                                       key: key, kind: chain.kind)
        let payment = SignedPayment(withdrawalID: id, coinID: latest.coinID, chain: latest.chain, from: latest.from, to: latest.to,
                                    amount: latest.amount, nonce: nonce, expiration: nil, maxFee: maxFee, tip: tip, gasLimit: latest.gasLimit,
                                    txHash: EthHex.data(signed.hash), raw: signed.rawBytes)
        let stored = try await ctx.database.transaction { c -> Bool in
            var state: String?
            for try await s in try await c.query("SELECT state FROM gateway.withdrawals WHERE id = \(id) FOR UPDATE", logger: logger).decode(String.self) {
                state = s
            }
            let current = try await Payments.openTransactions(withdrawalID: id, on: c, logger: logger)
            guard state == "signed" || state == "broadcast", current.last?.id == latest.id else {
                try await ctx.complete(in: c)
                return false
            }
            try await Payments.store([payment], replacing: [id: latest.id], followAfter: chain.payments.pollInterval, on: c, logger: logger)
            try await ctx.complete(in: c)
            return true
        }
        if stored {
            logger.notice("stuck payment replaced on the same nonce", metadata: [
                "withdrawal": "\(id)", "nonce": "\(nonce)", "old_tx": "\(latest.txHash)", "new_tx": "\(payment.txHash)",
                "max_fee": "\(maxFee)", "tip": "\(tip)",
            ])
            if await payer.send(payment.raw, hash: payment.txHash, node: .evm(evm)) {
                try? await ctx.database.transaction { c in try await Payments.markBroadcast([payment.txHash], on: c, logger: logger) }
            }
        }
        return .completedInTransaction
    }
}

extension ReplaceHandler {
    /// The fees of a replacement of `latest` on its nonce: both caps raised by `replace_bump_percent` (at
    /// least the node's estimate), under `max_fee_per_gas`; nil when the cap leaves no 10 % raise (geth
    /// refuses a replacement below that). Withdrawals, sweeps and top-ups are replaced alike.
    static func replacementFees(latest: OutgoingTx, estimate: EVMFeeEstimate, chain: ChainConfig) -> (maxFee: BigUInt, tip: BigUInt)? {
        let bump = BigUInt(100 + chain.payments.replaceBumpPercent)
        var tip = max(estimate.maxPriorityFeePerGas, latest.tip * bump / 100 + 1)
        var maxFee = max(estimate.maxFeePerGas, latest.maxFee * bump / 100 + 1, tip)
        maxFee = min(maxFee, chain.payments.maxFeePerGas)
        tip = min(tip, maxFee)
        guard maxFee * 10 >= latest.maxFee * 11, tip * 10 >= latest.tip * 11 else { return nil }
        return (maxFee, tip)
    }
}

/// `release`: the configured automatic retry of a withdrawal held for the hot wallet: approved again
/// (its reservation kept), so it is paid if the funds have arrived, or held again.
struct ReleaseHandler: JobHandler {
    func handle(_ ctx: JobContext) async throws -> JobOutcome {
        guard let id = Payments.withdrawalID(ref: ctx.job.ref) else { throw PermanentJobError("job ref \(ctx.job.ref ?? "nil") is not withdrawal:<id>") }
        let logger = ctx.logger
        try await ctx.database.transaction { c in
            if let w = try await Withdrawals.find(id, on: c, logger: logger), w.state == "pending_review", w.stateReason == Payments.hotWalletReason {
                _ = try await Withdrawals.decide(id, approve: true, reason: nil, expectedVersion: w.version, actor: "autopay:retry",
                                                 rule: "hot_wallet_retry", on: c, logger: logger)
            }
            try await ctx.complete(in: c)
        }
        return .completedInTransaction
    }
}
