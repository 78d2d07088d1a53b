import BigInt
import Foundation
import GatewayRuntime
import Logging
import PostgresNIO

/// A transfer to one of our hot addresses, as the chain scanner found it.
public struct FoundHotReceipt: Sendable, Equatable {
    public var txHash: String
    /// -1 for a native transfer.
    public var logIndex: Int32
    public var walletID: Int64
    public var merchantID: Int64
    /// The hot address as stored in `gateway.wallets`.
    public var address: String
    public var coinID: Int32
    public var from: String
    /// It came from one of our own addresses (see `HotReceipts`): recorded, never booked here.
    public var isInternal: Bool
    public var amount: BigUInt
    public var blockHeight: Int64
    public var blockHash: String

    public init(txHash: String, logIndex: Int32, walletID: Int64, merchantID: Int64, address: String, coinID: Int32, from: String,
                isInternal: Bool, amount: BigUInt, blockHeight: Int64, blockHash: String) {
        self.txHash = txHash
        self.logIndex = logIndex
        self.walletID = walletID
        self.merchantID = merchantID
        self.address = address
        self.coinID = coinID
        self.from = from
        self.isInternal = isInternal
        self.amount = amount
        self.blockHeight = blockHeight
        self.blockHash = blockHash
    }
}

/// What a rewind did to the hot wallet receipts above the fork.
public struct HotReceiptRewind: Sendable, Equatable {
    /// `seen` receipts whose blocks left the chain: never booked.
    public var orphaned: [Int64] = []
    /// Booked (confirmed) receipts in replaced blocks: left as they are, for an operator.
    public var bookedAffected: [Int64] = []
}

/// Funds reaching a hot address (operators top it up from outside): recorded like deposits, same
/// reorg handling, and booked at the confirmation depth — the coin's `chain` account −a, the gateway's
/// `treasury` +a — so the ledger's `chain` account keeps matching what our addresses hold. Not a
/// merchant deposit: no merchant credit, no callback.
///
/// A receipt whose sender is one of our own addresses (a deposit address today only by an operator's
/// hand; from issue 8 on, every sweep) is an internal transfer: what the gateway holds does not change,
/// so it is recorded (the hot address's expected balance includes it) but never booked here. The
/// sweep that sends it books it, with its own outgoing transaction; booking it here too would count
/// the same coins twice.
public enum HotReceipts {
    /// Records receipts once each (chain, tx, log index). One seen again in another block (a reorg
    /// re-included it) moves there and, if orphaned, is `seen` again; a confirmed one is left alone.
    /// Returns how many rows were new.
    @discardableResult
    public static func record(chain: String, _ found: [FoundHotReceipt], on c: DatabaseConnection, logger: Logger) async throws -> Int {
        let found = found.filter { $0.amount > 0 }
        guard !found.isEmpty else { return 0 }
        var inserted = 0
        for try await isNew in try await c.query("""
            INSERT INTO gateway.hot_receipts (chain, tx_hash, log_index, wallet_id, merchant_id, address, coin_id, from_address, internal, amount,
                                              block_height, block_hash)
            SELECT \(chain), t, l, w, m, a, k, f, i, amt::numeric, h, bh
            FROM unnest(\(found.map(\.txHash))::text[], \(found.map(\.logIndex))::int4[], \(found.map(\.walletID))::int8[],
                        \(found.map(\.merchantID))::int8[], \(found.map(\.address))::text[], \(found.map(\.coinID))::int4[], \(found.map(\.from))::text[],
                        \(found.map(\.isInternal))::bool[], \(found.map { $0.amount.description })::text[], \(found.map(\.blockHeight))::int8[],
                        \(found.map(\.blockHash))::text[]) AS x(t, l, w, m, a, k, f, i, amt, h, bh)
            ON CONFLICT (chain, tx_hash, log_index) DO UPDATE
               SET block_height = excluded.block_height, block_hash = excluded.block_hash, status = 'seen', status_reason = NULL, updated_at = now()
               WHERE hot_receipts.status IN ('seen', 'orphaned')
            RETURNING xmax = 0
            """, logger: logger).decode(Bool.self) where isNew {
            inserted += 1
        }
        return inserted
    }

    /// Confirms every `seen` receipt of `chain` at or below `height` and books the external ones, in
    /// the caller's transaction. Returns the ids confirmed.
    @discardableResult
    public static func confirm(chain: String, upTo height: Int64, on c: DatabaseConnection, logger: Logger) async throws -> [Int64] {
        var ids: [Int64] = []
        var transfers: [LedgerTransfer] = []
        for try await (id, coin, amount, isInternal) in try await c.query("""
            UPDATE gateway.hot_receipts r SET status = 'confirmed', confirmed_at = now(), updated_at = now()
            FROM (SELECT id FROM gateway.hot_receipts WHERE chain = \(chain) AND status = 'seen' AND block_height <= \(height) ORDER BY id FOR UPDATE) due
            WHERE r.id = due.id
            RETURNING r.id, r.coin_id, r.amount::text, r.internal
            """, logger: logger).decode((Int64, Int32, String, Bool).self) {
            ids.append(id)
            guard !isInternal else { continue }  // booked by whoever sent it (see the type's comment)
            guard let a = BigInt(amount), a > 0 else { throw ServiceError.invalid("hot receipt \(id) has amount \(amount)") }
            transfers.append(LedgerTransfer(reason: "hot_wallet.funded", ref: "hot_receipt:\(id)", legs: [
                LedgerLeg(merchantID: nil, coinID: coin, kind: LedgerAccountKind.chain, amount: -a),
                LedgerLeg(merchantID: nil, coinID: coin, kind: LedgerAccountKind.treasury, amount: a),
            ]))
        }
        try await Ledger.post(transfers, on: c, logger: logger)
        return ids.sorted()
    }

    /// The chain reorganised: `seen` receipts above `forkHeight` become `orphaned`; booked ones are
    /// reported, never touched.
    public static func rewind(chain: String, above forkHeight: Int64, reason: String, on c: DatabaseConnection, logger: Logger) async throws
        -> HotReceiptRewind
    {
        var result = HotReceiptRewind()
        for try await id in try await c.query("""
            UPDATE gateway.hot_receipts SET status = 'orphaned', status_reason = \(reason), updated_at = now()
            WHERE chain = \(chain) AND status = 'seen' AND block_height > \(forkHeight) RETURNING id
            """, logger: logger).decode(Int64.self) { result.orphaned.append(id) }
        for try await id in try await c.query("""
            SELECT id FROM gateway.hot_receipts WHERE chain = \(chain) AND status = 'confirmed' AND block_height > \(forkHeight) ORDER BY id
            """, logger: logger).decode(Int64.self) { result.bookedAffected.append(id) }
        result.orphaned.sort()
        return result
    }
}
