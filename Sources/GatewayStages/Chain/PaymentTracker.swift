import BigInt
import ChainKit
import Foundation
import GatewayCore
import GatewayRuntime
import GatewayServices
import Logging
import PostgresNIO
import Synchronization

/// `confirm` (chain stage): follows a payment's transactions to their receipt, without keys.
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
struct PaymentTracker: JobHandler {
    let chains: [String: ChainConfig]
    let nodes: [String: any ChainNodeClient]
    let tips: TipCache

    init(chains: [ChainConfig], logger: Logger) {
        var byName: [String: ChainConfig] = [:]
        var nodes: [String: any ChainNodeClient] = [:]
        for chain in chains {
            byName[chain.name] = chain
            nodes[chain.name] = ChainStage.nodeClient(for: chain, logger: logger)
        }
        self.chains = byName
        self.nodes = nodes
        self.tips = TipCache()
    }

    func handle(_ ctx: JobContext) async throws -> JobOutcome {
        guard let id = Payments.withdrawalID(ref: ctx.job.ref) else { throw PermanentJobError("job ref \(ctx.job.ref ?? "nil") is not withdrawal:<id>") }
        let logger = ctx.logger
        let open = try await ctx.database.withConnection { c in try await Payments.openTransactions(withdrawalID: id, on: c, logger: logger) }
        guard let first = open.first else { return .completed }  // settled, or expired and paid again (that payment has its own job)
        guard let chain = chains[first.chain], let node = nodes[first.chain] else {
            throw PermanentJobError("chain \(first.chain) is not in this chain-worker's configuration")
        }
        let poll = chain.payments.pollInterval
        let tip = try await tips.tip(chain.name, maxAge: poll / 2) { try await node.tipHeight() }
        var statuses: [(OutgoingTx, TransactionStatus)] = []
        for tx in open { statuses.append((tx, try await node.transactionStatus(tx.txHash))) }

        // One of them is in a block (same nonce or one live TRON transaction: at most one can be).
        for (tx, status) in statuses {
            let receipt: TransactionReceipt
            let outcome: Payments.Outcome
            switch status {
            case .confirmed(let r): (receipt, outcome) = (r, .confirmed)
            case .failed(let r): (receipt, outcome) = (r, .failed(reason: r.failureReason ?? "execution failed"))
            default: continue
            }
            let depth = tip >= receipt.blockNumber ? tip - receipt.blockNumber + 1 : 0
            if depth >= UInt64(max(1, chain.confirmations)) {
                let settled = try await ctx.database.transaction { c -> Bool in
                    let done = try await Payments.settle(withdrawalID: id, txID: tx.id, outcome: outcome, blockHeight: Int64(receipt.blockNumber),
                                                         networkFee: receipt.fee, on: c, logger: logger)
                    try await ctx.complete(in: c)
                    return done
                }
                if settled {
                    logger.info(outcome == .confirmed ? "payment confirmed" : "payment failed on chain", metadata: [
                        "withdrawal": "\(id)", "tx": "\(tx.txHash)", "block": "\(receipt.blockNumber)", "network_fee": "\(receipt.fee)",
                    ])
                }
                return .completedInTransaction
            }
            if tx.blockHeight != Int64(receipt.blockNumber) {
                try await ctx.database.withConnection { c in try await Payments.markSeen(tx.id, blockHeight: Int64(receipt.blockNumber), on: c, logger: logger) }
            }
            // No sooner than the blocks still missing can come.
            let missing = Int64(max(1, chain.confirmations)) - Int64(depth)
            return .snooze(max(poll, chain.blockTime * Int(max(1, missing))))
        }

        // None is in a block.
        var sendable: [OutgoingTx] = []
        for (tx, status) in statuses {
            if tx.state == "mined" {
                logger.warning("a payment's transaction left its block (reorg); sending the same bytes again",
                               metadata: ["withdrawal": "\(id)", "tx": "\(tx.txHash)"])
                try await ctx.database.withConnection { c in try await Payments.markSeen(tx.id, blockHeight: nil, on: c, logger: logger) }
            }
            guard status == .notFound else { continue }
            if let expiration = tx.expiration, case .some(let tron) = node as? TronNodeClient {
                let solid = try await tron.nowBlock(solidified: true)
                if solid.ref.timestampMillis > expiration {
                    let requeued = try await ctx.database.transaction { c -> Bool in
                        let r = try await Payments.expire(withdrawalID: id, txID: tx.id, on: c, logger: logger)
                        try await ctx.complete(in: c)
                        return r
                    }
                    logger.notice("a TRON payment expired without appearing on chain (solidified head past its expiration)",
                                  metadata: ["withdrawal": "\(id)", "tx": "\(tx.txHash)", "paid_again": "\(requeued)"])
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
        if chain.kind == .evm, let newest = open.last, newest.age >= chain.payments.replaceAfter.inSeconds {
            try await ctx.database.transaction { c in
                _ = try await JobQueue.enqueue(NewJob(stage: .autopay, kind: Payments.replaceJobKind, ref: "withdrawal:\(id)",
                                                      uniqueKey: "replace:withdrawal:\(id)"), on: c, logger: logger)
            }
        }
        return .snooze(poll)
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
