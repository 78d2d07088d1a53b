import BigInt
import ChainKit
import Foundation
import GatewayCore
import GatewayRuntime
import GatewayServices
import Logging
import PostgresNIO
import Synchronization

/// `confirm` (chain stage): follows a payment's transactions to their receipt, without keys. A
/// payment is a withdrawal (ref `withdrawal:<id>`), a sweep (`sweep:<id>`) or a sweep's gas top-up
/// (`topup:<id>`); settling is the only step that differs (Payments.settle, Sweeps.settle).
///
/// - In a block and `confirmations` deep: settled (Payments.settle: confirmed + callback 3, or
///   failed + callback 4), in the job's own transaction.
/// - In a block, not deep yet: noted (`mined`); a transaction that leaves its block (reorg) goes
///   back to `broadcast` and its same bytes are sent again.
/// - Unknown to the node: the stored bytes are sent again (a crash before the broadcast, a dropped
///   transaction blocking later nonces) every `rebroadcast_every`. TRON: once the solidified head is
///   past its expiration and it is still unknown it can never land: it is marked expired and the
///   withdrawal paid again with a new transaction.
/// - EVM, unmined past `replace_after`: a `replace` job (autopay, which holds the key) replaces it on
///   the same nonce.
///
/// Jobs that arrive together are looked at together (PaymentFollower): one read of their
/// transactions, one node batch of receipts per chain, and every payment that reached its depth
/// settled in one database transaction.
struct PaymentTracker: JobHandler {
    let follower: PaymentFollower

    init(chains: [ChainConfig], logger: Logger) {
        follower = PaymentFollower(chains: chains, logger: logger)
    }

    func handle(_ ctx: JobContext) async throws -> JobOutcome {
        try await follower.submit(ctx)
    }
}

/// Follows the payments of the `confirm` jobs that run together (see PaymentTracker).
final class PaymentFollower: Sendable {
    let chains: [String: ChainConfig]
    let nodes: [String: any ChainNodeClient]
    let tips = TipCache()
    let logger: Logger
    private let runner: Mutex<GroupedRunner<JobContext, JobOutcome>?> = Mutex(nil)

    init(chains: [ChainConfig], logger: Logger) {
        var byName: [String: ChainConfig] = [:]
        var nodes: [String: any ChainNodeClient] = [:]
        for chain in chains {
            byName[chain.name] = chain
            nodes[chain.name] = ChainStage.nodeClient(for: chain, logger: logger)
        }
        self.chains = byName
        self.nodes = nodes
        self.logger = logger
        // A look takes well under a second; one stuck on a connection that died under it (a database
        // restart) is given up soon, so that the payments it held are looked at again by the next run.
        let r = GroupedRunner<JobContext, JobOutcome>(maxBatch: 2_000, maxRunners: 2, runTimeout: .seconds(20)) { [weak self] batch in
            guard let self else { return batch.map { _ in .failure(CancellationError()) } }
            return await self.follow(batch)
        }
        runner.withLock { $0 = r }
    }

    func submit(_ ctx: JobContext) async throws -> JobOutcome {
        guard let r = runner.withLock({ $0 }) else { throw CancellationError() }
        return try await r.submit(ctx)
    }

    /// One payment as this look found it.
    struct Look: Sendable {
        var index: Int
        /// `withdrawal`, `sweep` or `topup`: what `withdrawalID` is the id of.
        var purpose: String
        var withdrawalID: Int64
        var chain: ChainConfig
        var node: any ChainNodeClient
        var tip: UInt64
        var open: [OutgoingTx]
        var statuses: [TransactionStatus] = []
    }

    /// Looks at a group of `confirm` jobs; one result per job, in order.
    func follow(_ batch: [JobContext]) async -> [Result<JobOutcome, any Error>] {
        var results = [Result<JobOutcome, any Error>?](repeating: nil, count: batch.count)
        var wanted: [(index: Int, purpose: String, id: Int64)] = []
        for (i, ctx) in batch.enumerated() {
            guard let (purpose, id) = Payments.paymentRef(ctx.job.ref) else {
                results[i] = .failure(PermanentJobError("job ref \(ctx.job.ref ?? "nil") is not withdrawal:<id>, sweep:<id> or topup:<id>"))
                continue
            }
            wanted.append((i, purpose, id))
        }
        guard let database = batch.first?.database else { return [] }
        let open: [String: [Int64: [OutgoingTx]]]
        do {
            let byPurpose = Dictionary(grouping: wanted, by: \.purpose).mapValues { $0.map(\.id) }
            open = try await database.withConnection { c in
                var out: [String: [Int64: [OutgoingTx]]] = [:]
                for (purpose, ids) in byPurpose {
                    out[purpose] = try await Payments.openTransactions(withdrawalIDs: ids, purpose: purpose, on: c, logger: self.logger)
                }
                return out
            }
        } catch {
            return results.map { $0 ?? .failure(error) }
        }
        // Per chain: the tip, and every open transaction's status in one node batch.
        var looks: [Look] = []
        var byChain: [String: [Look]] = [:]
        for (i, purpose, id) in wanted {
            guard let txs = open[purpose]?[id], let first = txs.first else {
                results[i] = .success(.completed)  // settled, or expired and paid again (that payment has its own job)
                continue
            }
            guard let chain = chains[first.chain], let node = nodes[first.chain] else {
                results[i] = .failure(PermanentJobError("chain \(first.chain) is not in this chain-worker's configuration"))
                continue
            }
            byChain[chain.name, default: []].append(Look(index: i, purpose: purpose, withdrawalID: id, chain: chain, node: node, tip: 0, open: txs))
        }
        for (name, members) in byChain {
            let chain = members[0].chain, node = members[0].node
            do {
                let tip = try await tips.tip(name, maxAge: chain.payments.pollInterval / 2) { try await node.tipHeight() }
                let statuses = try await node.transactionStatuses(members.flatMap { $0.open.map(\.txHash) })
                var at = 0
                for var look in members {
                    look.tip = tip
                    look.statuses = Array(statuses[at..<at + look.open.count])
                    at += look.open.count
                    looks.append(look)
                }
            } catch {
                for look in members { results[look.index] = .failure(error) }
            }
        }

        var settling: [(look: Look, settlement: Payments.Settlement, tx: OutgoingTx)] = []
        var seen: [(txID: Int64, blockHeight: Int64?)] = []
        var unseen: [Look] = []
        for look in looks {
            let chain = look.chain
            // One of them is in a block (same nonce or one live TRON transaction: at most one can be).
            let inBlock = zip(look.open, look.statuses).lazy.compactMap { tx, status -> (OutgoingTx, TransactionReceipt, Payments.Outcome)? in
                switch status {
                case .confirmed(let r): return (tx, r, .confirmed)
                case .failed(let r): return (tx, r, .failed(reason: r.failureReason ?? "execution failed"))
                default: return nil
                }
            }.first
            guard let (tx, receipt, outcome) = inBlock else {
                // A transaction seen in a block that no longer is (reorg) goes back to broadcast and is sent again.
                for tx in look.open where tx.state == "mined" {
                    logger.warning("a payment's transaction left its block (reorg); sending the same bytes again",
                                   metadata: ["\(look.purpose)": "\(look.withdrawalID)", "tx": "\(tx.txHash)"])
                    seen.append((tx.id, nil))
                }
                unseen.append(look)
                continue
            }
            let depth = look.tip >= receipt.blockNumber ? look.tip - receipt.blockNumber + 1 : 0
            if depth >= UInt64(max(1, chain.confirmations)) {
                settling.append((look, Payments.Settlement(withdrawalID: look.withdrawalID, txID: tx.id, outcome: outcome,
                                                           blockHeight: Int64(receipt.blockNumber), networkFee: receipt.fee), tx))
                continue
            }
            if tx.blockHeight != Int64(receipt.blockNumber) { seen.append((tx.id, Int64(receipt.blockNumber))) }
            // No sooner than the blocks still missing can come.
            let missing = Int64(max(1, chain.confirmations)) - Int64(depth)
            results[look.index] = .success(.snooze(max(chain.payments.pollInterval, chain.blockTime * Int(max(1, missing)))))
        }
        if !seen.isEmpty {
            do {
                try await database.withConnection { c in try await Payments.markSeen(seen, on: c, logger: self.logger) }
            } catch {
                logger.warning("could not note transactions seen in blocks; the next look will", metadata: ["error": "\(DatabaseErrors.describe(error))"])
            }
        }
        for (index, outcome) in await settle(settling, batch: batch, database: database) { results[index] = outcome }
        // Unseen ones: each may need the node (TRON solidified head, re-broadcast) and its own transaction.
        let resent = await withTaskGroup(of: IndexedOutcome.self) { group -> [IndexedOutcome] in
            var out: [IndexedOutcome] = []
            var next = 0
            func add() {
                let look = unseen[next]
                let ctx = batch[look.index]
                group.addTask {
                    do { return IndexedOutcome(index: look.index, outcome: .success(try await self.resend(look, ctx))) } catch {
                        return IndexedOutcome(index: look.index, outcome: .failure(error))
                    }
                }
                next += 1
            }
            while next < min(16, unseen.count) { add() }
            for await r in group {
                out.append(r)
                if next < unseen.count { add() }
            }
            return out
        }
        for r in resent { results[r.index] = r.outcome }
        return results.map { $0 ?? .success(.snooze(.seconds(1))) }
    }

    /// (A struct, not a tuple, as a task group's element: a release build crashed copying a tuple result.)
    struct IndexedOutcome: Sendable {
        var index: Int
        var outcome: Result<JobOutcome, any Error>
    }

    /// Settles the payments that reached their depth in one transaction with their jobs' completion;
    /// if that fails, each on its own (one bad payment does not hold up the others).
    private func settle(_ settling: [(look: Look, settlement: Payments.Settlement, tx: OutgoingTx)], batch: [JobContext],
                        database: Database) async -> [(Int, Result<JobOutcome, any Error>)] {
        guard !settling.isEmpty else { return [] }
        func run(_ group: [(look: Look, settlement: Payments.Settlement, tx: OutgoingTx)]) async throws -> [(Int, Result<JobOutcome, any Error>)] {
            let jobs = group.map { batch[$0.look.index].job }
            let (done, settled) = try await database.transaction { c -> (Set<Int64>, [String: Set<Int64>]) in
                let done = try await JobQueue.complete(jobs.map { ($0.id, $0.leaseToken) }, on: c, logger: self.logger)
                let owned = Dictionary(grouping: zip(group, jobs).filter { done.contains($1.id) }.map(\.0), by: \.look.purpose)
                var settled: [String: Set<Int64>] = [:]
                for purpose in owned.keys.sorted() {  // a fixed order: concurrent settlers lock alike
                    let items = owned[purpose]!.map(\.settlement)
                    settled[purpose] = purpose == "withdrawal" ? try await Payments.settle(items, on: c, logger: self.logger)
                        : try await Sweeps.settle(items, purpose: purpose, on: c, logger: self.logger)
                }
                return (done, settled)
            }
            return zip(group, jobs).map { item, job in
                guard done.contains(job.id) else { return (item.look.index, .failure(LeaseLost(jobID: job.id))) }
                if settled[item.look.purpose]?.contains(item.settlement.withdrawalID) == true {
                    logger.info(item.settlement.outcome == .confirmed ? "payment confirmed" : "payment failed on chain", metadata: [
                        "\(item.look.purpose)": "\(item.settlement.withdrawalID)", "tx": "\(item.tx.txHash)", "block": "\(item.settlement.blockHeight)",
                        "network_fee": "\(item.settlement.networkFee)",
                    ])
                }
                return (item.look.index, .success(.completedInTransaction))
            }
        }
        do {
            return try await run(settling)
        } catch {
            guard settling.count > 1 else { return [(settling[0].look.index, .failure(error))] }
            logger.warning("settling payments together failed; settling each on its own",
                           metadata: ["payments": "\(settling.count)", "error": "\(DatabaseErrors.describe(error))"])
            var out: [(Int, Result<JobOutcome, any Error>)] = []
            for item in settling {
                do { out += try await run([item]) } catch { out.append((item.look.index, .failure(error))) }
            }
            return out
        }
    }

    /// A payment none of whose transactions is in a block: TRON expiry, re-broadcast, replacement.
    private func resend(_ look: Look, _ ctx: JobContext) async throws -> JobOutcome {
        let id = look.withdrawalID, chain = look.chain, node = look.node, open = look.open
        let logger = ctx.logger
        var sendable: [OutgoingTx] = []
        for (tx, status) in zip(open, look.statuses) {
            guard status == .notFound else { continue }
            if let expiration = tx.expiration, let tron = node as? TronNodeClient {
                let solid = try await tron.nowBlock(solidified: true)
                if solid.ref.timestampMillis > expiration {
                    let requeued = try await ctx.database.transaction { c -> Bool in
                        let r = look.purpose == "withdrawal" ? try await Payments.expire(withdrawalID: id, txID: tx.id, on: c, logger: logger)
                            : try await Sweeps.expire(purpose: look.purpose, sweepID: id, txID: tx.id, on: c, logger: logger)
                        try await ctx.complete(in: c)
                        return r
                    }
                    logger.notice("a TRON payment expired without appearing on chain (solidified head past its expiration)",
                                  metadata: ["\(look.purpose)": "\(id)", "tx": "\(tx.txHash)", "paid_again": "\(requeued)"])
                    return .completedInTransaction
                }
            }
            sendable.append(tx)
        }
        // EVM: only the newest of the nonce's transactions is worth sending (the others are replaced in pools).
        if chain.kind == .evm, let newest = open.last { sendable = sendable.filter { $0.id == newest.id } }
        var accepted: [String] = []
        for tx in sendable where tx.state == "signed" || tx.state == "mined" || (tx.sinceBroadcast ?? .infinity) >= chain.payments.rebroadcastEvery.inSeconds {
            do {
                _ = try await node.broadcast(tx.raw)
                accepted.append(tx.txHash)
            } catch {
                logger.warning("re-broadcast refused", metadata: ["withdrawal": "\(id)", "tx": "\(tx.txHash)", "error": "\(error)"])
                try? await ctx.database.withConnection { c in try await Payments.markBroadcastError(tx.txHash, "\(error)", on: c, logger: logger) }
            }
        }
        if !accepted.isEmpty {
            try await ctx.database.withConnection { c in try await Payments.markBroadcast(accepted, on: c, logger: logger) }
        }
        // The replacement is signed by the stage that holds the key: autopay for withdrawals, sweep for sweeps and top-ups.
        if chain.kind == .evm, let newest = open.last, newest.age >= chain.payments.replaceAfter.inSeconds {
            let stage: Stage = look.purpose == "withdrawal" ? .autopay : .sweep
            try await ctx.database.transaction { c in
                _ = try await JobQueue.enqueue(NewJob(stage: stage, kind: Payments.replaceJobKind, ref: "\(look.purpose):\(id)",
                                                      uniqueKey: "replace:\(look.purpose):\(id)"), on: c, logger: logger)
            }
        }
        return .snooze(chain.payments.pollInterval)
    }
}

/// The node's tip per chain, re-read when older than asked.
final class TipCache: Sendable {
    private let state = Mutex<[String: (height: UInt64, at: ContinuousClock.Instant)]>([:])

    func tip(_ chain: String, maxAge: Duration, read: () async throws -> UInt64) async throws -> UInt64 {
        let now = ContinuousClock.now
        if let t = state.withLock({ $0[chain] }), now - t.at < maxAge { return t.height }
        let h = try await read()
        state.withLock { $0[chain] = (h, now) }
        return h
    }
}
