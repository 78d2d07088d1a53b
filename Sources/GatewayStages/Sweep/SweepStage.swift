import BigInt
import ChainKit
import Foundation
import GatewayCore
import GatewayRuntime
import GatewayServices
import Logging
import PostgresNIO
import ServiceLifecycle

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
    public func plan(address: String? = nil, dryRun: Bool, chunk: Int = 50) async throws -> SweepPlanReport {
        var report = SweepPlanReport(chain: chain.name)
        struct Records: Sendable { var coins: [Reconciliation.ChainCoin], candidates: [SweepCandidate], holdings: [Int64: [Int32: BigInt]] }
        let chainName = chain.name, settings = self.settings, logger = self.logger
        let records: Records = try await database.withConnection { c in
            let coins = try await Reconciliation.coins(chain: chainName, on: c, logger: logger).filter { settings.coins[$0.symbol.uppercased()] != nil }
            let candidates = try await Sweeps.candidates(chain: chainName, coinIDs: coins.map(\.id), address: address, on: c, logger: logger)
            return Records(coins: coins, candidates: candidates, holdings: try await Sweeps.hotHoldings(chain: chainName, on: c, logger: logger))
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
            // What the node says each address holds, at most 16 requests at a time.
            let reads = await withTaskGroup(of: (Int, Result<NodeRead, any Error>).self) { group -> [Int: Result<NodeRead, any Error>] in
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
        return report
    }

    /// What the node says a candidate address holds: of the coin, and of the native coin (tokens only).
    struct NodeRead: Sendable {
        var coin: BigUInt
        var native: BigUInt
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

/// Deposit address keys (`…/account'/0/index`), checked against the stored address.
struct DepositKeys: Sendable {
    let master: ExtendedPrivateKey

    func key(kind: ChainKit.ChainKind, account: Int?, index: Int, expected: String) throws -> Secp256k1.PrivateKey {
        guard let account, account >= 0, index >= 0 else {
            throw PermanentJobError("the wallet of deposit address \(expected) was attached from an xpub of another seed: this gateway cannot sign for it")
        }
        let scheme: AddressScheme = kind == .evm ? .evm : .tron
        let key = try master.addressKey(scheme: scheme, account: UInt32(account), change: 0, index: UInt32(index))
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
    }

    /// A transaction to sign: what it moves, from which key, with which fees.
    struct Transfer {
        var from: String
        var to: String
        var key: Secp256k1.PrivateKey
        var coinID: Int32
        var tokenContract: String?
        var amount: BigUInt
        var gas: SweepPlanner.Gas
        var initialNonce: UInt64?
        var reference: TronReferenceBlock?
        var expiration: Int64 = 0
    }

    /// One sweep's next step.
    func step(_ ctx: JobContext) async throws -> JobOutcome {
        guard let id = Sweeps.sweepID(ref: ctx.job.ref) else { throw PermanentJobError("job ref \(ctx.job.ref ?? "nil") is not sweep:<id>") }
        guard let sweep = try await database.withConnection({ c in try await Sweeps.find(id, on: c, logger: self.logger) }) else { return .completed }
        guard let chain = chains[sweep.chain], let node = nodes[sweep.chain] else {
            throw PermanentJobError("chain \(sweep.chain) is not in this sweep-worker's configuration")
        }
        switch sweep.state {
        case "planned" where sweep.topupAmount > 0: return try await topUp(sweep, chain: chain, node: node, ctx)
        case "planned", "gas_confirmed": return try await sweepOut(sweep, chain: chain, node: node, ctx)
        default: return .completed  // in flight (chain-worker follows it) or finished
        }
    }

    /// Sends the sweep's gas from the hot address (one top-up per sweep: the sweep leaves `planned` in the
    /// transaction that stores it).
    func topUp(_ sweep: Sweep, chain: ChainConfig, node: PaymentNode, _ ctx: JobContext) async throws -> JobOutcome {
        let key = try hotKeys.key(kind: chain.kind, account: sweep.accountIndex, expected: sweep.hotAddress)
        let hot = try chain.kind.parseAddress(sweep.hotAddress), to = try chain.kind.parseAddress(sweep.address)
        let planner = SweepPlanner(chain: chain, settings: chain.sweep ?? SweepConfig(), node: node, database: database, logger: logger)
        let gas = try await planner.gas(isToken: false, token: nil, from: hot, to: to, amount: sweep.topupAmount)
        // The hot address must afford it beside what it already has in flight, or the top-up waits.
        let native = try await node.client.nativeBalance(of: hot).amount
        let inFlight = try await database.withConnection { c in try await Payments.inFlight(chain: chain.name, from: sweep.hotAddress, on: c, logger: self.logger) }
        guard let nativeID = try await database.withConnection({ c in try await Payments.nativeCoinID(chain: chain.name, on: c, logger: self.logger) })
        else { throw PermanentJobError("chain \(chain.name) has no native coin in gateway.coins: a gas top-up is booked in it") }
        let committed = inFlight.maxFees + (inFlight.amounts[nativeID] ?? 0)
        guard native >= committed + sweep.topupAmount + gas.total else {
            logger.warning("hot wallet cannot pay a gas top-up yet; the sweep waits", metadata: [
                "sweep": "\(sweep.id)", "hot_address": "\(sweep.hotAddress)", "needed": "\(sweep.topupAmount + gas.total)", "free": "\(native > committed ? native - committed : 0)",
            ])
            return .snooze(chain.sweep?.interval ?? .seconds(30))
        }
        var t = Transfer(from: sweep.hotAddress, to: sweep.address, key: key, coinID: nativeID, tokenContract: nil, amount: sweep.topupAmount,
                         gas: gas)
        try await prepare(&t, chain: chain, node: node, nonceOf: hot)
        return try await signStoreSend(t, sweep: sweep, purpose: "topup", from: ["planned"], to: "gas_topup_sent", chain: chain, node: node, ctx)
    }

    /// Signs the sweep itself with the deposit address's key, within the native coin the address holds.
    func sweepOut(_ sweep: Sweep, chain: ChainConfig, node: PaymentNode, _ ctx: JobContext) async throws -> JobOutcome {
        let key = try depositKeys.key(kind: chain.kind, account: sweep.accountIndex, index: sweep.derivationIndex, expected: sweep.address)
        let from = try chain.kind.parseAddress(sweep.address), to = try chain.kind.parseAddress(sweep.destination)
        let planner = SweepPlanner(chain: chain, settings: chain.sweep ?? SweepConfig(), node: node, database: database, logger: logger)
        var gas: SweepPlanner.Gas
        do {
            gas = try await planner.gas(isToken: sweep.isToken, token: sweep.tokenContract, from: from, to: to, amount: sweep.amount)
        } catch let error as ChainNodeError where chain.kind == .evm {
            // A node may refuse to estimate for an address holding just its top-up once fees rose ("insufficient
            // funds"): the plan's own gas stands, capped below by what the address holds.
            let limit: UInt64 = sweep.isToken ? 100_000 : 21_000
            gas = SweepPlanner.Gas(limit: limit, price: sweep.gasEstimate / BigUInt(limit), tip: 0)
            logger.notice("fee estimate refused for a sweep; signing with the planned gas", metadata: ["sweep": "\(sweep.id)", "error": "\(error)"])
        }
        let native = try await node.client.nativeBalance(of: from).amount
        let spendable = sweep.isToken ? native : (native > sweep.amount ? native - sweep.amount : 0)
        if case .evm = node {
            // What the address holds caps the fee: a sweep never asks for gas it was not given.
            gas.price = min(gas.price, spendable / BigUInt(gas.limit))
            gas.tip = min(gas.tip, gas.price)
            guard gas.price > 0 else {
                logger.warning("deposit address holds no gas for its sweep yet", metadata: ["sweep": "\(sweep.id)", "native": "\(native)"])
                return .snooze(chain.sweep?.interval ?? .seconds(30))
            }
        }
        var t = Transfer(from: sweep.address, to: sweep.destination, key: key, coinID: sweep.coinID, tokenContract: sweep.tokenContract, amount: sweep.amount,
                         gas: gas)
        try await prepare(&t, chain: chain, node: node, nonceOf: from)
        return try await signStoreSend(t, sweep: sweep, purpose: "sweep", from: ["planned", "gas_confirmed"], to: "sweep_sent", chain: chain, node: node, ctx)
    }

    /// Node reads signing needs: the nonce seed of an address that never sent (EVM), the reference block (TRON).
    func prepare(_ t: inout Transfer, chain: ChainConfig, node: PaymentNode, nonceOf account: AccountID) async throws {
        switch node {
        case .evm(let evm):
            let address = t.from
            if !(try await database.withConnection { c in try await Payments.hasNonceRow(chain: chain.name, address: address, on: c, logger: self.logger) }) {
                t.initialNonce = try await evm.nonce(of: account).pending
            }
        case .tron(let tron):
            let (reference, _) = try await tron.referenceBlock()
            let head = try await tron.nowBlock()
            t.reference = reference
            t.expiration = head.ref.timestampMillis + chain.payments.expiration.inMilliseconds
        }
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

    /// In one transaction: the sweep still in one of `from` states, a nonce (EVM), the signed
    /// transaction stored with its confirmation job, the sweep moved to `to`, the job completed. Then
    /// the broadcast (a lost one is re-sent by the confirmation job).
    func signStoreSend(_ t: Transfer, sweep: Sweep, purpose: String, from states: Set<String>, to next: String, chain: ChainConfig, node: PaymentNode,
                       _ ctx: JobContext) async throws -> JobOutcome {
        let logger = self.logger
        let signed = try await database.transaction { c -> SignedPayment? in
            guard let current = try await Sweeps.find(sweep.id, lock: true, on: c, logger: logger), states.contains(current.state),
                current.topupAmount == sweep.topupAmount
            else {
                try await ctx.complete(in: c)
                return nil
            }
            var nonce: UInt64?
            if chain.kind == .evm {
                nonce = try await Payments.allocateNonces(chain: chain.name, address: t.from, count: 1, initial: t.initialNonce, on: c, logger: logger)
            }
            let tx = try self.sign(t, nonce: nonce, chain: chain, refID: sweep.id)
            try await Payments.store([tx], purpose: purpose, followAfter: max(chain.payments.pollInterval, .milliseconds(200)), on: c, logger: logger)
            try await Sweeps.markSigned(sweep.id, state: next, txHash: purpose == "sweep" ? tx.txHash : nil, on: c, logger: logger)
            try await ctx.complete(in: c)
            return tx
        }
        guard let signed else { return .completedInTransaction }
        logger.info(purpose == "topup" ? "gas top-up signed" : "sweep signed", metadata: [
            "sweep": "\(sweep.id)", "tx": "\(signed.txHash)", "from": "\(signed.from)", "to": "\(signed.to)", "amount": "\(signed.amount)",
        ])
        do {
            _ = try await node.client.broadcast(signed.raw)
            try await database.transaction { c in try await Payments.markBroadcast([signed.txHash], on: c, logger: logger) }
        } catch {
            logger.warning("broadcast failed; the confirmation job will send it again", metadata: ["tx": "\(signed.txHash)", "error": "\(error)"])
        }
        return .completedInTransaction
    }
}

/// `replace` (ref `topup:<id>` or `sweep:<id>`): a stuck EVM top-up or sweep is replaced on its nonce with
/// higher fees, by autopay's rules (ReplaceHandler.replacementFees); whichever lands, exactly one moves
/// the funds. A sweep's replacement must fit in the native coin its deposit address holds, or it waits.
struct SweepReplaceHandler: JobHandler {
    let sweeper: Sweeper

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
            return .snooze(chain.payments.replaceAfter)
        }
        let key: Secp256k1.PrivateKey
        if purpose == "topup" {
            key = try sweeper.hotKeys.key(kind: chain.kind, account: sweep.accountIndex, expected: sweep.hotAddress)
        } else {
            key = try sweeper.depositKeys.key(kind: chain.kind, account: sweep.accountIndex, index: sweep.derivationIndex, expected: sweep.address)
            let native = try await evm.nativeBalance(of: from).amount
            let spendable = isToken ? native : (native > latest.amount ? native - latest.amount : 0)
            guard BigUInt(latest.gasLimit) * maxFee <= spendable else {
                logger.warning("a stuck sweep cannot be replaced: its deposit address holds too little gas for higher fees",
                               metadata: ["sweep": "\(id)", "tx": "\(latest.txHash)", "native": "\(native)"])
                return .snooze(chain.payments.replaceAfter)
            }
        }
        let transfer = Sweeper.Transfer(from: latest.from, to: latest.to, key: key, coinID: latest.coinID, tokenContract: isToken ? sweep.tokenContract : nil,
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
    func handle(_ ctx: JobContext) async throws -> JobOutcome { try await sweeper.step(ctx) }
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
