import BigInt
import Foundation
import GatewayCore
import GatewayRuntime
import Logging
import PostgresNIO

/// The review queue's tabs.
public enum QueueTab: String, Sendable, CaseIterable {
    /// Waiting in review at or below my level, and not already approved once by me.
    case needsMe = "needs_me"
    /// Everything waiting in review (the level tabs are this with a level filter).
    case pending
    /// Four-eyes reviews with their first approval, waiting for a second, different reviewer.
    case second
    /// Sent back to review by autopay because the hot wallet could not pay them.
    case hot
    /// Approved and on their way: approved, signed, broadcast.
    case paying
    /// On their way but unchanged for longer than `stuckAfter`.
    case stuck
    /// Confirmed, rejected or failed.
    case done
}

/// The filters of a queue listing (all optional; kept in the URL by the console).
public struct QueueFilter: Sendable, Equatable {
    public var tab: QueueTab = .needsMe
    public var merchant: Int64?
    /// A coin symbol (`USDT`) or chain and symbol (`tron.USDT`).
    public var coin: String = ""
    public var state: String = ""
    public var level: Int?
    /// The rule that sent the withdrawal to review (`withdrawal_decisions.rule` of its latest `review`).
    public var rule: String = ""
    /// `four_eyes`, `overdue`, `new_destination` (first payout of the merchant there) or "".
    public var flag: String = ""
    /// Whole coins, decimal text (validated by the caller: digits with at most one dot).
    public var minAmount: String = ""
    public var maxAmount: String = ""
    public var address: String = ""
    public var txid: String = ""
    public var businessID: String = ""

    public init() {}

    /// The flags a filter may name.
    public static let flags = ["four_eyes", "overdue", "new_destination"]
}

/// One row of the review queue.
public struct QueueRow: Sendable, Equatable {
    public var id: Int64
    public var merchantID: Int64
    public var merchantName: String
    public var businessID: String
    public var chain: String
    public var symbol: String
    public var decimals: Int
    public var address: String
    public var amount: BigUInt
    public var state: String
    public var stateReason: String?
    public var txHash: String?
    public var remark: String
    public var version: Int
    public var createdAt: Date
    public var updatedAt: Date
    public var level: Int?
    public var levelName: String?
    public var deadline: Date?
    public var approvalsNeeded: Int
    public var firstApprover: String?
    public var firstApprovedAt: Date?
    public var rule: String?
    public var firstPayout: Bool
    public var needsMe: Bool
}

/// Counts per tab (for the same filters, tab aside), and waiting reviews per level.
public struct QueueCounts: Sendable, Equatable {
    public var byTab: [QueueTab: Int64] = [:]
    public var byLevel: [(level: Int, name: String, count: Int64)] = []

    public static func == (a: QueueCounts, b: QueueCounts) -> Bool {
        a.byTab == b.byTab && a.byLevel.map { "\($0.level)|\($0.name)|\($0.count)" } == b.byLevel.map { "\($0.level)|\($0.name)|\($0.count)" }
    }
}

/// Who is looking at the queue: the reviewer name and the highest level they decide (0: none).
public struct QueueViewer: Sendable, Equatable {
    public var name: String
    public var level: Int
    public init(name: String, level: Int) {
        self.name = name
        self.level = level
    }
}

/// A destination's history: what was paid there before this withdrawal.
public struct DestinationHistory: Sendable, Equatable {
    /// Confirmed payouts to the address (any merchant, this coin's chain), and the last one's time.
    public var paidCount: Int64
    public var lastPaidAt: Date?
    /// Approved or paid withdrawals of this merchant to the address before: 0 means a first payout there.
    public var merchantCount: Int64
    /// Other merchants that had a withdrawal to it approved or paid.
    public var otherMerchants: [String]
    public var firstPayout: Bool { merchantCount == 0 }
}

/// A hot wallet line on the decision page: what it holds against what is approved and not yet paid.
public struct HotWalletLine: Sendable, Equatable {
    public var address: String
    /// Receipts − payments − fees by our records (base units), less what is in flight.
    public var expected: BigInt
    public var inFlight: BigInt
    /// Approved withdrawals of the coin waiting for payment (approved, or held for the hot wallet).
    public var approvedUnpaid: BigInt
}

/// One event in a withdrawal's timeline.
public struct TimelineEvent: Sendable, Equatable {
    public var at: Date
    /// decision, callback, tx, job, notification.
    public var kind: String
    public var title: String
    public var actor: String
    public var detail: String
}

/// A transaction signed for a withdrawal (replacements share its nonce).
public struct PaymentTx: Sendable, Equatable {
    public var id: Int64
    public var hash: String
    public var state: String
    public var nonce: Int64?
    public var replaces: Int64?
    public var broadcasts: Int
    public var blockHeight: Int64?
    public var lastError: String?
    public var createdAt: Date
}

/// What a withdrawal's review rules measure, read now: the look-backs behind the per-merchant and
/// per-destination daily limits and the per-hour velocity, with the same selections as the review
/// stage (approved or on their way in the last 24 h, this withdrawal excluded; any state but rejected
/// in the last hour, this one included when it is that recent).
public struct LimitUsage: Sendable, Equatable {
    /// The merchant's withdrawals of this coin (base units).
    public var merchantDay: BigUInt
    /// Withdrawals of this coin to the destination, any merchant (base units).
    public var addressDay: BigUInt
    /// Withdrawals to the destination within the last hour.
    public var addressHour: Int64
}

/// Everything the decision page shows about one withdrawal.
public struct WithdrawalDetail: Sendable {
    public var withdrawal: Withdrawal
    public var merchantName: String
    public var symbol: String
    public var decimals: Int
    public var review: ReviewStatus?
    /// The rule that sent it to review and its words.
    public var rule: String?
    public var ruleDetail: String?
    public var destination: DestinationHistory
    public var hotWallets: [HotWalletLine]
    /// Approved and paid amount of the merchant in this coin over the last 24 h (base units).
    public var merchantDay: BigUInt
    /// The review rules' look-backs for this withdrawal (the decision page sets them against the limits).
    public var usage: LimitUsage
    public var timeline: [TimelineEvent]
    public var txs: [PaymentTx]
    /// The chain's scanned height (for confirmations).
    public var scannedHeight: Int64?
    /// The last people's or rules' decision (for "already decided by X at T").
    public var lastDecision: WithdrawalDecision?
}

/// What the hot wallets of a chain hold in one coin, against what is approved and not yet paid.
public struct HotWalletSummary: Sendable, Equatable {
    public var chain: String
    public var symbol: String
    public var decimals: Int
    /// Receipts − payments − fees by our records, less what is in flight (base units, all hot wallets).
    public var available: BigInt
    /// Withdrawals of the coin approved (or held for the hot wallet) and not yet paid.
    public var approvedUnpaid: BigInt
}

/// One audit entry.
public struct AuditEntry: Sendable, Equatable {
    public var id: Int64
    public var at: Date
    public var actor: String
    public var action: String
    public var target: String
    public var detail: String
}

/// The reads behind the operator console: the review queue with its filters and counts, the decision
/// page and the audit (the pipeline page's are `PipelineQueries`). Decisions go through `Reviews.decide`.
public enum ConsoleQueries {
    static let payingStates = ["approved", "signed", "broadcast"]
    static let doneStates = ["confirmed", "rejected", "failed"]

    /// Whether `text` is a non-negative decimal amount the filters accept.
    public static func isAmount(_ text: String) -> Bool {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), text.count <= 40, !parts[0].isEmpty else { return false }
        return parts.allSatisfy { !$0.isEmpty && $0.allSatisfy { $0.isASCII && $0.isNumber } }
    }

    /// SQL text with numbered parameters, built in pieces (every value is bound, never spliced).
    struct SQL {
        var text = ""
        var binds = PostgresBindings()
        mutating func bind(_ value: some PostgresDynamicTypeEncodable) -> String {
            binds.append(value)
            return "$\(binds.count)"
        }
        var query: PostgresQuery { PostgresQuery(unsafeSQL: text, binds: binds) }
    }

    /// The filtered rows (`WITH rows AS (…)`), for a tab or for all of them (`tab` nil).
    static func rowsCTE(_ f: QueueFilter, tab: QueueTab?, viewer: QueueViewer, stuckAfter: Duration, into q: inout SQL) {
        let level = q.bind(Int32(viewer.level))
        let me = q.bind(viewer.name)
        let stuck = q.bind(Double(stuckAfter.components.seconds))
        var conditions: [String] = []
        if let m = f.merchant { conditions.append("w.merchant_id = \(q.bind(m))") }
        if !f.coin.isEmpty {
            let coin = q.bind(f.coin)
            conditions.append("(upper(k.symbol) = upper(\(coin)) OR lower(w.chain || '.' || k.symbol) = lower(\(coin)))")
        }
        if !f.state.isEmpty { conditions.append("w.state = \(q.bind(f.state))") }
        if let l = f.level { conditions.append("w.state = 'pending_review' AND coalesce(r.level, 1) = \(q.bind(Int32(l)))") }
        if !f.minAmount.isEmpty { conditions.append("w.amount >= \(q.bind(f.minAmount))::numeric * power(10::numeric, k.decimals)") }
        if !f.maxAmount.isEmpty { conditions.append("w.amount <= \(q.bind(f.maxAmount))::numeric * power(10::numeric, k.decimals)") }
        if !f.address.isEmpty { conditions.append("lower(w.address) = lower(\(q.bind(f.address)))") }
        if !f.businessID.isEmpty { conditions.append("w.business_id = \(q.bind(f.businessID))") }
        if !f.txid.isEmpty {
            let tx = q.bind(f.txid)
            conditions.append("(w.tx_hash = \(tx) OR EXISTS (SELECT 1 FROM gateway.outgoing_txs o WHERE o.purpose = 'withdrawal' AND o.ref_id = w.id AND o.tx_hash = \(tx)))")
        }
        if let tab { conditions.append(tabCondition(tab, stuck: stuck, me: me, level: level)) }
        if !f.rule.isEmpty {
            conditions.append("(SELECT d.rule FROM gateway.withdrawal_decisions d WHERE d.withdrawal_id = w.id AND d.decision = 'review' ORDER BY d.id DESC LIMIT 1) = \(q.bind(f.rule))")
        }
        switch f.flag {
        case "four_eyes": conditions.append("r.approvals_needed = 2")
        case "overdue": conditions.append("w.state = 'pending_review' AND r.deadline < now()")
        case "new_destination": conditions.append("NOT \(firstPayoutDenied)")
        default: break
        }
        q.text += """
            WITH rows AS (
              SELECT w.id, w.merchant_id, m.name AS merchant, w.business_id, w.chain, k.symbol, k.decimals, w.address, w.amount::text AS amount,
                     w.state, coalesce(w.state_reason, '') AS state_reason, coalesce(w.tx_hash, '') AS tx_hash, w.remark, w.version,
                     w.created_at, w.updated_at, r.level, r.level_name, r.deadline, coalesce(r.approvals_needed, 1) AS approvals_needed,
                     r.first_approver, r.first_approved_at,
                     (\(needsMe(me: me, level: level))) AS needs_me,
                     (w.state IN ('approved', 'signed', 'broadcast') AND w.updated_at < now() - make_interval(secs => \(stuck))) AS stuck
              FROM gateway.withdrawals w
              JOIN gateway.merchants m ON m.id = w.merchant_id
              JOIN gateway.coins k ON k.id = w.coin_id
              LEFT JOIN gateway.withdrawal_reviews r ON r.withdrawal_id = w.id
              WHERE \(conditions.isEmpty ? "true" : conditions.joined(separator: "\n AND "))
            )

            """
    }

    /// Another approved or paid withdrawal of the merchant to the same destination exists.
    static let firstPayoutDenied = """
        EXISTS (SELECT 1 FROM gateway.withdrawals p WHERE p.merchant_id = w.merchant_id AND lower(p.address) = lower(w.address)
                AND p.chain = w.chain AND p.id <> w.id AND p.state IN ('approved', 'signed', 'broadcast', 'confirmed'))
        """

    static func needsMe(me: String, level: String) -> String {
        "w.state = 'pending_review' AND coalesce(r.level, 1) <= \(level) AND \(level) > 0 AND (r.first_approver IS NULL OR r.first_approver <> \(me))"
    }

    static func tabCondition(_ tab: QueueTab, stuck: String, me: String, level: String) -> String {
        switch tab {
        case .needsMe: return "(\(needsMe(me: me, level: level)))"
        case .pending: return "w.state = 'pending_review'"
        case .second: return "w.state = 'pending_review' AND r.first_approver IS NOT NULL"
        case .hot: return "w.state = 'pending_review' AND w.state_reason = '\(Payments.hotWalletReason)'"
        case .paying: return "w.state IN ('approved', 'signed', 'broadcast')"
        case .stuck: return "w.state IN ('approved', 'signed', 'broadcast') AND w.updated_at < now() - make_interval(secs => \(stuck))"
        case .done: return "w.state IN ('confirmed', 'rejected', 'failed')"
        }
    }

    /// Queue rows for a tab and filters, "needs me" first, then by SLA deadline (pending), oldest change
    /// first (paying, stuck) or newest first (done). At most `limit` rows.
    public static func queue(_ f: QueueFilter, viewer: QueueViewer, stuckAfter: Duration, limit: Int, offset: Int = 0,
                             on c: DatabaseConnection, logger: Logger) async throws -> [QueueRow] {
        var q = SQL()
        rowsCTE(f, tab: f.tab, viewer: viewer, stuckAfter: stuckAfter, into: &q)
        let order = f.tab == .done
            ? "updated_at DESC, id DESC"
            : "needs_me DESC, (state = 'pending_review') DESC, deadline ASC NULLS LAST, updated_at ASC, id"
        // The per-row look-ups (rule, destination) only for the page's rows.
        q.text += """
            SELECT w.id, w.merchant_id, w.merchant, w.business_id, w.chain, w.symbol, w.decimals, w.address, w.amount, w.state, w.state_reason,
                   w.tx_hash, w.remark, w.version, w.created_at, w.updated_at, w.level, w.level_name, w.deadline, w.approvals_needed,
                   w.first_approver, w.first_approved_at,
                   (SELECT d.rule FROM gateway.withdrawal_decisions d WHERE d.withdrawal_id = w.id AND d.decision = 'review' ORDER BY d.id DESC LIMIT 1),
                   NOT \(firstPayoutDenied), w.needs_me
            FROM (SELECT * FROM rows ORDER BY \(order) LIMIT \(q.bind(Int32(clamping: limit))) OFFSET \(q.bind(Int32(clamping: offset)))) w
            ORDER BY \(order)
            """
        var out: [QueueRow] = []
        for try await row in try await c.query(q.query, logger: logger) {
            let (id, mid, mname, bid, chain, symbol, decimals, address, amount, state, reason, tx, remark, version) =
                try row.decode((Int64, Int64, String, String, String, String, Int32, String, String, String, String, String, String, Int32).self)
            let cols = row.makeRandomAccess()
            out.append(QueueRow(id: id, merchantID: mid, merchantName: mname, businessID: bid, chain: chain, symbol: symbol, decimals: Int(decimals),
                                address: address, amount: BigUInt(amount) ?? 0, state: state, stateReason: reason.isEmpty ? nil : reason,
                                txHash: tx.isEmpty ? nil : tx, remark: remark, version: Int(version), createdAt: try cols[14].decode(Date.self),
                                updatedAt: try cols[15].decode(Date.self), level: try cols[16].decode(Int32?.self).map(Int.init),
                                levelName: try cols[17].decode(String?.self), deadline: try cols[18].decode(Date?.self),
                                approvalsNeeded: Int(try cols[19].decode(Int32.self)), firstApprover: try cols[20].decode(String?.self),
                                firstApprovedAt: try cols[21].decode(Date?.self), rule: try cols[22].decode(String?.self),
                                firstPayout: try cols[23].decode(Bool.self), needsMe: try cols[24].decode(Bool.self)))
        }
        return out
    }

    /// How many rows each tab holds for these filters (the tab itself ignored), and reviews waiting per level.
    public static func counts(_ f: QueueFilter, viewer: QueueViewer, stuckAfter: Duration, on c: DatabaseConnection, logger: Logger) async throws
        -> QueueCounts
    {
        var q = SQL()
        rowsCTE(f, tab: nil, viewer: viewer, stuckAfter: stuckAfter, into: &q)
        q.text += """
            SELECT count(*) FILTER (WHERE needs_me), count(*) FILTER (WHERE state = 'pending_review'),
                   count(*) FILTER (WHERE state = 'pending_review' AND first_approver IS NOT NULL),
                   count(*) FILTER (WHERE state = 'pending_review' AND state_reason = \(q.bind(Payments.hotWalletReason))),
                   count(*) FILTER (WHERE state IN ('approved', 'signed', 'broadcast')), count(*) FILTER (WHERE stuck),
                   count(*) FILTER (WHERE state IN ('confirmed', 'rejected', 'failed'))
            FROM rows
            """
        var counts = QueueCounts()
        for try await r in try await c.query(q.query, logger: logger).decode((Int64, Int64, Int64, Int64, Int64, Int64, Int64).self) {
            counts.byTab = [.needsMe: r.0, .pending: r.1, .second: r.2, .hot: r.3, .paying: r.4, .stuck: r.5, .done: r.6]
        }
        var g = SQL()
        var noLevel = f
        noLevel.level = nil
        rowsCTE(noLevel, tab: .pending, viewer: viewer, stuckAfter: stuckAfter, into: &g)
        g.text += "SELECT coalesce(level, 1), coalesce(level_name, 'level 1'), count(*) FROM rows GROUP BY 1, 2 ORDER BY 1"
        for try await (level, name, n) in try await c.query(g.query, logger: logger).decode((Int32, String, Int64).self) {
            counts.byLevel.append((Int(level), name, n))
        }
        return counts
    }

    /// The decision page's facts about one withdrawal; nil when there is none.
    public static func detail(_ id: Int64, on c: DatabaseConnection, logger: Logger) async throws -> WithdrawalDetail? {
        guard let w = try await Withdrawals.find(id, on: c, logger: logger) else { return nil }
        var merchantName = "", symbol = "", decimals = 0
        for try await (m, s, d) in try await c.query("""
            SELECT m.name, k.symbol, k.decimals FROM gateway.merchants m, gateway.coins k WHERE m.id = \(w.merchantID) AND k.id = \(w.coinID)
            """, logger: logger).decode((String, String, Int32).self) {
            (merchantName, symbol, decimals) = (m, s, Int(d))
        }
        let review = try await Reviews.status([id], on: c, logger: logger)[id]
        let history = try await Reviews.history(id, on: c, logger: logger)
        let sentBy = history.last { $0.decision == "review" }

        var destination = DestinationHistory(paidCount: 0, lastPaidAt: nil, merchantCount: 0, otherMerchants: [])
        for try await (paid, last, mine) in try await c.query("""
            SELECT count(*) FILTER (WHERE state = 'confirmed'), max(updated_at) FILTER (WHERE state = 'confirmed'),
                   count(*) FILTER (WHERE merchant_id = \(w.merchantID) AND state IN ('approved', 'signed', 'broadcast', 'confirmed'))
            FROM gateway.withdrawals WHERE lower(address) = lower(\(w.address)) AND chain = \(w.chain) AND id <> \(id)
            """, logger: logger).decode((Int64, Date?, Int64).self) {
            destination.paidCount = paid
            destination.lastPaidAt = last
            destination.merchantCount = mine
        }
        for try await name in try await c.query("""
            SELECT DISTINCT m.name FROM gateway.withdrawals p JOIN gateway.merchants m ON m.id = p.merchant_id
            WHERE lower(p.address) = lower(\(w.address)) AND p.chain = \(w.chain) AND p.merchant_id <> \(w.merchantID)
              AND p.state IN ('approved', 'signed', 'broadcast', 'confirmed')
            ORDER BY m.name LIMIT 20
            """, logger: logger).decode(String.self) {
            destination.otherMerchants.append(name)
        }

        var unpaid: BigInt = 0
        for try await text in try await c.query("""
            SELECT coalesce(sum(amount), 0)::text FROM gateway.withdrawals
            WHERE merchant_id = \(w.merchantID) AND coin_id = \(w.coinID)
              AND (state = 'approved' OR (state = 'pending_review' AND state_reason = \(Payments.hotWalletReason)))
            """, logger: logger).decode(String.self) {
            unpaid = BigInt(text) ?? 0
        }
        var hot: [HotWalletLine] = []
        for try await (address, expected, inFlight) in try await c.query("""
            SELECT hot_address, expected::text, in_flight::text FROM monitor.hot_wallets
            WHERE merchant_id = \(w.merchantID) AND chain = \(w.chain) AND coin_id = \(w.coinID)
            """, logger: logger).decode((String, String, String).self) {
            hot.append(HotWalletLine(address: address, expected: BigInt(expected) ?? 0, inFlight: BigInt(inFlight) ?? 0, approvedUnpaid: unpaid))
        }
        if hot.isEmpty { hot.append(HotWalletLine(address: "", expected: 0, inFlight: 0, approvedUnpaid: unpaid)) }

        var day: BigUInt = 0
        for try await text in try await c.query("""
            SELECT coalesce(sum(amount), 0)::text FROM gateway.withdrawals
            WHERE merchant_id = \(w.merchantID) AND coin_id = \(w.coinID) AND created_at > now() - interval '1 day'
              AND state IN ('approved', 'signed', 'broadcast', 'confirmed')
            """, logger: logger).decode(String.self) {
            day = BigUInt(text) ?? 0
        }

        // The review stage's look-backs (ReviewStage.apply): the same states and windows.
        let notApproved = ["received", "pending_review", "rejected", "failed"]
        var usage = LimitUsage(merchantDay: 0, addressDay: 0, addressHour: 0)
        for try await (m, a, n) in try await c.query("""
            SELECT (SELECT coalesce(sum(amount), 0) FROM gateway.withdrawals
                    WHERE merchant_id = \(w.merchantID) AND coin_id = \(w.coinID) AND created_at > now() - interval '24 hours' AND id <> \(id)
                      AND state <> ALL(\(notApproved)::text[]))::text,
                   (SELECT coalesce(sum(amount), 0) FROM gateway.withdrawals
                    WHERE lower(address) = lower(\(w.address)) AND (address = \(w.address) OR \(w.address) ILIKE '0x%') AND coin_id = \(w.coinID)
                      AND created_at > now() - interval '24 hours' AND id <> \(id) AND state <> ALL(\(notApproved)::text[]))::text,
                   (SELECT count(*) FROM gateway.withdrawals
                    WHERE lower(address) = lower(\(w.address)) AND (address = \(w.address) OR \(w.address) ILIKE '0x%')
                      AND created_at > now() - interval '1 hour' AND state <> 'rejected')
            """, logger: logger).decode((String, String, Int64).self) {
            usage = LimitUsage(merchantDay: BigUInt(m) ?? 0, addressDay: BigUInt(a) ?? 0, addressHour: n)
        }

        var txs: [PaymentTx] = []
        for try await row in try await c.query("""
            SELECT id, tx_hash, state, nonce, replaces, broadcasts, block_height, last_error, created_at FROM gateway.outgoing_txs
            WHERE purpose = 'withdrawal' AND ref_id = \(id) ORDER BY id
            """, logger: logger) {
            let r = try row.decode((Int64, String, String, Int64?, Int64?, Int32, Int64?, String?, Date).self)
            txs.append(PaymentTx(id: r.0, hash: r.1, state: r.2, nonce: r.3, replaces: r.4, broadcasts: Int(r.5), blockHeight: r.6, lastError: r.7,
                                 createdAt: r.8))
        }
        var scanned: Int64?
        for try await h in try await c.query("SELECT scanned_height FROM gateway.chain_scanners WHERE chain = \(w.chain)", logger: logger)
            .decode(Int64?.self) { scanned = h }

        var timeline = history.map {
            TimelineEvent(at: $0.at, kind: "decision", title: $0.decision, actor: $0.actor, detail: $0.rule + ($0.detail.isEmpty ? "" : ": \($0.detail)"))
        }
        for try await (at, status, state, attempts, error) in try await c.query("""
            SELECT created_at, status, state, attempts, coalesce(last_error, '') FROM gateway.callbacks
            WHERE trade_type = 2 AND trade_id = \(id) ORDER BY id
            """, logger: logger).decode((Date, Int16, String, Int32, String).self) {
            timeline.append(TimelineEvent(at: at, kind: "callback", title: "callback status \(status)", actor: "callback-worker",
                                          detail: "\(state), \(attempts) attempt(s)\(error.isEmpty ? "" : ", last error: \(error)")"))
        }
        for tx in txs {
            timeline.append(TimelineEvent(at: tx.createdAt, kind: "tx", title: tx.replaces == nil ? "signed" : "signed (replacement)", actor: "autopay-worker",
                                          detail: "\(tx.hash) \(tx.state)\(tx.nonce.map { ", nonce \($0)" } ?? "")"))
        }
        for try await (at, stage, kind, state, attempt, error) in try await c.query("""
            SELECT created_at, stage, kind, state, attempt, coalesce(last_error, '') FROM gateway.jobs WHERE ref = \("withdrawal:\(id)") ORDER BY id
            """, logger: logger).decode((Date, String, String, String, Int32, String).self) {
            timeline.append(TimelineEvent(at: at, kind: "job", title: "\(stage) \(kind)", actor: stage,
                                          detail: "\(state), attempt \(attempt)\(error.isEmpty ? "" : ", last error: \(error)")"))
        }
        // Notifications stay in their own table after their job is gone (gateway.operator_notifications).
        for try await (at, text) in try await c.query("""
            SELECT at, text FROM gateway.operator_notifications WHERE ref = \("withdrawal:\(id)") ORDER BY id
            """, logger: logger).decode((Date, String).self) {
            timeline.append(TimelineEvent(at: at, kind: "notification", title: "operators notified", actor: "notifications", detail: text))
        }
        timeline.sort { $0.at < $1.at }
        return WithdrawalDetail(withdrawal: w, merchantName: merchantName, symbol: symbol, decimals: decimals, review: review, rule: sentBy?.rule,
                                ruleDetail: sentBy?.detail, destination: destination, hotWallets: hot, merchantDay: day, usage: usage, timeline: timeline, txs: txs,
                                scannedHeight: scanned, lastDecision: history.last)
    }

    /// Per chain and coin: the hot wallets' holding against approved-unpaid withdrawals (the queue's header).
    public static func hotWallets(on c: DatabaseConnection, logger: Logger) async throws -> [HotWalletSummary] {
        var out: [HotWalletSummary] = []
        for try await (chain, symbol, decimals, available, unpaid) in try await c.query("""
            SELECT h.chain, h.symbol, h.decimals, sum(h.expected - h.in_flight)::text,
                   (SELECT coalesce(sum(w.amount), 0) FROM gateway.withdrawals w
                    WHERE w.coin_id = h.coin_id AND (w.state = 'approved' OR (w.state = 'pending_review' AND w.state_reason = \(Payments.hotWalletReason))))::text
            FROM monitor.hot_wallets h GROUP BY h.chain, h.symbol, h.decimals, h.coin_id ORDER BY 1, 2
            """, logger: logger).decode((String, String, Int32, String, String).self) {
            out.append(HotWalletSummary(chain: chain, symbol: symbol, decimals: Int(decimals), available: BigInt(available) ?? 0,
                                        approvedUnpaid: BigInt(unpaid) ?? 0))
        }
        return out
    }

    /// The latest decision on a withdrawal (who decided it, when).
    public static func lastDecision(_ id: Int64, on c: DatabaseConnection, logger: Logger) async throws -> WithdrawalDecision? {
        try await Reviews.history(id, on: c, logger: logger).last
    }

    /// Audit entries, newest first, filtered by actor, action and target (substring, case-insensitive).
    public static func audit(actor: String, action: String, target: String, limit: Int, on c: DatabaseConnection, logger: Logger) async throws -> [AuditEntry] {
        var out: [AuditEntry] = []
        for try await (id, at, a, act, t, detail) in try await c.query("""
            SELECT id, at, actor, action, target, detail::text FROM gateway.audit_log
            WHERE (\(actor)::text = '' OR strpos(lower(actor), lower(\(actor))) > 0)
              AND (\(action)::text = '' OR strpos(lower(action), lower(\(action))) > 0)
              AND (\(target)::text = '' OR strpos(lower(target), lower(\(target))) > 0)
            ORDER BY id DESC LIMIT \(Int32(clamping: limit))
            """, logger: logger).decode((Int64, Date, String, String, String, String).self) {
            out.append(AuditEntry(id: id, at: at, actor: a, action: act, target: t, detail: detail))
        }
        return out
    }
}
