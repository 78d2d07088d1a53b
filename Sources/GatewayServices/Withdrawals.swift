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
                              on c: DatabaseConnection, logger: Logger) async throws -> Int64 {
        guard let coin = try await Coins.find(mainCoinType: r.mainCoinType, coinType: r.coinType, on: c, logger: logger) else {
            throw UdunError(.unknownCoin, "unknown coin \(r.mainCoinType)/\(r.coinType)")
        }
        let chains = try await Wallets.chains(merchantID: r.merchantID, on: c, logger: logger)
        let valid = try validate(r, coin: coin, merchantChains: chains, replaySignature: nil, directory: directory, callbackPolicy: callbackPolicy)
        return try (try await insert([valid], on: c, logger: logger))[0].get(businessID: r.businessID)
    }

    /// A withdrawal request checked against its coin and the merchant's wallets, ready to store.
    public struct Validated: Sendable {
        public var merchantID: Int64, businessID: String, coinID: Int32, chain: String, address: String, amount: String, fee: String
        public var callURL: String, memo: String, remark: String, walletRef: String, proxypay: Bool
        /// The request's signature for the replay record ("" for none).
        public var sign: String

        public init(merchantID: Int64, businessID: String, coinID: Int32, chain: String, address: String, amount: String, fee: String, callURL: String,
                    memo: String, remark: String, walletRef: String, proxypay: Bool, sign: String) {
            self.merchantID = merchantID
            self.businessID = businessID
            self.coinID = coinID
            self.chain = chain
            self.address = address
            self.amount = amount
            self.fee = fee
            self.callURL = callURL
            self.memo = memo
            self.remark = remark
            self.walletRef = walletRef
            self.proxypay = proxypay
            self.sign = sign
        }
    }

    /// What storing one validated withdrawal did.
    public enum Stored: Sendable, Equatable {
        case created(Int64)
        /// The merchant already has a withdrawal with this businessId: nothing written.
        case duplicateBusinessID
        /// The merchant already sent this signature: nothing written.
        case replayed

        /// The id, or the Open API error.
        public func get(businessID: String) throws -> Int64 {
            switch self {
            case .created(let id): return id
            case .duplicateBusinessID: throw UdunError(.duplicateBusinessId, "businessId \(businessID) was already submitted; nothing changed")
            case .replayed: throw UdunError(.replayed, "this request was already received (replayed signature)")
            }
        }
    }

    /// Checks a request against its coin and the merchant's wallet chains (which the API keeps
    /// cached). Errors are Open API errors.
    public static func validate(_ r: WithdrawalRequest, coin: Coin, merchantChains: Set<String>, replaySignature: String?,
                                directory: ChainDirectory, callbackPolicy: CallbackURLPolicy) throws -> Validated {
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
        guard amount.description.count <= 78 else { throw UdunError(.badAmount, "amount is too large") }  // NUMERIC(78,0)
        guard r.callURL.utf8.count <= 2048 else { throw UdunError(.invalidParameters, "callUrl is longer than 2048 bytes") }
        if let reason = callbackPolicy.refusal(for: r.callURL) { throw UdunError(.invalidParameters, reason) }
        guard (1...128).contains(r.businessID.count) else { throw UdunError(.invalidParameters, "businessId must be 1 to 128 characters") }
        guard r.memo.count <= 256, r.remark.count <= 1024, r.walletRef.count <= 128 else {
            throw UdunError(.invalidParameters, "memo, remark or walletId is too long")
        }
        return Validated(merchantID: r.merchantID, businessID: r.businessID, coinID: coin.id, chain: coin.chain, address: address,
                         amount: amount.description, fee: coin.withdrawalFee.description, callURL: r.callURL, memo: r.memo, remark: r.remark,
                         walletRef: r.walletRef, proxypay: r.proxypay, sign: replaySignature ?? "")
    }

    /// Stores withdrawals, each with its review job and its replay record, in one prepared statement
    /// in the caller's transaction (the API groups concurrent requests into one). Outcomes are in
    /// input order; of two with the same businessId the first is created, the second a duplicate.
    public static func insert(_ items: [Validated], on c: DatabaseConnection, logger: Logger) async throws -> [Stored] {
        guard !items.isEmpty else { return [] }
        var out = [Stored](repeating: .duplicateBusinessID, count: items.count)
        for try await (ord, id, replayed) in try await c.execute(InsertStatement(items: items), logger: logger) {
            let i = Int(ord) - 1
            guard out.indices.contains(i) else { continue }
            out[i] = id.map(Stored.created) ?? (replayed ? .replayed : .duplicateBusinessID)
        }
        if out.contains(where: { if case .created = $0 { return true } else { return false } }) {
            JobQueue.enqueued(stages: [Stage.review.rawValue])
        }
        return out
    }

    /// After a commit whose outcome is unknown (`CommitOutcomeUnknown`), what became of each withdrawal, read through its
    /// own key (merchant, businessId) — never assumed either way: `.created(id)` when the row is there with this
    /// request's coin, address and amount (the commit happened), `.duplicateBusinessID` when another request's row
    /// holds the businessId, nil when there is none (nothing was stored: the request may be sent again).
    public static func resolveUnknownCommit(_ items: [Validated], on c: DatabaseConnection, logger: Logger) async throws -> [Stored?] {
        var found: [String: (id: Int64, coin: Int32, address: String, amount: String)] = [:]
        for try await (merchant, business, id, coin, address, amount) in try await c.query("""
            SELECT merchant_id, business_id, id, coin_id, address, amount::text FROM gateway.withdrawals
            WHERE (merchant_id, business_id) IN (SELECT * FROM unnest(\(items.map(\.merchantID))::int8[], \(items.map(\.businessID))::text[]))
            """, logger: logger).decode((Int64, String, Int64, Int32, String, String).self) {
            found["\(merchant)\u{0}\(business)"] = (id, coin, address, amount)
        }
        return items.map { item in
            guard let row = found["\(item.merchantID)\u{0}\(item.businessID)"] else { return nil }
            let same = row.coin == item.coinID && row.address == item.address && BigUInt(row.amount) == BigUInt(item.amount)
            return same ? .created(row.id) : .duplicateBusinessID
        }
    }

    /// The statement that stores the API's withdrawals with SQL expressions in place of its 13 array parameters (one
    /// array each, in the order of `InsertStatement.makeBindings`: merchant, businessId, coin, chain, address, amount,
    /// fee, callUrl, memo, remark, walletId, proxypay, sign), so that another client runs exactly the API's statement
    /// (`gatewayctl bench api --write-pgbench`, the peer of scripts/bench-api.sh).
    public static func insertSQL(replacingParametersWith arrays: [String]) -> String {
        precondition(arrays.count == InsertStatement.parameterTypes.count, "the statement has \(InsertStatement.parameterTypes.count) parameters")
        var sql = InsertStatement.sql
        for (i, type) in InsertStatement.parameterTypes.enumerated() {
            sql = sql.replacingOccurrences(of: "$\(i + 1)::\(type)[]", with: "(\(arrays[i]))::\(type)[]")
        }
        return sql
    }

    struct InsertStatement: PostgresPreparedStatement {
        static let sql = """
            WITH input AS (
                SELECT * FROM unnest($1::int8[], $2::text[], $3::int4[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
                                     $10::text[], $11::text[], $12::bool[], $13::text[])
                    WITH ORDINALITY AS t(merchant_id, business_id, coin_id, chain, address, amount, fee, call_url, memo, remark, wallet_ref, proxypay,
                                         sign, ord)
            ), fresh AS (
                -- One candidate per businessId (the first), none for a signature already seen; in key order, so
                -- concurrent statements take the unique-index locks in one order.
                SELECT DISTINCT ON (merchant_id, business_id) * FROM input i
                WHERE i.sign = '' OR NOT EXISTS (SELECT 1 FROM gateway.request_signatures r WHERE r.merchant_id = i.merchant_id AND r.sign = i.sign)
                ORDER BY merchant_id, business_id, ord
            ), w AS (
                INSERT INTO gateway.withdrawals (merchant_id, business_id, coin_id, chain, address, amount, fee, call_url, memo, remark, wallet_ref, proxypay)
                SELECT merchant_id, business_id, coin_id, chain, address, amount::numeric, fee::numeric, call_url, memo, remark, wallet_ref, proxypay
                FROM fresh ORDER BY merchant_id, business_id
                ON CONFLICT (merchant_id, business_id) DO NOTHING
                RETURNING id, merchant_id, business_id
            ), created AS (
                SELECT f.ord, w.id, f.merchant_id, f.sign FROM fresh f JOIN w ON w.merchant_id = f.merchant_id AND w.business_id = f.business_id
            ), s AS (
                INSERT INTO gateway.request_signatures (merchant_id, sign)
                SELECT merchant_id, sign FROM created WHERE sign <> '' ORDER BY merchant_id, sign ON CONFLICT DO NOTHING
            ), j AS (
                INSERT INTO gateway.jobs (stage, kind, ref, unique_key)
                SELECT 'review', 'review', 'withdrawal:' || id, 'withdrawal:' || id FROM created ORDER BY id
                ON CONFLICT (stage, unique_key) WHERE unique_key IS NOT NULL DO NOTHING
            )
            SELECT i.ord, c.id,
                   i.sign <> '' AND EXISTS (SELECT 1 FROM gateway.request_signatures r WHERE r.merchant_id = i.merchant_id AND r.sign = i.sign)
            FROM input i LEFT JOIN created c ON c.ord = i.ord
            """
        typealias Row = (Int64, Int64?, Bool)
        static let parameterTypes = ["int8", "text", "int4", "text", "text", "text", "text", "text", "text", "text", "text", "bool", "text"]

        var items: [Validated]

        func makeBindings() throws -> PostgresBindings {
            var b = PostgresBindings(capacity: 13)
            b.append(items.map(\.merchantID))
            b.append(items.map(\.businessID))
            b.append(items.map(\.coinID))
            b.append(items.map(\.chain))
            b.append(items.map(\.address))
            b.append(items.map(\.amount))
            b.append(items.map(\.fee))
            b.append(items.map(\.callURL))
            b.append(items.map(\.memo))
            b.append(items.map(\.remark))
            b.append(items.map(\.walletRef))
            b.append(items.map(\.proxypay))
            b.append(items.map(\.sign))
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
    public static func list(merchantID: Int64?, state: String?, limit: Int, on c: DatabaseConnection, logger: Logger) async throws -> [Withdrawal] {
        try await decode(try await c.query("""
            SELECT \(unescaped: columns) FROM gateway.withdrawals
            WHERE (\(merchantID ?? 0)::int8 = 0 OR merchant_id = \(merchantID ?? 0)) AND (\(state ?? "")::text = '' OR state = \(state ?? ""))
            ORDER BY id DESC LIMIT \(Int32(clamping: limit))
            """, logger: logger))
    }

    /// One withdrawal; `merchantID` restricts it to that merchant's.
    public static func find(_ id: Int64, merchantID: Int64? = nil, on c: DatabaseConnection, logger: Logger) async throws -> Withdrawal? {
        try await decode(try await c.query("""
            SELECT \(unescaped: columns) FROM gateway.withdrawals WHERE id = \(id) AND (\(merchantID ?? 0)::int8 = 0 OR merchant_id = \(merchantID ?? 0))
            """, logger: logger)).first
    }

    /// The autopay stage's job kind for an approved withdrawal.
    public static let payJobKind = "pay"
    public static let callbackTradeType = 2

    /// A review decision on a withdrawal waiting in review. `expectedVersion`, when given, must be
    /// the row's version (a stale form changes nothing). Approval reserves the amount from the
    /// merchant's available balance (refused, changing nothing, when that would overdraw it), sends
    /// callback 1 and enqueues the payment; rejection needs a reason and sends callback 2. All in the
    /// caller's transaction. Returns the updated withdrawal.
    public static func decide(_ id: Int64, approve: Bool, reason: String?, expectedVersion: Int?, actor: String, rule: String = "people",
                              on c: DatabaseConnection, logger: Logger) async throws -> Withdrawal {
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
        // A withdrawal sent back to review by autopay (hot wallet short) still holds its reservation.
        let held = try await reservedAmount(id, on: c, logger: logger)
        var reserve: BigInt = held
        if approve && held == 0 {
            // The fee is deducted from the amount sent, or (merchant setting) reserved on top of it.
            var addFee = false
            for try await mode in try await c.query(
                "SELECT withdrawal_fee_mode FROM gateway.merchants WHERE id = \(current.merchantID)", logger: logger).decode(String.self) {
                addFee = mode == "add"
            }
            reserve = BigInt(current.amount) + (addFee ? BigInt(current.fee) : 0)
            guard reserve > BigInt(current.fee) else {
                throw ServiceError.conflict(
                    "withdrawal \(id) does not cover its fee: \(current.amount) sent less the fee \(current.fee) (base units) leaves nothing; reject it")
            }
            let available = try await lockedAvailable(merchantID: current.merchantID, coinID: current.coinID, on: c, logger: logger)
            guard available >= reserve else {
                throw ServiceError.conflict(
                    "withdrawal \(id) would overdraw the merchant: available \(available), needs \(reserve) (base units); it stays in review")
            }
            try await Ledger.post([LedgerTransfer(reason: "withdrawal.reserve", ref: "withdrawal:\(id)", legs: [
                LedgerLeg(merchantID: current.merchantID, coinID: current.coinID, kind: LedgerAccountKind.available, amount: -reserve),
                LedgerLeg(merchantID: current.merchantID, coinID: current.coinID, kind: LedgerAccountKind.reserved, amount: reserve),
            ])], on: c, logger: logger)
        } else if !approve && held > 0 {
            try await Ledger.post([LedgerTransfer(reason: "withdrawal.release", ref: "withdrawal:\(id)", legs: [
                LedgerLeg(merchantID: current.merchantID, coinID: current.coinID, kind: LedgerAccountKind.reserved, amount: -held),
                LedgerLeg(merchantID: current.merchantID, coinID: current.coinID, kind: LedgerAccountKind.available, amount: held),
            ])], on: c, logger: logger)
            reserve = 0
        }
        let to = approve ? "approved" : "rejected"
        guard let updated = try await decode(try await c.query("""
            UPDATE gateway.withdrawals SET state = \(to), state_reason = \(reason), reserved = \(approve ? reserve.description : "0")::numeric,
                   version = version + 1, updated_at = now()
            WHERE id = \(id) RETURNING \(unescaped: columns)
            """, logger: logger)).first
        else { throw ServiceError.notFound("withdrawal \(id)") }
        try await sendCallback(updated, status: approve ? 1 : 2, on: c, logger: logger)
        if approve {
            try await JobQueue.enqueue(NewJob(stage: .autopay, kind: payJobKind, ref: "withdrawal:\(id)", uniqueKey: "withdrawal:\(id)"),
                                       on: c, logger: logger)
        }
        try await recordDecision(id, approve ? "approve" : "reject", rule: rule, actor: actor, detail: reason ?? "", on: c, logger: logger)
        try await Audit.record(actor: actor, action: approve ? "withdrawal.approve" : "withdrawal.reject", target: "withdrawal:\(id)",
                               detail: ["reason": reason.map(JSONValue.string) ?? .null, "from": .string(current.state)], on: c, logger: logger)
        return updated
    }

    /// A new withdrawal goes to people: `pending_review` with the reason, callback 0, and its review
    /// opened at the first of the configured `levels` (deadline = now + its SLA, escalation scheduled
    /// then; `Reviews.open`). `approvalsNeeded` is 2 for four eyes. A withdrawal already past
    /// `received` is left as it is (returns nil).
    public static func sendToReview(_ id: Int64, reason: String, rule: String = "review",
                                    levels: [ReviewLevel] = ReviewRulesConfig.defaultLevels, approvalsNeeded: Int = 1,
                                    on c: DatabaseConnection, logger: Logger) async throws -> Withdrawal? {
        guard let updated = try await decode(try await c.query("""
            UPDATE gateway.withdrawals SET state = 'pending_review', state_reason = \(reason), version = version + 1, updated_at = now()
            WHERE id = \(id) AND state = 'received' RETURNING \(unescaped: columns)
            """, logger: logger)).first
        else { return nil }
        try await sendCallback(updated, status: 0, on: c, logger: logger)
        try await recordDecision(id, "review", rule: rule, actor: "review-worker", detail: reason, on: c, logger: logger)
        try await Reviews.open(id, level: levels.first ?? ReviewRulesConfig.defaultLevels[0], approvalsNeeded: approvalsNeeded, on: c, logger: logger)
        return updated
    }

    /// Records a decision and what made it (a rule, or people).
    public static func recordDecision(_ id: Int64, _ decision: String, rule: String, actor: String, detail: String, on c: DatabaseConnection,
                                      logger: Logger) async throws {
        try await c.query("""
            INSERT INTO gateway.withdrawal_decisions (withdrawal_id, decision, rule, actor, detail)
            VALUES (\(id), \(decision), \(rule), \(actor), \(String(detail.prefix(1000))))
            """, logger: logger)
    }

    /// What a withdrawal holds in its merchant's reserved account.
    static func reservedAmount(_ id: Int64, on c: DatabaseConnection, logger: Logger) async throws -> BigInt {
        for try await r in try await c.query("SELECT reserved::text FROM gateway.withdrawals WHERE id = \(id)", logger: logger).decode(String.self) {
            return BigInt(r) ?? 0
        }
        return 0
    }

    /// The merchant's available balance of a coin, its account row locked until the transaction ends
    /// (so two approvals cannot both spend the same balance).
    static func lockedAvailable(merchantID: Int64, coinID: Int32, on c: DatabaseConnection, logger: Logger) async throws -> BigInt {
        var balance: BigInt = 0
        for try await b in try await c.query("""
            SELECT balance::text FROM gateway.ledger_accounts
            WHERE merchant_id = \(merchantID) AND coin_id = \(coinID) AND kind = 'available' FOR UPDATE
            """, logger: logger).decode(String.self) {
            balance = BigInt(b) ?? 0
        }
        return balance
    }

    /// The withdrawal callback of `status` (0 review, 1 approved, 2 rejected, 3/4 on chain), with its exact bytes.
    /// `blockHeight` and `charged` (the fee the merchant paid) are those of status 3 and 4.
    static func sendCallback(_ w: Withdrawal, status: Int, blockHeight: Int64? = nil, charged: BigUInt = 0, on c: DatabaseConnection,
                             logger: Logger) async throws {
        try await sendCallbacks([CallbackRequest(w, status: status, blockHeight: blockHeight, charged: charged)], on: c, logger: logger)
    }

    /// A withdrawal callback to send.
    struct CallbackRequest: Sendable {
        var withdrawal: Withdrawal
        var status: Int
        var blockHeight: Int64?
        var charged: BigUInt

        init(_ withdrawal: Withdrawal, status: Int, blockHeight: Int64? = nil, charged: BigUInt = 0) {
            self.withdrawal = withdrawal
            self.status = status
            self.blockHeight = blockHeight
            self.charged = charged
        }
    }

    /// Many withdrawal callbacks in a few statements (settling a block's payments at once).
    static func sendCallbacks(_ requests: [CallbackRequest], on c: DatabaseConnection, logger: Logger) async throws {
        guard !requests.isEmpty else { return }
        var coins: [Int64: (main: String, coinType: String, decimals: Int32, callURL: String)] = [:]
        for try await r in try await c.query("""
            SELECT w.id, k.main_coin_type, k.coin_type, k.decimals, w.call_url FROM gateway.withdrawals w JOIN gateway.coins k ON k.id = w.coin_id
            WHERE w.id = ANY(\(requests.map(\.withdrawal.id))::int8[])
            """, logger: logger).decode((Int64, String, String, Int32, String).self) {
            coins[r.0] = (r.1, r.2, r.3, r.4)
        }
        var pending: [CallbackPayloads.Pending] = []
        for request in requests {
            let w = request.withdrawal
            guard let coin = coins[w.id] else { throw ServiceError.notFound("withdrawal \(w.id)") }
            let onChain = request.status >= 3
            pending.append(CallbackPayloads.Pending(merchantID: w.merchantID, url: coin.callURL, fields: CallbackFields(
                address: w.address, amount: w.amount, blockHeight: onChain ? request.blockHeight : nil, businessID: w.businessID,
                coinType: coin.coinType, decimals: Int(coin.decimals), fee: onChain ? request.charged : 0, mainCoinType: coin.main, memo: w.memo,
                status: request.status, tradeID: w.id, tradeType: callbackTradeType, txID: onChain ? (w.txHash ?? "") : "")))
        }
        try await CallbackPayloads.create(pending, on: c, logger: logger)
    }
}
