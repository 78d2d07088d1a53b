import BigInt
import Foundation
import GatewayCore
import GatewayRuntime
import GatewayServices
import Logging
import PostgresNIO

/// Escalates a review whose level's SLA passed: a job per review and level, due at the deadline
/// (`Reviews.scheduleEscalation`), not a periodic scan. When it runs and the withdrawal still waits
/// at that level, the review moves up a level with the new level's SLA, the escalation is recorded
/// (decision `escalate`, rule `escalation`, and the audit log) and operators are notified; the job
/// of the new level is queued at its deadline. At the top level the notification repeats every SLA
/// (rule `sla_reminder`). A review decided meanwhile, or already at another level, is left alone.
struct ReviewEscalation: JobHandler {
    let levels: [ReviewLevel]

    enum Result {
        case nothing(String)
        case notYet(Duration)
        case escalated(String)
    }

    func handle(_ ctx: JobContext) async throws -> JobOutcome {
        guard let ref = ctx.job.ref, ref.hasPrefix("withdrawal:"), let id = Int64(ref.dropFirst("withdrawal:".count)) else {
            throw PermanentJobError("job ref \(ctx.job.ref ?? "nil") is not withdrawal:<id>")
        }
        guard case .number(let n)? = (try? JSONValue.parse(ctx.job.payload))?["level"], let jobLevel = Int(n), jobLevel >= 1 else {
            throw PermanentJobError("escalation job \(ctx.job.id) has no level in its payload")
        }
        let logger = ctx.logger
        let levels = self.levels.isEmpty ? ReviewRulesConfig.defaultLevels : self.levels
        let result = try await ctx.database.transaction { c -> Result in
            var row: (state: String, merchant: Int64, merchantName: String, amount: String, symbol: String, decimals: Int32, chain: String,
                      level: Int32, levelName: String, remaining: Double, reminders: Int32, sla: Double)?
            for try await r in try await c.query("""
                SELECT w.state, w.merchant_id, m.name, w.amount::text, k.symbol, k.decimals, w.chain, r.level, r.level_name,
                       extract(epoch FROM r.deadline - now())::float8, r.reminders, extract(epoch FROM r.sla)::float8
                FROM gateway.withdrawals w JOIN gateway.withdrawal_reviews r ON r.withdrawal_id = w.id
                JOIN gateway.merchants m ON m.id = w.merchant_id JOIN gateway.coins k ON k.id = w.coin_id
                WHERE w.id = \(id) FOR UPDATE OF w, r
                """, logger: logger).decode((String, Int64, String, String, String, Int32, String, Int32, String, Double, Int32, Double).self) {
                row = (r.0, r.1, r.2, r.3, r.4, r.5, r.6, r.7, r.8, r.9, r.10, r.11)
            }
            guard let r = row, r.state == "pending_review", Int(r.level) == jobLevel else {
                try await ctx.complete(in: c)
                return .nothing(row.map { "withdrawal is \($0.state) at level \($0.level)" } ?? "no review")
            }
            // Early (a review that came back to review restarted its clock): wait for the deadline.
            if r.remaining > 0 { return .notYet(.milliseconds(Int64((r.remaining * 1000).rounded(.up)))) }

            let amount = "\(CoinAmount.format(BigUInt(r.amount) ?? 0, decimals: Int(r.decimals))) \(r.symbol)"
            let what = "Withdrawal \(id) of merchant \(r.merchant) (\(r.merchantName)): \(amount) on \(r.chain)"
            let current = "level \(r.level) (\(r.levelName))"
            let passed = DurationText.format(.milliseconds(Int64((r.sla * 1000).rounded())))
            let next = Int(r.level) + 1
            let text: String, rule: String, detail: String, newLevel: Int, target: ReviewLevel
            if next <= levels.count {
                newLevel = next
                target = levels[next - 1]
                rule = "escalation"
                detail = "SLA \(passed) of \(current) passed: escalated to level \(next) (\(target.name))"
                text = "\(what) waited past the \(passed) SLA of review \(current); escalated to level \(next) (\(target.name)), "
                    + "SLA \(DurationText.format(target.sla)). gatewayctl review show \(id)"
            } else {
                newLevel = Int(r.level)
                target = levels[min(Int(r.level), levels.count) - 1]
                rule = "sla_reminder"
                detail = "still undecided at \(current), the top level: reminder \(r.reminders + 1)"
                text = "\(what) is still undecided at review \(current), the top level, past its \(passed) SLA "
                    + "(reminder \(r.reminders + 1)). gatewayctl review show \(id)"
            }
            var deadline: Date?
            for try await d in try await c.query("""
                UPDATE gateway.withdrawal_reviews
                SET level = \(Int32(newLevel)), level_name = \(target.name), sla = make_interval(secs => \(Self.seconds(target.sla))),
                    deadline = now() + make_interval(secs => \(Self.seconds(target.sla))),
                    level_since = CASE WHEN level = \(Int32(newLevel)) THEN level_since ELSE now() END,
                    reminders = CASE WHEN level = \(Int32(newLevel)) THEN reminders + 1 ELSE reminders END
                WHERE withdrawal_id = \(id) RETURNING deadline
                """, logger: logger).decode(Date.self) { deadline = d }
            try await Withdrawals.recordDecision(id, "escalate", rule: rule, actor: "review-worker", detail: detail, on: c, logger: logger)
            try await Audit.record(actor: "review-worker", action: rule == "escalation" ? "withdrawal.escalate" : "withdrawal.sla_reminder",
                                   target: "withdrawal:\(id)", detail: ["from": .int(r.level), "to": .int(newLevel), "level": .string(target.name)],
                                   on: c, logger: logger)
            try await OperatorNotifications.enqueue(text, ref: "withdrawal:\(id)", on: c, logger: logger)
            // The job leaves the queue before the next one takes its key (the same key at the top level).
            try await ctx.complete(in: c)
            if let deadline { try await Reviews.scheduleEscalation(id, level: newLevel, at: deadline, on: c, logger: logger) }
            return .escalated(detail)
        }
        switch result {
        case .nothing(let why):
            logger.debug("escalation not needed", metadata: ["withdrawal.id": "\(id)", "why": "\(why)"])
            return .completedInTransaction
        case .notYet(let wait):
            return .snooze(wait)
        case .escalated(let detail):
            logger.notice("review escalated", metadata: ["withdrawal.id": "\(id)", "escalation": "\(detail)"])
            return .completedInTransaction
        }
    }

    static func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }
}
