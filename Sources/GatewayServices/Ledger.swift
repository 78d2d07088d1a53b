import BigInt
import Foundation
import GatewayRuntime
import Logging
import PostgresNIO

/// One side of a ledger transfer: an account (a merchant's, or the gateway's own when
/// `merchantID` is nil) and the signed amount it moves (positive credits the account).
public struct LedgerLeg: Sendable, Equatable {
    public var merchantID: Int64?
    public var coinID: Int32
    public var kind: String
    public var amount: BigInt

    public init(merchantID: Int64?, coinID: Int32, kind: String, amount: BigInt) {
        self.merchantID = merchantID
        self.coinID = coinID
        self.kind = kind
        self.amount = amount
    }
}

/// A balanced set of legs: they sum to zero per coin.
public struct LedgerTransfer: Sendable, Equatable {
    public var id: UUID
    public var reason: String
    public var ref: String
    public var legs: [LedgerLeg]

    public init(id: UUID = UUID(), reason: String, ref: String, legs: [LedgerLeg]) {
        self.id = id
        self.reason = reason
        self.ref = ref
        self.legs = legs
    }
}

/// Account kinds.
public enum LedgerAccountKind {
    /// What a merchant may withdraw.
    public static let available = "available"
    /// Held for approved withdrawals until the chain decides.
    public static let reserved = "reserved"
    /// The gateway's side of funds that came from or went to the chain (one per coin).
    public static let chain = "chain"
    /// The gateway's income from withdrawal fees (one per coin).
    public static let feeIncome = "fee_income"
    /// Network fees the gateway burned (native coin of each chain; its balance runs negative).
    public static let networkFees = "network_fees"
    /// The gateway's own funds put into hot wallets from outside (operator top-ups; one per coin).
    public static let treasury = "treasury"
    /// The native coin that sweep gas top-ups put on deposit addresses, less what the token sweeps of those
    /// addresses burned (one per chain, in its native coin). Like `chain` it runs negative: it is the part of
    /// what our addresses hold that waits on deposit addresses to pay sweep gas, kept apart from `chain` so
    /// that a top-up is booked (`chain` +a, `sweep_gas` −a) and a token sweep's network fee comes out of it
    /// (`sweep_gas` +fee, `network_fees` −fee). −(`chain` + `sweep_gas`) is still what our addresses hold.
    public static let sweepGas = "sweep_gas"
}

/// Balances from the ledger, and the one way to change them.
public enum Ledger {
    /// A merchant's available balance per coin id (absent coins hold 0).
    public static func available(merchantID: Int64, on c: DatabaseConnection, logger: Logger) async throws -> [Int32: BigInt] {
        var out: [Int32: BigInt] = [:]
        for try await (coin, balance) in try await c.query("""
            SELECT coin_id, balance::text FROM gateway.ledger_accounts WHERE merchant_id = \(merchantID) AND kind = 'available'
            """, logger: logger).decode((Int32, String).self) {
            out[coin] = BigInt(balance) ?? 0
        }
        return out
    }

    /// Writes the transfers' entries and moves the accounts' balances, in the caller's transaction
    /// (the one making the state change they record). Accounts are created on first use and locked
    /// in id order, so concurrent posters never deadlock. Two statements, whatever the number.
    public static func post(_ transfers: [LedgerTransfer], on c: DatabaseConnection, logger: Logger) async throws {
        guard !transfers.isEmpty else { return }
        var transferIDs: [UUID] = [], merchants: [Int64] = [], coins: [Int32] = [], kinds: [String] = [], amounts: [String] = []
        var reasons: [String] = [], refs: [String] = []
        for t in transfers {
            var sums: [Int32: BigInt] = [:]
            for leg in t.legs {
                precondition(leg.amount != 0, "a ledger leg moves something")
                precondition(leg.merchantID != 0, "merchant 0 does not exist")
                sums[leg.coinID, default: 0] += leg.amount
                transferIDs.append(t.id)
                merchants.append(leg.merchantID ?? 0)
                coins.append(leg.coinID)
                kinds.append(leg.kind)
                amounts.append(leg.amount.description)
                reasons.append(t.reason)
                refs.append(t.ref)
            }
            precondition(sums.values.allSatisfy { $0 == 0 }, "ledger transfer \(t.ref) does not balance")
        }
        try await c.query("""
            INSERT INTO gateway.ledger_accounts (merchant_id, coin_id, kind)
            SELECT DISTINCT nullif(m, 0), k, kd FROM unnest(\(merchants)::int8[], \(coins)::int4[], \(kinds)::text[]) AS t(m, k, kd)
            ON CONFLICT (merchant_id, coin_id, kind) DO NOTHING
            """, logger: logger)
        try await c.query("""
            WITH legs AS (
                SELECT tr, nullif(m, 0) AS merchant_id, k AS coin_id, kd AS kind, a::numeric AS amount, r, f, ord
                FROM unnest(\(transferIDs)::uuid[], \(merchants)::int8[], \(coins)::int4[], \(kinds)::text[], \(amounts)::text[],
                            \(reasons)::text[], \(refs)::text[]) WITH ORDINALITY AS t(tr, m, k, kd, a, r, f, ord)
            ), accounts AS (
                SELECT a.id, l.ord, l.tr, l.amount, l.r, l.f
                FROM legs l JOIN gateway.ledger_accounts a
                  ON a.merchant_id IS NOT DISTINCT FROM l.merchant_id AND a.coin_id = l.coin_id AND a.kind = l.kind
            ), locked AS (
                SELECT id FROM gateway.ledger_accounts WHERE id IN (SELECT id FROM accounts) ORDER BY id FOR UPDATE
            ), moved AS (  -- a data-modifying CTE runs whether or not it is read
                UPDATE gateway.ledger_accounts a SET balance = a.balance + s.total
                FROM (SELECT id, sum(amount) AS total FROM accounts GROUP BY id) s
                WHERE a.id = s.id AND a.id IN (SELECT id FROM locked)
                RETURNING a.id
            )
            INSERT INTO gateway.ledger_entries (transfer_id, account_id, amount, reason, ref)
            SELECT tr, id, amount, r, f FROM accounts ORDER BY ord
            """, logger: logger)
    }

    /// Every account's balance equals the sum of its entries, and every transfer sums to zero per
    /// coin; returns what does not hold (empty when the ledger is consistent).
    public static func inconsistencies(on c: DatabaseConnection, logger: Logger) async throws -> [String] {
        var out: [String] = []
        for try await (id, balance, sum) in try await c.query("""
            SELECT a.id, a.balance::text, coalesce(sum(e.amount), 0)::text FROM gateway.ledger_accounts a
            LEFT JOIN gateway.ledger_entries e ON e.account_id = a.id GROUP BY a.id HAVING a.balance <> coalesce(sum(e.amount), 0)
            """, logger: logger).decode((Int64, String, String).self) {
            out.append("account \(id): balance \(balance), entries sum to \(sum)")
        }
        for try await (transfer, coin, sum) in try await c.query("""
            SELECT e.transfer_id::text, a.coin_id, sum(e.amount)::text FROM gateway.ledger_entries e
            JOIN gateway.ledger_accounts a ON a.id = e.account_id GROUP BY e.transfer_id, a.coin_id HAVING sum(e.amount) <> 0
            """, logger: logger).decode((String, Int32, String).self) {
            out.append("transfer \(transfer): coin \(coin) sums to \(sum)")
        }
        return out
    }
}
