import BigInt
import Foundation
import GatewayCore
import GatewayRuntime
import Logging
import PostgresNIO

/// Someone who decides reviews: an admin token's name and the highest review level they may decide.
/// The same person deciding through gatewayctl (`--as NAME`) and the admin API (their token) is one
/// reviewer, so four eyes compare names, not channels.
public struct Reviewer: Sendable, Equatable {
    public var name: String
    public var level: Int

    public init(name: String, level: Int) {
        self.name = name
        self.level = level
    }
}

/// Where a withdrawal waiting for people stands: its level, the deadline of that level, four eyes.
public struct ReviewStatus: Sendable, Equatable {
    public var withdrawalID: Int64
    public var level: Int
    public var levelName: String
    public var sla: Duration
    public var deadline: Date
    public var enteredAt: Date
    public var levelSince: Date
    /// 2 for four eyes.
    public var approvalsNeeded: Int
    /// The reviewer whose first approval is recorded (four eyes), if any.
    public var firstApprover: String?
    public var reminders: Int

    /// Approvals recorded so far.
    public var approvals: Int { firstApprover == nil ? 0 : 1 }
}

/// One recorded decision on a withdrawal (`gateway.withdrawal_decisions`).
public struct WithdrawalDecision: Sendable, Equatable {
    public var at: Date
    /// review, approve, reject, first_approval or escalate.
    public var decision: String
    /// What made it: a rule's name, `people`, `four_eyes`, `escalation`, `sla_reminder`.
    public var rule: String
    public var actor: String
    public var detail: String
}

/// A reviewer tried to decide a review above their level.
public struct ReviewNotAllowed: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// What a people's decision did.
public enum ReviewOutcome: Sendable, Equatable {
    /// Approved (callback 1, payment queued) or rejected (callback 2).
    case decided(Withdrawal)
    /// The first of two approvals is recorded; the withdrawal waits for a second, different reviewer.
    case firstApproval(Withdrawal)

    public var withdrawal: Withdrawal {
        switch self {
        case .decided(let w), .firstApproval(let w): return w
        }
    }
}

/// Manual review: levels with SLAs, reviewers with levels, four eyes, and the decision history.
/// People decide through `decide` (gatewayctl and the admin API); `Withdrawals.decide` is the
/// state change underneath it, which rules call directly.
public enum Reviews {
    /// The review stage's job kind that escalates a review whose level's SLA passed.
    public static let escalateJobKind = "escalate"

    /// The escalation job of a withdrawal's level: one per withdrawal and level.
    public static func escalationKey(_ id: Int64, level: Int) -> String { "escalate:withdrawal:\(id):level:\(level)" }

    /// Starts (or restarts, for a withdrawal that comes back to review) a review at level 1 with the
    /// level's SLA, and schedules its escalation at the deadline. In the caller's transaction.
    public static func open(_ id: Int64, level: ReviewLevel, approvalsNeeded: Int, on c: DatabaseConnection, logger: Logger) async throws {
        var deadline: Date?
        for try await d in try await c.query("""
            INSERT INTO gateway.withdrawal_reviews (withdrawal_id, level, level_name, sla, deadline, approvals_needed)
            VALUES (\(id), 1, \(level.name), make_interval(secs => \(seconds(level.sla))), now() + make_interval(secs => \(seconds(level.sla))),
                    \(Int16(approvalsNeeded == 2 ? 2 : 1)))
            ON CONFLICT (withdrawal_id) DO UPDATE SET level = 1, level_name = excluded.level_name, sla = excluded.sla, deadline = excluded.deadline,
                entered_at = now(), level_since = now(), approvals_needed = excluded.approvals_needed, first_approver = NULL,
                first_approved_at = NULL, reminders = 0
            RETURNING deadline
            """, logger: logger).decode(Date.self) { deadline = d }
        guard let deadline else { throw ServiceError.notFound("withdrawal \(id)") }
        try await scheduleEscalation(id, level: 1, at: deadline, on: c, logger: logger)
    }

    /// Queues the escalation of `level` to run at `deadline` (a no-op when it is queued already: that
    /// job checks the deadline again when it runs).
    public static func scheduleEscalation(_ id: Int64, level: Int, at deadline: Date, on c: DatabaseConnection, logger: Logger) async throws {
        try await JobQueue.enqueue(NewJob(stage: .review, kind: escalateJobKind, ref: "withdrawal:\(id)",
                                          payload: JSONValue.object([("level", .int(level))]).serialized, runAt: .at(deadline),
                                          uniqueKey: escalationKey(id, level: level)), on: c, logger: logger)
    }

    static let statusColumns = """
        withdrawal_id, level, level_name, extract(epoch FROM sla)::float8, deadline, entered_at, level_since, approvals_needed,
        first_approver, reminders
        """

    static func decodeStatus(_ rows: PostgresRowSequence) async throws -> [ReviewStatus] {
        var out: [ReviewStatus] = []
        for try await r in rows.decode((Int64, Int32, String, Double, Date, Date, Date, Int16, String?, Int32).self) {
            out.append(ReviewStatus(withdrawalID: r.0, level: Int(r.1), levelName: r.2, sla: .milliseconds(Int64((r.3 * 1000).rounded())), deadline: r.4,
                                    enteredAt: r.5, levelSince: r.6, approvalsNeeded: Int(r.7), firstApprover: r.8, reminders: Int(r.9)))
        }
        return out
    }

    /// The review state of withdrawals, by id (absent: never entered review since levels exist).
    public static func status(_ ids: [Int64], on c: DatabaseConnection, logger: Logger) async throws -> [Int64: ReviewStatus] {
        guard !ids.isEmpty else { return [:] }
        let all = try await decodeStatus(try await c.query(
            "SELECT \(unescaped: statusColumns) FROM gateway.withdrawal_reviews WHERE withdrawal_id = ANY(\(ids)::int8[])", logger: logger))
        return Dictionary(all.map { ($0.withdrawalID, $0) }, uniquingKeysWith: { a, _ in a })
    }

    /// Every decision on a withdrawal, oldest first: rules, people, escalations.
    public static func history(_ id: Int64, on c: DatabaseConnection, logger: Logger) async throws -> [WithdrawalDecision] {
        var out: [WithdrawalDecision] = []
        for try await (at, decision, rule, actor, detail) in try await c.query("""
            SELECT at, decision, rule, actor, detail FROM gateway.withdrawal_decisions WHERE withdrawal_id = \(id) ORDER BY id
            """, logger: logger).decode((Date, String, String, String, String).self) {
            out.append(WithdrawalDecision(at: at, decision: decision, rule: rule, actor: actor, detail: detail))
        }
        return out
    }

    /// The reviewer named `name`: the enabled admin token of that name and its review level; nil when there is none.
    public static func reviewer(named name: String, on c: DatabaseConnection, logger: Logger) async throws -> Reviewer? {
        for try await (n, level) in try await c.query(
            "SELECT name, review_level FROM gateway.admin_tokens WHERE name = \(name) AND enabled", logger: logger).decode((String, Int32).self) {
            return Reviewer(name: n, level: Int(level))
        }
        return nil
    }

    /// A people's decision on a withdrawal waiting in review, in the caller's transaction.
    ///
    /// The reviewer may decide only a review at or below their level (`ReviewNotAllowed` otherwise).
    /// `expectedVersion`, when given, must be the withdrawal's version. A rejection needs a reason.
    /// A four-eyes review takes two approvals by different reviewers: the first is recorded (decision
    /// `first_approval`, audit) and the withdrawal stays `pending_review` (its version moves on); the
    /// second approves it through `Withdrawals.decide`. The first approver approving again is a
    /// conflict that changes nothing. `channel` (cli, admin) prefixes the actor in the audit log.
    public static func decide(_ id: Int64, approve: Bool, reason: String?, expectedVersion: Int?, reviewer: Reviewer, channel: String,
                              on c: DatabaseConnection, logger: Logger) async throws -> ReviewOutcome {
        var row: (state: String, version: Int32)?
        for try await r in try await c.query("SELECT state, version FROM gateway.withdrawals WHERE id = \(id) FOR UPDATE", logger: logger)
            .decode((String, Int32).self) { row = (r.0, r.1) }
        guard let row else { throw ServiceError.notFound("withdrawal \(id)") }
        guard row.state == "pending_review" else {
            throw ServiceError.conflict("withdrawal \(id) is \(row.state); only a withdrawal waiting in review can be decided")
        }
        if let expectedVersion, expectedVersion != Int(row.version) {
            throw ServiceError.conflict("withdrawal \(id) changed since you loaded it (version \(row.version), yours \(expectedVersion))")
        }
        let review = try await decodeStatus(try await c.query(
            "SELECT \(unescaped: statusColumns) FROM gateway.withdrawal_reviews WHERE withdrawal_id = \(id) FOR UPDATE", logger: logger)).first
        let level = review?.level ?? 1
        guard reviewer.level >= level else {
            throw ReviewNotAllowed("withdrawal \(id) waits at review level \(level)\(review.map { " (\($0.levelName))" } ?? ""); "
                                   + "\(reviewer.name) may decide up to level \(reviewer.level)")
        }
        if !approve, (reason ?? "").trimmingCharacters(in: .whitespaces).isEmpty {
            throw ServiceError.invalid("a rejection needs a reason")
        }
        let actor = "\(channel):\(reviewer.name)"
        if approve, let review, review.approvalsNeeded == 2 {
            if let first = review.firstApprover {
                guard first != reviewer.name else {
                    throw ServiceError.conflict(
                        "\(first) already gave the first approval of withdrawal \(id); four eyes: a second, different reviewer must approve it")
                }
                let w = try await Withdrawals.decide(id, approve: true, reason: reason, expectedVersion: nil, actor: actor, rule: "four_eyes",
                                                     on: c, logger: logger)
                return .decided(w)
            }
            try await c.query("""
                UPDATE gateway.withdrawal_reviews SET first_approver = \(reviewer.name), first_approved_at = now() WHERE withdrawal_id = \(id)
                """, logger: logger)
            guard let w = try await Withdrawals.find(id, on: c, logger: logger) else { throw ServiceError.notFound("withdrawal \(id)") }
            try await c.query("UPDATE gateway.withdrawals SET version = version + 1 WHERE id = \(id)", logger: logger)
            try await Withdrawals.recordDecision(id, "first_approval", rule: "four_eyes", actor: actor, detail: reason ?? "", on: c, logger: logger)
            try await Audit.record(actor: actor, action: "withdrawal.first_approval", target: "withdrawal:\(id)",
                                   detail: ["comment": reason.map(JSONValue.string) ?? .null, "level": .int(level)], on: c, logger: logger)
            var updated = w
            updated.version += 1
            return .firstApproval(updated)
        }
        let w = try await Withdrawals.decide(id, approve: approve, reason: reason, expectedVersion: nil, actor: actor, on: c, logger: logger)
        return .decided(w)
    }

    static func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }
}
