import BigInt
import GatewayCore
import GatewayRuntime
import GatewayServices
import Logging
import PostgresNIO

/// The review stage's job handlers.
public enum ReviewStage {
    /// Handlers by job kind: a new withdrawal (`review`).
    public static func handlers(_ env: StageRunner.Environment) throws -> [String: any JobHandler] {
        [Withdrawals.reviewJobKind: NewWithdrawalReview(rules: env.config.review)]
    }
}

/// Decides where a new withdrawal goes, in the job's transaction, recording the rule that decided:
/// 1. a destination on `review.deny` is rejected (callback 2);
/// 2. a merchant without automatic payment has its withdrawals decided by people;
/// 3. above the coin's `review.auto_approve_up_to` (per merchant or global), or with no limit for the coin, people decide;
/// 4. otherwise it is approved (reserved, callback 1, payment queued) — unless the balance is short, then people decide.
/// People see it as `pending_review` with the reason, and the merchant gets callback 0.
struct NewWithdrawalReview: JobHandler {
    let rules: ReviewRulesConfig

    func handle(_ ctx: JobContext) async throws -> JobOutcome {
        guard let ref = ctx.job.ref, ref.hasPrefix("withdrawal:"), let id = Int64(ref.dropFirst("withdrawal:".count)) else {
            throw PermanentJobError("job ref \(ctx.job.ref ?? "nil") is not withdrawal:<id>")
        }
        let logger = ctx.logger
        let rules = self.rules
        let outcome = try await ctx.database.transaction { c -> String? in
            var row: (state: String, merchant: Int64, address: String, amount: String, symbol: String, decimals: Int32, auto: Bool)?
            for try await r in try await c.query("""
                SELECT w.state, w.merchant_id, w.address, w.amount::text, k.symbol, k.decimals, m.auto_payment
                FROM gateway.withdrawals w JOIN gateway.coins k ON k.id = w.coin_id JOIN gateway.merchants m ON m.id = w.merchant_id
                WHERE w.id = \(id) FOR UPDATE OF w
                """, logger: logger).decode((String, Int64, String, String, String, Int32, Bool).self) {
                row = (r.0, r.1, r.2, r.3, r.4, r.5, r.6)
            }
            guard let w = row, w.state == "received" else {
                try await ctx.complete(in: c)
                return nil
            }
            let verdict: String
            if rules.deny.contains(where: { Self.same($0, w.address) }) {
                _ = try await Withdrawals.decide(id, approve: false, reason: "destination is on the deny list", expectedVersion: nil,
                                                 actor: "rule:deny", rule: "deny", on: c, logger: logger)
                verdict = "rejected (deny list)"
            } else if !w.auto {
                _ = try await Withdrawals.sendToReview(id, reason: "the merchant's withdrawals are approved by people (automatic payment off)",
                                                       rule: "merchant_setting", on: c, logger: logger)
                verdict = "to people (merchant setting)"
            } else if let limitText = rules.limit(symbol: w.symbol, merchant: w.merchant),
                      let limit = try? CoinAmount.parse(limitText, decimals: Int(w.decimals)), let amount = BigUInt(w.amount), amount <= limit {
                do {
                    _ = try await Withdrawals.decide(id, approve: true, reason: nil, expectedVersion: nil, actor: "rule:auto_approve_up_to",
                                                     rule: "auto_approve_up_to", on: c, logger: logger)
                    verdict = "approved by rule (up to \(limitText) \(w.symbol))"
                } catch let e as ServiceError {
                    _ = try await Withdrawals.sendToReview(id, reason: "could not be approved automatically: \(e.description)", rule: "balance",
                                                           on: c, logger: logger)
                    verdict = "to people (balance)"
                }
            } else {
                let limit = rules.limit(symbol: w.symbol, merchant: w.merchant)
                _ = try await Withdrawals.sendToReview(
                    id, reason: limit.map { "above the automatic approval limit of \($0) \(w.symbol)" } ?? "no automatic approval limit for \(w.symbol)",
                    rule: "auto_approve_up_to", on: c, logger: logger)
                verdict = "to people (amount)"
            }
            try await ctx.complete(in: c)
            return verdict
        }
        if let outcome { logger.info("withdrawal reviewed by the rules", metadata: ["withdrawal.id": "\(id)", "outcome": "\(outcome)"]) }
        return .completedInTransaction
    }

    /// Addresses compare exactly, except EVM hex which compares without case.
    static func same(_ a: String, _ b: String) -> Bool {
        a.hasPrefix("0x") || a.hasPrefix("0X") ? a.lowercased() == b.lowercased() : a == b
    }
}
