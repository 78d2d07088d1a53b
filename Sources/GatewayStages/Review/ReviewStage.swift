import BigInt
import GatewayCore
import GatewayRuntime
import GatewayServices
import Logging
import PostgresNIO

/// The review stage's job handlers.
public enum ReviewStage {
    /// Handlers by job kind: a new withdrawal (`review`), a review past its level's SLA (`escalate`).
    public static func handlers(_ env: StageRunner.Environment) throws -> [String: any JobHandler] {
        [Withdrawals.reviewJobKind: NewWithdrawalReview(rules: env.config.review, notifyEnteredReview: env.config.notifications.enteredReview),
         Reviews.escalateJobKind: ReviewEscalation(levels: env.config.review.levels)]
    }
}

/// Decides where a new withdrawal goes, in the job's transaction, recording the first rule that decided:
/// 1. a destination on `review.deny` is rejected (callback 2);
/// 2. with `review.allow` set, a destination not on it goes to people (`allow_list`);
/// 3. a merchant without automatic payment has its withdrawals decided by people (`merchant_setting`) —
///    `/mch/withdraw` and `/mch/withdraw/proxypay` alike: the merchant's automatic payment is what allows
///    paying without people, and proxypay is paid straight away only when it is on and the rules pass;
/// 4. above `four_eyes_above`, people decide, two of them (`four_eyes`);
/// 5. above the coin's `auto_approve_up_to`, or with no limit for the coin, people decide (`auto_approve_up_to`);
/// 6. over the merchant's or the destination's daily limit (`daily_limit_per_merchant`, `daily_limit_per_address`);
/// 7. more than `max_per_address_per_hour` withdrawals to the destination within the hour (`velocity`);
/// 8. the merchant's first payout to the destination, when `new_destination_to_people` (`new_destination`);
/// 9. otherwise it is approved (reserved, callback 1, payment queued) — unless the balance is short, then people decide (`balance`).
/// People see it as `pending_review` with the reason at review level 1, the merchant gets callback 0, and
/// operators a notification (`notifications.entered_review`, linking to its decision page).
struct NewWithdrawalReview: JobHandler {
    let rules: ReviewRulesConfig
    var notifyEnteredReview = true

    /// States of withdrawals that were approved or paid (or are being paid): what the look-back rules count.
    static let notApprovedStates = ["received", "pending_review", "rejected", "failed"]

    struct Row {
        var state: String, merchant: Int64, coinID: Int32, address: String, amount: BigUInt, symbol: String, decimals: Int, auto: Bool, proxypay: Bool
        var chain = ""
    }

    func handle(_ ctx: JobContext) async throws -> JobOutcome {
        guard let ref = ctx.job.ref, ref.hasPrefix("withdrawal:"), let id = Int64(ref.dropFirst("withdrawal:".count)) else {
            throw PermanentJobError("job ref \(ctx.job.ref ?? "nil") is not withdrawal:<id>")
        }
        let logger = ctx.logger
        let rules = self.rules, notify = notifyEnteredReview
        let outcome = try await ctx.database.transaction { c -> String? in
            var row: Row?
            for try await r in try await c.query("""
                SELECT w.state, w.merchant_id, w.coin_id, w.address, w.amount::text, k.symbol, k.decimals, m.auto_payment, w.proxypay, w.chain
                FROM gateway.withdrawals w JOIN gateway.coins k ON k.id = w.coin_id JOIN gateway.merchants m ON m.id = w.merchant_id
                WHERE w.id = \(id) FOR UPDATE OF w
                """, logger: logger).decode((String, Int64, Int32, String, String, String, Int32, Bool, Bool, String).self) {
                row = Row(state: r.0, merchant: r.1, coinID: r.2, address: r.3, amount: BigUInt(r.4) ?? 0, symbol: r.5, decimals: Int(r.6), auto: r.7,
                          proxypay: r.8, chain: r.9)
            }
            guard let w = row, w.state == "received" else {
                try await ctx.complete(in: c)
                return nil
            }
            let verdict = try await Self.apply(rules, to: id, w, notify: notify, on: c, logger: logger)
            try await ctx.complete(in: c)
            return verdict
        }
        if let outcome { logger.info("withdrawal reviewed by the rules", metadata: ["withdrawal.id": "\(id)", "outcome": "\(outcome)"]) }
        return .completedInTransaction
    }

    /// An amount rule's limit in base units; nil when the rule is not set for the coin (or cannot be
    /// read with the coin's decimals, which config validation leaves only for too many decimals).
    static func units(_ text: String?, decimals: Int) -> BigUInt? {
        guard let text else { return nil }
        if let v = try? CoinAmount.parse(text, decimals: decimals) { return v }
        return text.allSatisfy { $0 == "0" || $0 == "." } ? 0 : nil
    }

    static func apply(_ rules: ReviewRulesConfig, to id: Int64, _ w: Row, notify: Bool = true, on c: DatabaseConnection, logger: Logger) async throws -> String {
        let endpoint = w.proxypay ? "proxypay" : "withdraw"
        let fourEyesLimit = units(rules.amountRule(\.fourEyesAbove, symbol: w.symbol, merchant: w.merchant), decimals: w.decimals)
        let fourEyes = fourEyesLimit.map { w.amount > $0 } ?? false
        func amountText(_ units: BigUInt) -> String { "\(CoinAmount.format(units, decimals: w.decimals)) \(w.symbol)" }
        func toPeople(_ rule: String, _ reason: String) async throws -> String {
            let sent = try await Withdrawals.sendToReview(id, reason: reason, rule: rule, levels: rules.levels, approvalsNeeded: fourEyes ? 2 : 1,
                                                          on: c, logger: logger)
            if sent != nil && notify {
                let level = rules.levels.first ?? ReviewRulesConfig.defaultLevels[0]
                try await OperatorNotifications.enqueue(
                    "Withdrawal \(id) of merchant \(w.merchant): \(amountText(w.amount)) on \(w.chain) to \(w.address) waits for review at "
                        + "level 1 (\(level.name)), SLA \(DurationText.format(level.sla))\(fourEyes ? ", two reviewers" : ""): \(reason) "
                        + "(rule \(rule)). gatewayctl review show \(id)",
                    ref: "withdrawal:\(id)", on: c, logger: logger)
            }
            return "to people (\(rule))"
        }

        if rules.deny.contains(where: { same($0, w.address) }) {
            _ = try await Withdrawals.decide(id, approve: false, reason: "destination is on the deny list", expectedVersion: nil,
                                             actor: "rule:deny", rule: "deny", on: c, logger: logger)
            return "rejected (deny list)"
        }
        if !rules.allow.isEmpty, !rules.allow.contains(where: { same($0, w.address) }) {
            return try await toPeople("allow_list", "destination is not on the allow list")
        }
        if !w.auto {
            return try await toPeople("merchant_setting", "the merchant's withdrawals are approved by people (automatic payment off)")
        }
        if fourEyes, let limit = fourEyesLimit {
            return try await toPeople("four_eyes", "above \(amountText(limit)): two reviewers must approve")
        }
        let autoText = rules.limit(symbol: w.symbol, merchant: w.merchant)
        guard let autoLimit = units(autoText, decimals: w.decimals), w.amount <= autoLimit else {
            return try await toPeople("auto_approve_up_to", autoText.map { "above the automatic approval limit of \($0) \(w.symbol)" }
                                          ?? "no automatic approval limit for \(w.symbol)")
        }
        let merchantDaily = units(rules.amountRule(\.dailyLimitPerMerchant, symbol: w.symbol, merchant: w.merchant), decimals: w.decimals)
        let addressDaily = units(rules.amountRule(\.dailyLimitPerAddress, symbol: w.symbol, merchant: w.merchant), decimals: w.decimals)
        let velocity = rules.maxPerAddressPerHour(merchant: w.merchant)
        if merchantDaily != nil || addressDaily != nil || velocity != nil {
            // Two withdrawals reviewed at once must not both fit under a limit only one of them fits:
            // the look-backs of a merchant's coin and of a destination are taken one at a time.
            try await c.query("SELECT pg_advisory_xact_lock(hashtextextended(\("review:merchant:\(w.merchant):\(w.coinID)"), 0))", logger: logger)
            try await c.query("SELECT pg_advisory_xact_lock(hashtextextended(\("review:address:" + w.address.lowercased()), 0))", logger: logger)
        }
        if let limit = merchantDaily {
            var sum = BigUInt(0)
            for try await t in try await c.query("""
                SELECT coalesce(sum(amount), 0)::text FROM gateway.withdrawals
                WHERE merchant_id = \(w.merchant) AND coin_id = \(w.coinID) AND created_at > now() - interval '24 hours' AND id <> \(id)
                  AND state <> ALL(\(notApprovedStates)::text[])
                """, logger: logger).decode(String.self) { sum = BigUInt(t) ?? 0 }
            if sum + w.amount > limit {
                return try await toPeople("daily_limit_per_merchant",
                                          "the merchant's \(w.symbol) withdrawals in 24 h would reach \(amountText(sum + w.amount)), over its daily limit of \(amountText(limit))")
            }
        }
        if let limit = addressDaily {
            var sum = BigUInt(0)
            for try await t in try await c.query("""
                SELECT coalesce(sum(amount), 0)::text FROM gateway.withdrawals
                WHERE lower(address) = lower(\(w.address)) AND (address = \(w.address) OR \(w.address) ILIKE '0x%') AND coin_id = \(w.coinID)
                  AND created_at > now() - interval '24 hours' AND id <> \(id) AND state <> ALL(\(notApprovedStates)::text[])
                """, logger: logger).decode(String.self) { sum = BigUInt(t) ?? 0 }
            if sum + w.amount > limit {
                return try await toPeople("daily_limit_per_address",
                                          "\(w.symbol) withdrawals to this destination in 24 h would reach \(amountText(sum + w.amount)), over the daily limit of \(amountText(limit))")
            }
        }
        if let maxPerHour = velocity {
            var n: Int64 = 0
            for try await k in try await c.query("""
                SELECT count(*) FROM gateway.withdrawals
                WHERE lower(address) = lower(\(w.address)) AND (address = \(w.address) OR \(w.address) ILIKE '0x%')
                  AND created_at > now() - interval '1 hour' AND state <> 'rejected'
                """, logger: logger).decode(Int64.self) { n = k }
            if n > Int64(maxPerHour) {
                return try await toPeople("velocity", "\(n) withdrawals to this destination within an hour, more than \(maxPerHour)")
            }
        }
        if rules.newDestinationToPeople(merchant: w.merchant) {
            var seen = false
            for try await s in try await c.query("""
                SELECT EXISTS (SELECT 1 FROM gateway.withdrawals
                    WHERE merchant_id = \(w.merchant) AND lower(address) = lower(\(w.address)) AND (address = \(w.address) OR \(w.address) ILIKE '0x%')
                      AND id <> \(id) AND state <> ALL(\(notApprovedStates)::text[]))
                """, logger: logger).decode(Bool.self) { seen = s }
            if !seen {
                return try await toPeople("new_destination", "the merchant's first payout to this destination")
            }
        }
        do {
            _ = try await Withdrawals.decide(id, approve: true, reason: nil, expectedVersion: nil, actor: "rule:auto_approve_up_to",
                                             rule: "auto_approve_up_to", on: c, logger: logger)
            return "approved by rule (\(endpoint), up to \(autoText ?? "") \(w.symbol))"
        } catch let e as ServiceError {
            return try await toPeople("balance", "could not be approved automatically: \(e.description)")
        }
    }

    /// Addresses compare exactly, except EVM hex which compares without case.
    static func same(_ a: String, _ b: String) -> Bool {
        a.hasPrefix("0x") || a.hasPrefix("0X") ? a.lowercased() == b.lowercased() : a == b
    }
}
