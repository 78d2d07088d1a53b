import ChainKit
import Foundation
import GatewayRuntime
import GatewayServices
import Logging

/// Sends stored outgoing transactions (payments, top-ups, sweeps) after the transaction that stored them
/// committed: per node, EVM as JSON-RPC batches in nonce order per sender, TRON concurrently; the accepted
/// ones are recorded in one database transaction. A failure here loses nothing: chain-worker's
/// confirmation job re-sends the stored bytes. Shared by autopay-worker and sweep-worker.
struct OutgoingBroadcaster: Sendable {
    let database: Database
    let logger: Logger

    /// Broadcasts each group's transactions on its node and records the ones the node accepted (or had).
    func broadcast(_ groups: [(node: PaymentNode, txs: [SignedPayment])]) async {
        await withTaskGroup(of: [String].self) { group in
            for (node, txs) in groups where !txs.isEmpty {
                group.addTask {
                    var accepted: [String] = []
                    switch node {
                    case .evm(let evm):
                        // In nonce order per sender, as JSON-RPC batches: one round trip per batch, not per transaction.
                        let ordered = txs.sorted { ($0.from, $0.nonce ?? 0) < ($1.from, $1.nonce ?? 0) }
                        do {
                            let results = try await evm.broadcast(all: ordered.map(\.raw))
                            for (tx, result) in zip(ordered, results) {
                                switch result {
                                case .success: accepted.append(tx.txHash)
                                case .failure(.rejected(.nonceTooLow)):
                                    if await self.send(tx.raw, hash: tx.txHash, node: node) { accepted.append(tx.txHash) }
                                case .failure(let error):
                                    self.logger.warning("broadcast refused; the confirmation job will send it again",
                                                        metadata: ["tx": "\(tx.txHash)", "error": "\(error)"])
                                }
                            }
                        } catch {
                            self.logger.warning("broadcast batch failed; the confirmation jobs will send them again",
                                                metadata: ["transactions": "\(ordered.count)", "error": "\(error)"])
                        }
                    case .tron:
                        accepted = await withTaskGroup(of: String?.self) { inner in
                            for tx in txs { inner.addTask { await self.send(tx.raw, hash: tx.txHash, node: node) ? tx.txHash : nil } }
                            var out: [String] = []
                            for await h in inner { if let h { out.append(h) } }
                            return out
                        }
                    }
                    return accepted
                }
            }
            var all: [String] = []
            for await a in group { all += a }
            if !all.isEmpty {
                do {
                    try await database.transaction { c in try await Payments.markBroadcast(all, on: c, logger: self.logger) }
                } catch {
                    logger.warning("could not record broadcasts (they will be re-sent)", metadata: ["error": "\(DatabaseErrors.describe(error))"])
                }
            }
        }
    }

    /// Broadcasts one stored transaction; true when the node accepted it or already had it.
    func send(_ raw: Data, hash: String, node: PaymentNode) async -> Bool {
        do {
            _ = try await node.client.broadcast(raw)  // the client checks the hash; "already known" counts as sent
            return true
        } catch {
            // "nonce too low" for our own transaction: the confirmation job sent it first and it is mined (or a
            // replacement on its nonce is): the node has it, which is all a broadcast is for.
            if case .rejected(.nonceTooLow) = error, let status = try? await node.client.transactionStatus(hash), status != .notFound {
                return true
            }
            logger.warning("broadcast refused; the confirmation job will send it again", metadata: ["tx": "\(hash)", "error": "\(error)"])
            try? await database.withConnection { c in try await Payments.markBroadcastError(hash, "\(error)", on: c, logger: self.logger) }
            return false
        }
    }
}
