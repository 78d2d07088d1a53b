import BigInt
import Foundation
import GatewayCore
import GatewayRuntime
import Logging
import PostgresNIO

/// A withdrawal as the Open API receives it (loose text, validated by `Withdrawals.submit`).
public struct WithdrawalRequest: Sendable {
    public var merchantID: Int64
    public var mainCoinType: String
    public var coinType: String
    public var address: String
    public var amount: String
    public var callURL: String
    public var businessID: String
    public var memo: String
    public var remark: String
    public var walletRef: String
    /// `/mch/withdraw/proxypay` rather than `/mch/withdraw`.
    public var proxypay: Bool

    public init(merchantID: Int64, mainCoinType: String, coinType: String, address: String, amount: String, callURL: String,
                businessID: String, memo: String = "", remark: String = "", walletRef: String = "", proxypay: Bool = false) {
        self.merchantID = merchantID
        self.mainCoinType = mainCoinType
        self.coinType = coinType
        self.address = address
        self.amount = amount
        self.callURL = callURL
        self.businessID = businessID
        self.memo = memo
        self.remark = remark
        self.walletRef = walletRef
        self.proxypay = proxypay
    }
}

/// A stored withdrawal.
public struct Withdrawal: Sendable, Equatable {
    public var id: Int64
    public var merchantID: Int64
    public var businessID: String
    public var coinID: Int32
    public var chain: String
    public var address: String
    public var amount: BigUInt
    public var fee: BigUInt
    public var state: String
    public var stateReason: String?
    public var txHash: String?
    public var proxypay: Bool
    public var memo: String
    public var remark: String
    public var version: Int
    public var createdAt: Date
    public var updatedAt: Date
}

/// Withdrawals: intake from the Open API, listing, and the review decisions.
public enum Withdrawals {
    /// The review stage's job kind for a new withdrawal.
    public static let reviewJobKind = "review"

    /// Validates and stores a withdrawal with its review job, in the caller's transaction.
    /// Returns the withdrawal id. Errors are Open API errors; nothing is written on error.
    public static func submit(_ r: WithdrawalRequest, directory: ChainDirectory, callbackPolicy: CallbackURLPolicy,
                              on c: PostgresConnection, logger: Logger) async throws -> Int64 {
        guard let coin = try await Coins.find(mainCoinType: r.mainCoinType, coinType: r.coinType, on: c, logger: logger) else {
            throw UdunError(.unknownCoin, "unknown coin \(r.mainCoinType)/\(r.coinType)")
        }
        let chains = try await Wallets.chains(merchantID: r.merchantID, on: c, logger: logger)
        return try await submit(r, coin: coin, merchantChains: chains, replaySignature: nil, directory: directory, callbackPolicy: callbackPolicy,
                                on: c, logger: logger)
    }

    /// Validates and stores a withdrawal with its review job in one statement, in the caller's
    /// transaction, given the coin and the merchant's wallet chains (which the API keeps cached).
    /// With `replaySignature`, the request's signature is recorded by the same statement, and a
    /// signature this merchant already used is refused (`replayed`) with nothing written.
    public static func submit(_ r: WithdrawalRequest, coin: Coin, merchantChains: Set<String>, replaySignature: String?,
                              directory: ChainDirectory, callbackPolicy: CallbackURLPolicy,
                              on c: PostgresConnection, logger: Logger) async throws -> Int64 {
        guard merchantChains.contains(coin.chain) else {
            throw UdunError(.coinNotSupportedByMerchant, "merchant does not support \(coin.symbol) on \(coin.chain)")
        }
        let address: String
        switch directory.canonicalAddress(r.address, chain: coin.chain) {
        case .success(let a): address = a
        case .failure(let e):
            throw UdunError(r.proxypay ? .invalidProxypayAddress : .invalidAddress, "invalid \(coin.chain) address: \(e)")
        }
        let amount: BigUInt
        do {
            amount = try CoinAmount.parse(r.amount, decimals: coin.decimals)
        } catch .tooManyDecimals(let d) {
            throw UdunError(.tooManyDecimals, "amount has more than \(d) decimals")
        } catch {
            throw UdunError(.badAmount, "amount must be a positive number")
        }
        if let reason = callbackPolicy.refusal(for: r.callURL) { throw UdunError(.invalidParameters, reason) }
        guard (1...128).contains(r.businessID.count) else { throw UdunError(.invalidParameters, "businessId must be 1 to 128 characters") }
        guard r.memo.count <= 256, r.remark.count <= 1024, r.walletRef.count <= 128 else {
            throw UdunError(.invalidParameters, "memo, remark or walletId is too long")
        }
        // The withdrawal, its review job and the request's signature, or none of them: one prepared
        // statement (parsed and planned once per connection).
        let statement = SubmitStatement(
            merchantID: r.merchantID, businessID: r.businessID, coinID: coin.id, chain: coin.chain, address: address, amount: amount.description,
            fee: coin.withdrawalFee.description, callURL: r.callURL, memo: r.memo, remark: r.remark, walletRef: r.walletRef, proxypay: r.proxypay,
            sign: replaySignature ?? "")
        var id: Int64?
        var replayed = false
        for try await (i, rep) in try await c.execute(statement, logger: logger) { (id, replayed) = (i, rep) }
        guard let id else {
            if replayed { throw UdunError(.replayed, "this request was already received (replayed signature)") }
            throw UdunError(.duplicateBusinessId, "businessId \(r.businessID) was already submitted; nothing changed")
        }
        JobQueue.enqueued(stages: [Stage.review.rawValue])
        return id
    }

    struct SubmitStatement: PostgresPreparedStatement {
        static let sql = """
            WITH w AS (
                INSERT INTO gateway.withdrawals (merchant_id, business_id, coin_id, chain, address, amount, fee, call_url, memo, remark, wallet_ref, proxypay)
                SELECT $1, $2, $3, $4, $5, $6::numeric, $7::numeric, $8, $9, $10, $11, $12
                WHERE $13 = '' OR NOT EXISTS (SELECT 1 FROM gateway.request_signatures WHERE merchant_id = $1 AND sign = $13)
                ON CONFLICT (merchant_id, business_id) DO NOTHING
                RETURNING id
            ), s AS (
                INSERT INTO gateway.request_signatures (merchant_id, sign)
                SELECT $1, $13 FROM w WHERE $13 <> '' ON CONFLICT DO NOTHING
            ), j AS (
                INSERT INTO gateway.jobs (stage, kind, ref, unique_key)
                SELECT 'review', 'review', 'withdrawal:' || id, 'withdrawal:' || id FROM w
                ON CONFLICT (stage, unique_key) WHERE unique_key IS NOT NULL DO NOTHING
            )
            SELECT (SELECT id FROM w),
                   $13 <> '' AND EXISTS (SELECT 1 FROM gateway.request_signatures WHERE merchant_id = $1 AND sign = $13)
            """
        typealias Row = (Int64?, Bool)

        var merchantID: Int64, businessID: String, coinID: Int32, chain: String, address: String, amount: String, fee: String
        var callURL: String, memo: String, remark: String, walletRef: String, proxypay: Bool, sign: String

        func makeBindings() throws -> PostgresBindings {
            var b = PostgresBindings(capacity: 13)
            b.append(merchantID)
            b.append(businessID)
            b.append(coinID)
            b.append(chain)
            b.append(address)
            b.append(amount)
            b.append(fee)
            b.append(callURL)
            b.append(memo)
            b.append(remark)
            b.append(walletRef)
            b.append(proxypay)
            b.append(sign)
            return b
        }

        func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
    }

    static let columns = """
        id, merchant_id, business_id, coin_id, chain, address, amount::text, fee::text, state, coalesce(state_reason, ''),
        coalesce(tx_hash, ''), proxypay, memo, remark, version, created_at, updated_at
        """

    static func decode(_ rows: PostgresRowSequence) async throws -> [Withdrawal] {
        var out: [Withdrawal] = []
        for try await row in rows {
            let r = try row.decode((Int64, Int64, String, Int32, String, String, String, String, String, String, String, Bool, String, String,
                                    Int32, Date, Date).self)
            out.append(Withdrawal(id: r.0, merchantID: r.1, businessID: r.2, coinID: r.3, chain: r.4, address: r.5, amount: BigUInt(r.6) ?? 0,
                                  fee: BigUInt(r.7) ?? 0, state: r.8, stateReason: r.9.isEmpty ? nil : r.9, txHash: r.10.isEmpty ? nil : r.10,
                                  proxypay: r.11, memo: r.12, remark: r.13, version: Int(r.14), createdAt: r.15, updatedAt: r.16))
        }
        return out
    }

    /// Withdrawals, newest first, filtered by merchant and state.
    public static func list(merchantID: Int64?, state: String?, limit: Int, on c: PostgresConnection, logger: Logger) async throws -> [Withdrawal] {
        try await decode(try await c.query("""
            SELECT \(unescaped: columns) FROM gateway.withdrawals
            WHERE (\(merchantID ?? 0)::int8 = 0 OR merchant_id = \(merchantID ?? 0)) AND (\(state ?? "")::text = '' OR state = \(state ?? ""))
            ORDER BY id DESC LIMIT \(Int32(clamping: limit))
            """, logger: logger))
    }

    /// One withdrawal; `merchantID` restricts it to that merchant's.
    public static func find(_ id: Int64, merchantID: Int64? = nil, on c: PostgresConnection, logger: Logger) async throws -> Withdrawal? {
        try await decode(try await c.query("""
            SELECT \(unescaped: columns) FROM gateway.withdrawals WHERE id = \(id) AND (\(merchantID ?? 0)::int8 = 0 OR merchant_id = \(merchantID ?? 0))
            """, logger: logger)).first
    }

    /// A review decision on a withdrawal waiting in review. `expectedVersion`, when given, must be
    /// the row's version (a stale form changes nothing). Returns the updated withdrawal.
    public static func decide(_ id: Int64, approve: Bool, reason: String?, expectedVersion: Int?, actor: String,
                              on c: PostgresConnection, logger: Logger) async throws -> Withdrawal {
        guard let current = try await decode(try await c.query(
            "SELECT \(unescaped: columns) FROM gateway.withdrawals WHERE id = \(id) FOR UPDATE", logger: logger)).first
        else { throw ServiceError.notFound("withdrawal \(id)") }
        guard current.state == "pending_review" || current.state == "received" else {
            throw ServiceError.conflict("withdrawal \(id) is \(current.state); only a withdrawal waiting in review can be decided")
        }
        if let expectedVersion, expectedVersion != current.version {
            throw ServiceError.conflict("withdrawal \(id) changed since you loaded it (version \(current.version), yours \(expectedVersion))")
        }
        if !approve, (reason ?? "").trimmingCharacters(in: .whitespaces).isEmpty {
            throw ServiceError.invalid("a rejection needs a reason")
        }
        let to = approve ? "approved" : "rejected"
        guard let updated = try await decode(try await c.query("""
            UPDATE gateway.withdrawals SET state = \(to), state_reason = \(reason), version = version + 1, updated_at = now()
            WHERE id = \(id) RETURNING \(unescaped: columns)
            """, logger: logger)).first
        else { throw ServiceError.notFound("withdrawal \(id)") }
        try await Audit.record(actor: actor, action: approve ? "withdrawal.approve" : "withdrawal.reject", target: "withdrawal:\(id)",
                               detail: ["reason": reason.map(JSONValue.string) ?? .null, "from": .string(current.state)], on: c, logger: logger)
        return updated
    }
}
