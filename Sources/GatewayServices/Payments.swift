import BigInt
import ChainKit
import Foundation
import GatewayCore
import GatewayRuntime
import Logging
import PostgresNIO

/// An approved withdrawal as the autopay stage pays it.
public struct PaymentOrder: Sendable, Equatable {
    public var withdrawalID: Int64
    public var merchantID: Int64
    public var coinID: Int32
    public var chain: String
    /// The destination (canonical form).
    public var destination: String
    /// What the destination receives: the reservation less the withdrawal fee.
    public var sentAmount: BigUInt
    /// The token's contract (canonical coin type) or nil for the native coin.
    public var tokenContract: String?
    /// The merchant wallet's hot address on this chain, and which account of the gateway seed it is.
    public var hotAddress: String
    public var accountIndex: Int?

    public init(withdrawalID: Int64, merchantID: Int64, coinID: Int32, chain: String, destination: String, sentAmount: BigUInt,
                tokenContract: String?, hotAddress: String, accountIndex: Int?) {
        self.withdrawalID = withdrawalID
        self.merchantID = merchantID
        self.coinID = coinID
        self.chain = chain
        self.destination = destination
        self.sentAmount = sentAmount
        self.tokenContract = tokenContract
        self.hotAddress = hotAddress
        self.accountIndex = accountIndex
    }
}

/// A transaction signed for a payment, to be stored before it is broadcast.
public struct SignedPayment: Sendable, Equatable {
    public var withdrawalID: Int64
    public var coinID: Int32
    public var chain: String
    public var from: String
    public var to: String
    public var amount: BigUInt
    public var nonce: UInt64?
    public var expiration: Int64?
    public var maxFee: BigUInt
    public var tip: BigUInt
    public var gasLimit: UInt64
    public var txHash: String
    public var raw: Data

    public init(withdrawalID: Int64, coinID: Int32, chain: String, from: String, to: String, amount: BigUInt, nonce: UInt64?, expiration: Int64?,
                maxFee: BigUInt, tip: BigUInt, gasLimit: UInt64, txHash: String, raw: Data) {
        self.withdrawalID = withdrawalID
        self.coinID = coinID
        self.chain = chain
        self.from = from
        self.to = to
        self.amount = amount
        self.nonce = nonce
        self.expiration = expiration
        self.maxFee = maxFee
        self.tip = tip
        self.gasLimit = gasLimit
        self.txHash = txHash
        self.raw = raw
    }
}

/// One stored outgoing transaction.
public struct OutgoingTx: Sendable, Equatable {
    public var id: Int64
    public var chain: String
    public var withdrawalID: Int64
    public var coinID: Int32
    public var from: String
    public var to: String
    public var amount: BigUInt
    public var nonce: UInt64?
    public var expiration: Int64?
    public var maxFee: BigUInt
    public var tip: BigUInt
    public var gasLimit: UInt64
    public var txHash: String
    public var raw: Data
    public var state: String
    public var broadcasts: Int
    /// Seconds since it was last broadcast (nil: never).
    public var sinceBroadcast: Double?
    /// Seconds since it was signed.
    public var age: Double
    public var blockHeight: Int64?
}

/// The payment side of withdrawals: what autopay signs, what chain-worker follows, and how a payment
/// ends (DESIGN.md §4 "Exactly-once payment").
public enum Payments {
    /// Autopay job kinds: pay an approved withdrawal; replace a stuck EVM transaction on its nonce;
    /// release a withdrawal held for the hot wallet (the configured automatic retry).
    public static let payJobKind = Withdrawals.payJobKind
    public static let replaceJobKind = "replace"
    public static let releaseJobKind = "release"
    /// The chain stage's job that follows a payment to its confirmations.
    public static let confirmJobKind = "confirm"
    /// The reason a withdrawal waits in review when the hot wallet cannot pay it.
    public static let hotWalletReason = "hot wallet balance"

    /// The withdrawal id of a job ref `withdrawal:<id>`.
    public static func withdrawalID(ref: String?) -> Int64? {
        guard let ref, ref.hasPrefix("withdrawal:") else { return nil }
        return Int64(ref.dropFirst("withdrawal:".count))
    }

    /// What an outgoing transaction pays for (`gateway.outgoing_txs.purpose`); its `ref_id` is the
    /// withdrawal's id, or the sweep's for a sweep and its gas top-up.
    public static let purposes = ["withdrawal", "sweep", "topup"]

    /// The purpose and ref id of a confirmation job's ref `<purpose>:<id>`.
    public static func paymentRef(_ ref: String?) -> (purpose: String, id: Int64)? {
        guard let ref, let colon = ref.firstIndex(of: ":") else { return nil }
        let purpose = String(ref[..<colon])
        guard purposes.contains(purpose), let id = Int64(ref[ref.index(after: colon)...]) else { return nil }
        return (purpose, id)
    }

    /// Approved withdrawals among `ids`, with their hot wallet; `lock` takes their row locks (in id order).
    public static func approvedOrders(_ ids: [Int64], lock: Bool, on c: DatabaseConnection, logger: Logger) async throws -> [PaymentOrder] {
        var out: [PaymentOrder] = []
        let rows = try await c.query("""
            SELECT w.id, w.merchant_id, w.coin_id, w.chain, w.address, (w.reserved - w.fee)::text, k.is_token, k.coin_type, wl.hot_address,
                   coalesce(wl.account_index, -1)
            FROM gateway.withdrawals w
            JOIN gateway.coins k ON k.id = w.coin_id
            JOIN gateway.wallets wl ON wl.merchant_id = w.merchant_id AND wl.chain = w.chain
            WHERE w.id = ANY(\(ids)) AND w.state = 'approved'
            ORDER BY w.id
            \(unescaped: lock ? "FOR UPDATE OF w" : "")
            """, logger: logger)
        for try await r in rows.decode((Int64, Int64, Int32, String, String, String, Bool, String, String, Int32).self) {
            out.append(PaymentOrder(withdrawalID: r.0, merchantID: r.1, coinID: r.2, chain: r.3, destination: r.4,
                                    sentAmount: BigUInt(r.5) ?? 0, tokenContract: r.6 ? r.7 : nil, hotAddress: r.8,
                                    accountIndex: r.9 < 0 ? nil : Int(r.9)))
        }
        return out
    }

    /// What the open transactions of a hot address (signed or broadcast, not yet seen in a block)
    /// still take from it: per coin id the amounts, and the most they can burn in fees (native).
    public static func inFlight(chain: String, from address: String, on c: DatabaseConnection, logger: Logger) async throws
        -> (amounts: [Int32: BigUInt], maxFees: BigUInt)
    {
        var amounts: [Int32: BigUInt] = [:]
        var fees: BigUInt = 0
        // Replacements share a nonce: only the newest of a payment counts.
        for try await (coin, amount, fee) in try await c.query("""
            SELECT DISTINCT ON (purpose, ref_id) coin_id, amount::text, (max_fee * greatest(gas_limit, 1))::text
            FROM gateway.outgoing_txs WHERE chain = \(chain) AND from_address = \(address) AND state IN ('signed', 'broadcast') AND block_height IS NULL
            ORDER BY purpose, ref_id, id DESC
            """, logger: logger).decode((Int32, String, String).self) {
            amounts[coin, default: 0] += BigUInt(amount) ?? 0
            fees += BigUInt(fee) ?? 0
        }
        return (amounts, fees)
    }

    /// Whether the nonce row of an EVM hot address exists yet.
    public static func hasNonceRow(chain: String, address: String, on c: DatabaseConnection, logger: Logger) async throws -> Bool {
        for try await _ in try await c.query("SELECT 1 FROM gateway.hot_nonces WHERE chain = \(chain) AND address = \(address)", logger: logger) {
            return true
        }
        return false
    }

    /// Takes `count` consecutive nonces of an EVM hot address under its row lock (held until the caller's
    /// transaction ends). `initial` seeds the row the first time the address pays (the node's count then).
    public static func allocateNonces(chain: String, address: String, count: Int, initial: UInt64?, on c: DatabaseConnection,
                                      logger: Logger) async throws -> UInt64 {
        if let initial {
            try await c.query("""
                INSERT INTO gateway.hot_nonces (chain, address, next_nonce) VALUES (\(chain), \(address), \(Int64(initial)))
                ON CONFLICT DO NOTHING
                """, logger: logger)
        }
        for try await first in try await c.query("""
            UPDATE gateway.hot_nonces SET next_nonce = next_nonce + \(Int64(count)), updated_at = now()
            WHERE chain = \(chain) AND address = \(address) RETURNING next_nonce - \(Int64(count))
            """, logger: logger).decode(Int64.self) {
            return UInt64(first)
        }
        throw ServiceError.notFound("nonce row of \(address) on \(chain)")
    }

    /// One nonce each of many EVM addresses (a sweep-worker's deposit addresses), under their row locks taken
    /// in address order (held until the caller's transaction ends). `initial` seeds the row of an address
    /// that never sent (the node's count then). Returns the nonce per address.
    public static func allocateNonce(chain: String, addresses: [String], initial: [String: UInt64], on c: DatabaseConnection,
                                     logger: Logger) async throws -> [String: UInt64] {
        guard !addresses.isEmpty else { return [:] }
        let seeds = addresses.filter { initial[$0] != nil }
        if !seeds.isEmpty {
            try await c.query("""
                INSERT INTO gateway.hot_nonces (chain, address, next_nonce)
                SELECT \(chain), a, n FROM unnest(\(seeds)::text[], \(seeds.map { Int64(initial[$0]!) })::int8[]) AS x(a, n) ORDER BY a
                ON CONFLICT DO NOTHING
                """, logger: logger)
        }
        var out: [String: UInt64] = [:]
        for try await (address, nonce) in try await c.query("""
            WITH l AS (SELECT address FROM gateway.hot_nonces WHERE chain = \(chain) AND address = ANY(\(addresses)::text[]) ORDER BY address FOR UPDATE)
            UPDATE gateway.hot_nonces h SET next_nonce = h.next_nonce + 1, updated_at = now() FROM l
            WHERE h.chain = \(chain) AND h.address = l.address RETURNING h.address, h.next_nonce - 1
            """, logger: logger).decode((String, Int64).self) {
            out[address] = UInt64(nonce)
        }
        if let missing = addresses.first(where: { out[$0] == nil }) { throw ServiceError.notFound("nonce row of \(missing) on \(chain)") }
        return out
    }

    /// Which of `addresses` (EVM) have their nonce row already.
    public static func nonceRows(chain: String, addresses: [String], on c: DatabaseConnection, logger: Logger) async throws -> Set<String> {
        var out = Set<String>()
        for try await a in try await c.query("""
            SELECT address FROM gateway.hot_nonces WHERE chain = \(chain) AND address = ANY(\(addresses)::text[])
            """, logger: logger).decode(String.self) {
            out.insert(a)
        }
        return out
    }

    /// Stores signed payments and marks their withdrawals `signed`, with a confirmation job each (run
    /// by chain-worker after `followAfter`, ref `<purpose>:<id>`), in the caller's transaction. Only
    /// withdrawals still `approved` (or `signed`/`broadcast` for a replacement) are touched. For another
    /// `purpose` (`sweep`, `topup`) `withdrawalID` is the sweep's id and its owner moves its own state.
    public static func store(_ txs: [SignedPayment], purpose: String = "withdrawal", replacing: [Int64: Int64] = [:], followAfter: Duration,
                             on c: DatabaseConnection, logger: Logger) async throws {
        precondition(purposes.contains(purpose), "unknown payment purpose \(purpose)")
        guard !txs.isEmpty else { return }
        let replaces = txs.map { replacing[$0.withdrawalID] ?? 0 }
        try await c.query("""
            INSERT INTO gateway.outgoing_txs (chain, purpose, ref_id, coin_id, from_address, to_address, amount, nonce, expiration, max_fee, tip,
                                              gas_limit, tx_hash, raw, replaces)
            SELECT chain, \(purpose), ref, coin, f, t, a::numeric, nullif(n, -1), nullif(e, -1), mf::numeric, tp::numeric, g, h, decode(r, 'hex'), nullif(rp, 0)
            FROM unnest(\(txs.map(\.chain))::text[], \(txs.map(\.withdrawalID))::int8[], \(txs.map(\.coinID))::int4[], \(txs.map(\.from))::text[],
                        \(txs.map(\.to))::text[], \(txs.map { $0.amount.description })::text[], \(txs.map { $0.nonce.map(Int64.init) ?? -1 })::int8[],
                        \(txs.map { $0.expiration ?? -1 })::int8[], \(txs.map { $0.maxFee.description })::text[],
                        \(txs.map { $0.tip.description })::text[], \(txs.map { Int64($0.gasLimit) })::int8[], \(txs.map(\.txHash))::text[],
                        \(txs.map { Hex.encode($0.raw) })::text[], \(replaces)::int8[])
                 AS x(chain, ref, coin, f, t, a, n, e, mf, tp, g, h, r, rp)
            """, logger: logger)
        if purpose == "withdrawal" {
            try await c.query("""
                UPDATE gateway.withdrawals w SET state = 'signed', tx_hash = x.h, sent_amount = x.a::numeric, version = version + 1, updated_at = now()
                FROM unnest(\(txs.map(\.withdrawalID))::int8[], \(txs.map(\.txHash))::text[], \(txs.map { $0.amount.description })::text[]) AS x(id, h, a)
                WHERE w.id = x.id AND w.state IN ('approved', 'signed', 'broadcast')
                """, logger: logger)
        }
        _ = try await JobQueue.enqueue(txs.map {
            NewJob(stage: .chain, kind: confirmJobKind, ref: "\(purpose):\($0.withdrawalID)", runAt: .after(followAfter),
                   uniqueKey: "\(purpose):\($0.withdrawalID)")
        }, on: c, logger: logger)
    }

    /// Records that the node accepted these transactions (or already had them). A lost write only
    /// costs a re-broadcast of the same bytes.
    public static func markBroadcast(_ hashes: [String], on c: DatabaseConnection, logger: Logger) async throws {
        guard !hashes.isEmpty else { return }
        try await c.query("""
            WITH locked AS (  -- rows locked in id order, as every multi-row writer of outgoing_txs does (no deadlocks)
                SELECT id FROM gateway.outgoing_txs WHERE tx_hash = ANY(\(hashes)) AND state IN ('signed', 'broadcast', 'mined')
                ORDER BY id FOR UPDATE
            ), t AS (
                UPDATE gateway.outgoing_txs SET state = CASE WHEN state = 'signed' THEN 'broadcast' ELSE state END,
                       broadcasts = broadcasts + 1, broadcast_at = now(), last_error = NULL, updated_at = now()
                WHERE id IN (SELECT id FROM locked) RETURNING purpose, ref_id
            ), held AS (
                SELECT x.id FROM gateway.withdrawals x JOIN t ON t.purpose = 'withdrawal' AND x.id = t.ref_id
                WHERE x.state = 'signed' ORDER BY x.id FOR UPDATE OF x
            )
            UPDATE gateway.withdrawals w SET state = 'broadcast', updated_at = now()
            WHERE w.id IN (SELECT id FROM held) AND w.state = 'signed'
            """, logger: logger)
    }

    /// Records a broadcast the node refused (kept for the monitor; the transaction stays as it was).
    public static func markBroadcastError(_ hash: String, _ error: String, on c: DatabaseConnection, logger: Logger) async throws {
        try await c.query("""
            UPDATE gateway.outgoing_txs SET last_error = \(String(error.prefix(500))), broadcast_at = now(), updated_at = now()
            WHERE tx_hash = \(hash)
            """, logger: logger)
    }

    /// Withdrawals the hot wallet cannot pay go back to review with the reason, keeping their
    /// reservation (an operator's approval, or the configured retry, pays them later); operators
    /// are told once per hot address.
    public static func holdForHotWallet(_ orders: [PaymentOrder], detail: String, retryAfter: Duration?,
                                        levels: [ReviewLevel] = ReviewRulesConfig.defaultLevels, on c: DatabaseConnection,
                                        logger: Logger) async throws {
        guard !orders.isEmpty else { return }
        let ids = orders.map(\.withdrawalID)
        var held: [Int64] = []
        for try await id in try await c.query("""
            UPDATE gateway.withdrawals SET state = 'pending_review', state_reason = \(hotWalletReason), version = version + 1, updated_at = now()
            WHERE id = ANY(\(ids)) AND state = 'approved' RETURNING id
            """, logger: logger).decode(Int64.self) {
            held.append(id)
        }
        guard !held.isEmpty else { return }
        try await c.query("""
            INSERT INTO gateway.withdrawal_decisions (withdrawal_id, decision, rule, actor, detail)
            SELECT id, 'review', 'hot_wallet_balance', 'autopay-worker', \(String(detail.prefix(1000))) FROM unnest(\(held)::int8[]) AS t(id)
            """, logger: logger)
        for id in held {  // people see it at the first level, with its SLA and escalation
            try await Reviews.open(id, level: levels.first ?? ReviewRulesConfig.defaultLevels[0], approvalsNeeded: 1, on: c, logger: logger)
        }
        let first = orders[0]
        try await OperatorNotifications.enqueue(
            "Hot wallet \(first.hotAddress) on \(first.chain) cannot pay \(held.count) withdrawal(s) (\(held.prefix(10).map(String.init).joined(separator: ", "))\(held.count > 10 ? ", …" : "")): \(detail). They wait in review with reason \"\(hotWalletReason)\"; fund the hot wallet, then release them with gatewayctl review approve\(retryAfter.map { " (or wait for the automatic retry in \(DurationText.format($0)))" } ?? "").",
            ref: "withdrawal:\(held[0])", link: held.count > 1 ? "/queue?tab=hot" : nil, on: c, logger: logger)
        if let retryAfter {
            _ = try await JobQueue.enqueue(held.map {
                NewJob(stage: .autopay, kind: releaseJobKind, ref: "withdrawal:\($0)", runAt: .after(retryAfter), uniqueKey: "release:withdrawal:\($0)")
            }, on: c, logger: logger)
        }
        logger.warning("hot wallet short: withdrawals back to review", metadata: [
            "chain": "\(first.chain)", "hot_address": "\(first.hotAddress)", "withdrawals": "\(held.count)", "detail": "\(detail)",
        ])
    }

    static let txColumns = """
        id, chain, ref_id, coin_id, from_address, to_address, amount::text, coalesce(nonce, -1), coalesce(expiration, -1), max_fee::text, tip::text,
        gas_limit, tx_hash, encode(raw, 'hex'), state, broadcasts, extract(epoch FROM now() - broadcast_at)::float8, extract(epoch FROM now() - created_at)::float8,
        block_height
        """

    static func decodeTxs(_ rows: PostgresRowSequence) async throws -> [OutgoingTx] {
        var out: [OutgoingTx] = []
        for try await row in rows {
            let r = try row.decode((Int64, String, Int64, Int32, String, String, String, Int64, Int64, String, String, Int64, String, String, String,
                                    Int32, Double?, Double, Int64?).self)
            out.append(OutgoingTx(id: r.0, chain: r.1, withdrawalID: r.2, coinID: r.3, from: r.4, to: r.5, amount: BigUInt(r.6) ?? 0,
                                  nonce: r.7 < 0 ? nil : UInt64(r.7), expiration: r.8 < 0 ? nil : r.8, maxFee: BigUInt(r.9) ?? 0,
                                  tip: BigUInt(r.10) ?? 0, gasLimit: UInt64(max(0, r.11)), txHash: r.12, raw: (try? Hex.decode(r.13)) ?? Data(), state: r.14,
                                  broadcasts: Int(r.15), sinceBroadcast: r.16, age: r.17, blockHeight: r.18))
        }
        return out
    }

    /// A withdrawal's transactions that may still land (signed, broadcast or seen in a block), oldest first.
    public static func openTransactions(withdrawalID: Int64, on c: DatabaseConnection, logger: Logger) async throws -> [OutgoingTx] {
        try await openTransactions(withdrawalIDs: [withdrawalID], on: c, logger: logger)[withdrawalID] ?? []
    }

    /// `openTransactions` of many withdrawals (or sweeps or top-ups: `purpose`) in one query (those with none are absent).
    public static func openTransactions(withdrawalIDs: [Int64], purpose: String = "withdrawal", on c: DatabaseConnection,
                                        logger: Logger) async throws -> [Int64: [OutgoingTx]] {
        guard !withdrawalIDs.isEmpty else { return [:] }
        let txs = try await decodeTxs(try await c.query("""
            SELECT \(unescaped: txColumns) FROM gateway.outgoing_txs
            WHERE purpose = \(purpose) AND ref_id = ANY(\(withdrawalIDs)::int8[]) AND state IN ('signed', 'broadcast', 'mined') ORDER BY id
            """, logger: logger))
        return Dictionary(grouping: txs, by: \.withdrawalID)
    }

    /// Every transaction of a withdrawal, oldest first.
    public static func transactions(withdrawalID: Int64, on c: DatabaseConnection, logger: Logger) async throws -> [OutgoingTx] {
        try await decodeTxs(try await c.query("""
            SELECT \(unescaped: txColumns) FROM gateway.outgoing_txs WHERE purpose = 'withdrawal' AND ref_id = \(withdrawalID) ORDER BY id
            """, logger: logger))
    }

    /// Notes that transactions were seen in a block (not yet deep enough), or no longer are (reorg: nil).
    public static func markSeen(_ seen: [(txID: Int64, blockHeight: Int64?)], on c: DatabaseConnection, logger: Logger) async throws {
        guard !seen.isEmpty else { return }
        let ids = seen.map(\.txID), heights = seen.map { $0.blockHeight ?? -1 }
        try await c.query("""
            WITH locked AS (
                SELECT id FROM gateway.outgoing_txs WHERE id = ANY(\(ids)::int8[]) AND state IN ('signed', 'broadcast', 'mined')
                ORDER BY id FOR UPDATE
            )
            UPDATE gateway.outgoing_txs o SET state = CASE WHEN u.h < 0 THEN 'broadcast' ELSE 'mined' END, block_height = nullif(u.h, -1), updated_at = now()
            FROM unnest(\(ids)::int8[], \(heights)::int8[]) AS u(i, h)
            WHERE o.id = u.i AND o.id IN (SELECT id FROM locked)
            """, logger: logger)
    }

    /// How a payment ended on chain.
    public enum Outcome: Sendable, Equatable {
        case confirmed
        case failed(reason: String)
    }

    /// A payment whose transaction `txID` is `confirmations` deep, and how it ended.
    public struct Settlement: Sendable, Equatable {
        public var withdrawalID: Int64
        public var txID: Int64
        public var outcome: Outcome
        public var blockHeight: Int64
        public var networkFee: BigUInt

        public init(withdrawalID: Int64, txID: Int64, outcome: Outcome, blockHeight: Int64, networkFee: BigUInt) {
            self.withdrawalID = withdrawalID
            self.txID = txID
            self.outcome = outcome
            self.blockHeight = blockHeight
            self.networkFee = networkFee
        }
    }

    /// Settles one payment; see `settle(_:on:logger:)`. Returns false when it was already settled.
    public static func settle(withdrawalID: Int64, txID: Int64, outcome: Outcome, blockHeight: Int64, networkFee: BigUInt,
                              on c: DatabaseConnection, logger: Logger) async throws -> Bool {
        let item = Settlement(withdrawalID: withdrawalID, txID: txID, outcome: outcome, blockHeight: blockHeight, networkFee: networkFee)
        return try await !settle([item], on: c, logger: logger).isEmpty
    }

    /// Settles payments whose transactions are `confirmations` deep, in the caller's transaction and
    /// in a few statements however many there are: each transaction confirmed or failed, its
    /// siblings replaced, the withdrawal `confirmed` (ledger: reservation debited, the amount sent to
    /// the chain, the fee to the gateway; callback 3) or `failed` (reservation released; callback 4);
    /// the network fee booked either way. A withdrawal already settled (or whose transaction is no
    /// longer open) is left as it is. Returns the withdrawal ids settled.
    public static func settle(_ items: [Settlement], on c: DatabaseConnection, logger: Logger) async throws -> Set<Int64> {
        guard !items.isEmpty else { return [] }
        var byWithdrawal: [Int64: Settlement] = [:]
        for item in items where byWithdrawal[item.withdrawalID] == nil { byWithdrawal[item.withdrawalID] = item }
        let ids = byWithdrawal.keys.sorted()
        struct Locked { var merchant: Int64, coin: Int32, chain: String, reserved: BigInt, fee: BigInt }
        var locked: [Int64: Locked] = [:]
        for try await r in try await c.query("""
            SELECT id, merchant_id, coin_id, chain, reserved::text, fee::text FROM gateway.withdrawals
            WHERE id = ANY(\(ids)::int8[]) AND state IN ('signed', 'broadcast') ORDER BY id FOR UPDATE
            """, logger: logger).decode((Int64, Int64, Int32, String, String, String).self) {
            locked[r.0] = Locked(merchant: r.1, coin: r.2, chain: r.3, reserved: BigInt(r.4) ?? 0, fee: BigInt(r.5) ?? 0)
        }
        let candidates = ids.filter { locked[$0] != nil }.map { byWithdrawal[$0]! }
        guard !candidates.isEmpty else { return [] }
        let hashes = try await closeTransactions(candidates, purpose: "withdrawal", on: c, logger: logger)
        let settled = candidates.filter { hashes[$0.withdrawalID] != nil }
        guard !settled.isEmpty else { return [] }
        var natives: [String: Int32?] = [:]
        var transfers: [LedgerTransfer] = []
        for item in settled {
            let w = locked[item.withdrawalID]!
            let ref = "withdrawal:\(item.withdrawalID)"
            if w.reserved > 0 {
                var legs = [LedgerLeg(merchantID: w.merchant, coinID: w.coin, kind: LedgerAccountKind.reserved, amount: -w.reserved)]
                switch item.outcome {
                case .confirmed:
                    let sent = w.reserved - w.fee
                    if sent != 0 { legs.append(LedgerLeg(merchantID: nil, coinID: w.coin, kind: LedgerAccountKind.chain, amount: sent)) }
                    if w.fee != 0 { legs.append(LedgerLeg(merchantID: nil, coinID: w.coin, kind: LedgerAccountKind.feeIncome, amount: w.fee)) }
                case .failed:
                    legs.append(LedgerLeg(merchantID: w.merchant, coinID: w.coin, kind: LedgerAccountKind.available, amount: w.reserved))
                }
                transfers.append(LedgerTransfer(reason: item.outcome == .confirmed ? "withdrawal.paid" : "withdrawal.failed", ref: ref, legs: legs))
            }
            if let fee = try await networkFeeTransfer(chain: w.chain, fee: item.networkFee, reason: "withdrawal.network_fee", ref: ref,
                                                      natives: &natives, on: c, logger: logger) {
                transfers.append(fee)
            }
        }
        try await Ledger.post(transfers, on: c, logger: logger)
        let settledIDs = settled.map(\.withdrawalID)
        let states = settled.map { $0.outcome == .confirmed ? "confirmed" : "failed" }
        let reasons = settled.map { item -> String in
            if case .failed(let r) = item.outcome { return "failed on chain: \(r)" }
            return ""
        }
        let settledHashes = settled.map { hashes[$0.withdrawalID] ?? "" }
        let heights = settled.map(\.blockHeight)
        let fees = settled.map(\.networkFee.description)
        let updated = try await Withdrawals.decode(try await c.query("""
            UPDATE gateway.withdrawals SET state = u.ustate, state_reason = nullif(u.ureason, ''), tx_hash = u.uhash, block_height = u.uheight,
                   network_fee = u.ufee::numeric, reserved = 0, version = version + 1, updated_at = now()
            FROM unnest(\(settledIDs)::int8[], \(states)::text[], \(reasons)::text[], \(settledHashes)::text[], \(heights)::int8[],
                        \(fees)::text[]) AS u(uid, ustate, ureason, uhash, uheight, ufee)
            WHERE id = u.uid RETURNING \(unescaped: Withdrawals.columns)
            """, logger: logger))
        try await Withdrawals.sendCallbacks(updated.map { w in
            let item = byWithdrawal[w.id]!
            let confirmed = item.outcome == .confirmed
            return Withdrawals.CallbackRequest(w, status: confirmed ? 3 : 4, blockHeight: item.blockHeight,
                                               charged: confirmed ? BigUInt(locked[w.id]!.fee) : 0)
        }, on: c, logger: logger)
        return Set(updated.map(\.id))
    }

    /// The transactions that settle payments of `purpose` (each item's `withdrawalID` is the ref id),
    /// still open, become confirmed or failed, and their siblings on the same payment replaced, in the
    /// caller's transaction. Returns the settling transaction's hash per ref id actually closed (a
    /// payment settled already, or whose transaction is no longer open, is absent).
    public static func closeTransactions(_ items: [Settlement], purpose: String, on c: DatabaseConnection, logger: Logger) async throws
        -> [Int64: String]
    {
        guard !items.isEmpty else { return [:] }
        var hashes: [Int64: String] = [:]
        let txIDs = items.map(\.txID), refs = items.map(\.withdrawalID), blocks = items.map(\.blockHeight)
        let outcomes = items.map { $0.outcome == .confirmed ? "confirmed" : "failed" }, paid = items.map(\.networkFee.description)
        for try await (w, hash) in try await c.query("""
            WITH locked AS (
                SELECT id FROM gateway.outgoing_txs WHERE purpose = \(purpose) AND ref_id = ANY(\(refs)::int8[])
                  AND state IN ('signed', 'broadcast', 'mined') ORDER BY id FOR UPDATE
            )
            UPDATE gateway.outgoing_txs o SET state = u.ustate, block_height = u.uheight, network_fee = u.ufee::numeric, updated_at = now()
            FROM unnest(\(txIDs)::int8[], \(refs)::int8[], \(outcomes)::text[], \(blocks)::int8[], \(paid)::text[]) AS u(uid, uref, ustate, uheight, ufee)
            WHERE o.id = u.uid AND o.purpose = \(purpose) AND o.ref_id = u.uref AND o.id IN (SELECT id FROM locked)
            RETURNING o.ref_id, o.tx_hash
            """, logger: logger).decode((Int64, String).self) {
            hashes[w] = hash
        }
        guard !hashes.isEmpty else { return [:] }
        let settled = items.filter { hashes[$0.withdrawalID] != nil }
        let settledRefs = settled.map(\.withdrawalID), settledTxs = settled.map(\.txID)
        try await c.query("""
            UPDATE gateway.outgoing_txs SET state = 'replaced', updated_at = now()
            WHERE purpose = \(purpose) AND ref_id = ANY(\(settledRefs)::int8[]) AND NOT id = ANY(\(settledTxs)::int8[])
              AND state IN ('signed', 'broadcast', 'mined')
            """, logger: logger)
        return hashes
    }

    /// The ledger transfer of a network fee burned on `chain` (the native coin leaves the chain
    /// account for the chain's fee account), or nil when it is 0 or the chain has no native coin.
    public static func networkFeeTransfer(chain: String, fee: BigUInt, reason: String, ref: String, natives: inout [String: Int32?],
                                          on c: DatabaseConnection, logger: Logger) async throws -> LedgerTransfer? {
        guard fee > 0 else { return nil }
        if natives[chain] == nil { natives[chain] = .some(try await nativeCoinID(chain: chain, on: c, logger: logger)) }
        guard let native = natives[chain] ?? nil else {
            logger.error("no native coin is configured for the chain: the network fee is not booked",
                         metadata: ["chain": "\(chain)", "ref": "\(ref)", "network_fee": "\(fee)"])
            return nil
        }
        return LedgerTransfer(reason: reason, ref: ref, legs: [
            LedgerLeg(merchantID: nil, coinID: native, kind: LedgerAccountKind.chain, amount: BigInt(fee)),
            LedgerLeg(merchantID: nil, coinID: native, kind: LedgerAccountKind.networkFees, amount: -BigInt(fee)),
        ])
    }

    /// A TRON transaction that expired unseen (checked against solidified state by the caller): it is
    /// marked expired and, when it was the withdrawal's last open one, the withdrawal is approved
    /// again and a new payment queued. Returns whether the withdrawal was re-queued.
    public static func expire(withdrawalID: Int64, txID: Int64, on c: DatabaseConnection, logger: Logger) async throws -> Bool {
        var state: String?
        for try await s in try await c.query("SELECT state FROM gateway.withdrawals WHERE id = \(withdrawalID) FOR UPDATE", logger: logger)
            .decode(String.self) { state = s }
        guard state == "signed" || state == "broadcast" else { return false }
        try await c.query("""
            UPDATE gateway.outgoing_txs SET state = 'expired', updated_at = now()
            WHERE id = \(txID) AND state IN ('signed', 'broadcast') AND expiration IS NOT NULL
            """, logger: logger)
        guard try await openTransactions(withdrawalID: withdrawalID, on: c, logger: logger).isEmpty else { return false }
        try await c.query("""
            UPDATE gateway.withdrawals SET state = 'approved', tx_hash = NULL, version = version + 1, updated_at = now() WHERE id = \(withdrawalID)
            """, logger: logger)
        try await Withdrawals.recordDecision(withdrawalID, "approve", rule: "expired_unseen", actor: "chain-worker",
                                             detail: "transaction expired without appearing on chain; paying again with a new one", on: c, logger: logger)
        _ = try await JobQueue.enqueue(NewJob(stage: .autopay, kind: payJobKind, ref: "withdrawal:\(withdrawalID)", uniqueKey: "withdrawal:\(withdrawalID)"),
                                       on: c, logger: logger)
        return true
    }

    /// The id of a chain's native coin (for network fees), if configured.
    public static func nativeCoinID(chain: String, on c: DatabaseConnection, logger: Logger) async throws -> Int32? {
        for try await id in try await c.query("""
            SELECT id FROM gateway.coins WHERE chain = \(chain) AND NOT is_token ORDER BY id LIMIT 1
            """, logger: logger).decode(Int32.self) {
            return id
        }
        return nil
    }
}
