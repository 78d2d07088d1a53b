import BigInt
import Foundation
import GatewayCore
import GatewayRuntime
import Logging
import PostgresNIO

/// A transfer to one of our addresses, as the chain scanner found it.
public struct FoundDeposit: Sendable, Equatable {
    public var txHash: String
    /// -1 for a native transfer.
    public var logIndex: Int32
    public var addressID: Int64
    public var merchantID: Int64
    public var coinID: Int32
    public var from: String
    public var amount: BigUInt
    public var blockHeight: Int64
    public var blockHash: String

    public init(txHash: String, logIndex: Int32, addressID: Int64, merchantID: Int64, coinID: Int32, from: String, amount: BigUInt,
                blockHeight: Int64, blockHash: String) {
        self.txHash = txHash
        self.logIndex = logIndex
        self.addressID = addressID
        self.merchantID = merchantID
        self.coinID = coinID
        self.from = from
        self.amount = amount
        self.blockHeight = blockHeight
        self.blockHash = blockHash
    }
}

/// A deposit as stored.
public struct Deposit: Sendable, Equatable {
    public var id: Int64
    public var chain: String
    public var txHash: String
    public var logIndex: Int32
    public var merchantID: Int64
    public var address: String
    public var coinID: Int32
    public var symbol: String
    public var amount: BigUInt
    public var blockHeight: Int64
    public var status: String
    public var statusReason: String?
    public var createdAt: Date
}

/// What one confirmation pass did.
public struct ConfirmationResult: Sendable, Equatable {
    /// Credited and called back.
    public var confirmed: [Int64] = []
    /// Below the coin's minimum: recorded, not credited.
    public var ignored: [Int64] = []

    public init(confirmed: [Int64] = [], ignored: [Int64] = []) {
        self.confirmed = confirmed
        self.ignored = ignored
    }
}

/// What a rewind did to the deposits above the fork.
public struct RewindResult: Sendable, Equatable {
    /// `seen` deposits whose blocks left the chain: no credit, no callback.
    public var orphaned: [Int64] = []
    /// Confirmed (credited) deposits in replaced blocks: left as they are, for an operator.
    public var creditedAffected: [Int64] = []
}

/// Recording, confirming and orphaning deposits (DESIGN.md §4 "Deposit").
public enum Deposits {
    public static let callbackTradeType = 1

    /// Records deposits once each (chain, tx, log index). A deposit seen again in another block
    /// (a reorg re-included its transaction) moves there and, if it had been orphaned, is `seen`
    /// again; a confirmed or ignored one is left as it is. Returns how many rows were new.
    @discardableResult
    public static func record(chain: String, _ found: [FoundDeposit], on c: DatabaseConnection, logger: Logger) async throws -> Int {
        guard !found.isEmpty else { return 0 }
        var txs: [String] = [], logs: [Int32] = [], addresses: [Int64] = [], merchants: [Int64] = [], coins: [Int32] = []
        var froms: [String] = [], amounts: [String] = [], heights: [Int64] = [], hashes: [String] = []
        for d in found where d.amount > 0 {
            txs.append(d.txHash)
            logs.append(d.logIndex)
            addresses.append(d.addressID)
            merchants.append(d.merchantID)
            coins.append(d.coinID)
            froms.append(d.from)
            amounts.append(d.amount.description)
            heights.append(d.blockHeight)
            hashes.append(d.blockHash)
        }
        var inserted = 0
        for try await isNew in try await c.query("""
            INSERT INTO gateway.deposits (chain, tx_hash, log_index, address_id, merchant_id, coin_id, from_address, amount, block_height, block_hash)
            SELECT \(chain), t, l, a, m, k, f, amt::numeric, h, bh
            FROM unnest(\(txs)::text[], \(logs)::int4[], \(addresses)::int8[], \(merchants)::int8[], \(coins)::int4[], \(froms)::text[],
                        \(amounts)::text[], \(heights)::int8[], \(hashes)::text[]) AS x(t, l, a, m, k, f, amt, h, bh)
            ON CONFLICT (chain, tx_hash, log_index) DO UPDATE
               SET block_height = excluded.block_height, block_hash = excluded.block_hash, status = 'seen', status_reason = NULL, updated_at = now()
               WHERE deposits.status IN ('seen', 'orphaned')
            RETURNING xmax = 0
            """, logger: logger).decode(Bool.self) where isNew {
            inserted += 1
        }
        return inserted
    }

    /// Confirms every `seen` deposit of `chain` at or below `height`: credits the merchant's
    /// available balance (ledger rows) and creates the status-3 callback, in the caller's
    /// transaction; deposits below the coin's minimum become `ignored` instead.
    public static func confirm(chain: String, upTo height: Int64, on c: DatabaseConnection, logger: Logger) async throws -> ConfirmationResult {
        struct Due {
            var id: Int64, merchantID: Int64, coinID: Int32, amount: String, belowMinimum: Bool, tx: String, height: Int64
            var address: String, callURL: String, mainCoinType: String, coinType: String, decimals: Int32
        }
        var due: [Due] = []
        for try await r in try await c.query("""
            SELECT d.id, d.merchant_id, d.coin_id, d.amount::text, d.amount < k.min_deposit, d.tx_hash, d.block_height,
                   a.address, a.call_url, k.main_coin_type, k.coin_type, k.decimals
            FROM gateway.deposits d
            JOIN gateway.coins k ON k.id = d.coin_id
            JOIN gateway.addresses a ON a.id = d.address_id
            WHERE d.chain = \(chain) AND d.status = 'seen' AND d.block_height <= \(height)
            ORDER BY d.id FOR UPDATE OF d
            """, logger: logger).decode((Int64, Int64, Int32, String, Bool, String, Int64, String, String, String, String, Int32).self) {
            due.append(Due(id: r.0, merchantID: r.1, coinID: r.2, amount: r.3, belowMinimum: r.4, tx: r.5, height: r.6, address: r.7,
                           callURL: r.8, mainCoinType: r.9, coinType: r.10, decimals: r.11))
        }
        guard !due.isEmpty else { return ConfirmationResult() }
        var result = ConfirmationResult()
        var transfers: [LedgerTransfer] = []
        var callbacks: [CallbackPayloads.Pending] = []
        for d in due {
            if d.belowMinimum {
                result.ignored.append(d.id)
                continue
            }
            guard let amount = BigUInt(d.amount) else { throw ServiceError.invalid("deposit \(d.id) has amount \(d.amount)") }
            result.confirmed.append(d.id)
            transfers.append(LedgerTransfer(reason: "deposit", ref: "deposit:\(d.id)", legs: [
                LedgerLeg(merchantID: nil, coinID: d.coinID, kind: LedgerAccountKind.chain, amount: -BigInt(amount)),
                LedgerLeg(merchantID: d.merchantID, coinID: d.coinID, kind: LedgerAccountKind.available, amount: BigInt(amount)),
            ]))
            callbacks.append(CallbackPayloads.Pending(merchantID: d.merchantID, url: d.callURL, fields: CallbackFields(
                address: d.address, amount: amount, blockHeight: d.height, businessID: nil, coinType: d.coinType, decimals: Int(d.decimals),
                fee: 0, mainCoinType: d.mainCoinType, memo: "", status: 3, tradeID: d.id, tradeType: callbackTradeType, txID: d.tx)))
        }
        if !result.confirmed.isEmpty {
            try await c.query("""
                UPDATE gateway.deposits SET status = 'confirmed', confirmed_at = now(), updated_at = now() WHERE id = ANY(\(result.confirmed)::int8[])
                """, logger: logger)
        }
        if !result.ignored.isEmpty {
            try await c.query("""
                UPDATE gateway.deposits SET status = 'ignored', status_reason = 'below the coin''s minimum deposit', updated_at = now()
                WHERE id = ANY(\(result.ignored)::int8[])
                """, logger: logger)
        }
        try await Ledger.post(transfers, on: c, logger: logger)
        try await CallbackPayloads.create(callbacks, on: c, logger: logger)
        return result
    }

    /// The chain reorganised below `height`: `seen` deposits above `forkHeight` become `orphaned`;
    /// credited ones are reported, never touched (no re-credit, no debit).
    public static func rewind(chain: String, above forkHeight: Int64, reason: String, on c: DatabaseConnection, logger: Logger) async throws -> RewindResult {
        var result = RewindResult()
        for try await id in try await c.query("""
            UPDATE gateway.deposits SET status = 'orphaned', status_reason = \(reason), updated_at = now()
            WHERE chain = \(chain) AND status = 'seen' AND block_height > \(forkHeight) RETURNING id
            """, logger: logger).decode(Int64.self) { result.orphaned.append(id) }
        for try await id in try await c.query("""
            SELECT id FROM gateway.deposits WHERE chain = \(chain) AND status IN ('confirmed', 'ignored') AND block_height > \(forkHeight) ORDER BY id
            """, logger: logger).decode(Int64.self) { result.creditedAffected.append(id) }
        return result
    }

    static let columns = """
        d.id, d.chain, d.tx_hash, d.log_index, d.merchant_id, a.address, d.coin_id, k.symbol, d.amount::text, d.block_height, d.status,
        d.status_reason, d.created_at
        """

    /// Deposits, newest first, optionally of one merchant, chain or status.
    public static func list(merchantID: Int64?, chain: String?, status: String?, limit: Int, on c: DatabaseConnection, logger: Logger) async throws -> [Deposit] {
        var out: [Deposit] = []
        for try await r in try await c.query("""
            SELECT \(unescaped: columns) FROM gateway.deposits d JOIN gateway.addresses a ON a.id = d.address_id JOIN gateway.coins k ON k.id = d.coin_id
            WHERE (\(merchantID)::int8 IS NULL OR d.merchant_id = \(merchantID)) AND (\(chain)::text IS NULL OR d.chain = \(chain))
              AND (\(status)::text IS NULL OR d.status = \(status))
            ORDER BY d.id DESC LIMIT \(Int64(limit))
            """, logger: logger).decode((Int64, String, String, Int32, Int64, String, Int32, String, String, Int64, String, String?, Date).self) {
            out.append(Deposit(id: r.0, chain: r.1, txHash: r.2, logIndex: r.3, merchantID: r.4, address: r.5, coinID: r.6, symbol: r.7,
                               amount: BigUInt(r.8) ?? 0, blockHeight: r.9, status: r.10, statusReason: r.11, createdAt: r.12))
        }
        return out
    }
}
