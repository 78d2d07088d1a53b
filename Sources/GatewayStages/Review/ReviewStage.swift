import GatewayCore
import GatewayRuntime
import GatewayServices
import Logging
import PostgresNIO

/// The review stage's job handlers.
public enum ReviewStage {
    /// Handlers by job kind: a new withdrawal (`review`).
    public static func handlers(_ env: StageRunner.Environment) throws -> [String: any JobHandler] {
        [Withdrawals.reviewJobKind: NewWithdrawalReview()]
    }
}

/// Decides where a new withdrawal goes. Until the review rules land (auto-approval limits, daily
/// limits, deny lists, velocity, four eyes), every withdrawal goes to people: `pending_review`,
/// callback 0, in the same transaction as the job's completion.
struct NewWithdrawalReview: JobHandler {
    static let reason = "manual review: no automatic rule approves withdrawals yet"

    func handle(_ ctx: JobContext) async throws -> JobOutcome {
        guard let ref = ctx.job.ref, ref.hasPrefix("withdrawal:"), let id = Int64(ref.dropFirst("withdrawal:".count)) else {
            throw PermanentJobError("job ref \(ctx.job.ref ?? "nil") is not withdrawal:<id>")
        }
        let logger = ctx.logger
        let moved = try await ctx.database.transaction { c in
            let w = try await Withdrawals.sendToReview(id, reason: Self.reason, on: c, logger: logger)
            try await ctx.complete(in: c)
            return w != nil
        }
        if moved { logger.info("withdrawal waits for review", metadata: ["withdrawal.id": "\(id)"]) }
        return .completedInTransaction
    }
}
