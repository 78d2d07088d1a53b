import ArgumentParser
import BigInt
import Foundation
import GatewayCore
import GatewayRuntime
import GatewayServices
import PostgresNIO

/// `gatewayctl review …`: people deciding withdrawals (the same decisions as the admin API).
struct ReviewCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "review",
        abstract: "Withdrawals waiting for people: list them, look at one, approve or reject it.",
        discussion: """
            Approval reserves the amount from the merchant's available balance (refused, changing nothing, when that \
            would overdraw it), sends callback 1 and queues the payment; rejection needs a reason and sends callback 2. \
            A review waits at a level (review.levels in workers.yml) until its SLA passes, then moves up a level and \
            operators are notified. Reviewers are admin tokens (gatewayctl admin token add NAME --level N): --as NAME \
            decides as that reviewer, who may decide reviews up to their level. Above review.four_eyes_above two \
            different reviewers must approve. Every decision is written to the audit log as cli:NAME.
            """,
        subcommands: [List.self, Show.self, Approve.self, Reject.self])

    /// "12m left", "overdue 3m".
    static func timeLeft(_ deadline: Date, now: Date = Date()) -> String {
        let s = Int64(deadline.timeIntervalSince(now).rounded())
        let text = DurationText.format(.seconds(abs(s) >= 120 ? abs(s) / 60 * 60 : abs(s)))
        return s >= 0 ? "\(text) left" : "overdue \(text)"
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List withdrawals waiting for review, oldest first, with level, deadline and approvals.")
        @OptionGroup var options: ProcessOptions
        @Option(help: "Only this merchant.") var merchant: Int64?
        @Option(help: "At most this many.") var limit = 100

        func validate() throws {
            guard (1...10_000).contains(limit) else { throw ValidationError("--limit must be between 1 and 10000") }
        }

        func run() async throws {
            let (m, lim) = (merchant, limit)
            let (all, reviews) = try await read(options) { c, l in
                let waiting = try await Withdrawals.list(merchantID: m, state: "pending_review", limit: lim, on: c, logger: l)
                return (waiting, try await Reviews.status(waiting.map(\.id), on: c, logger: l))
            }
            let waiting = all.sorted { $0.createdAt < $1.createdAt }
            guard !waiting.isEmpty else { return print("no withdrawals waiting for review") }
            var t = TextTable(header: ["id", "merchant", "businessId", "chain", "address", "amount (base units)", "waiting", "level", "deadline",
                                       "approvals", "version", "reason"])
            for w in waiting {
                let age = DurationText.format(.seconds(Int64(max(0, Date().timeIntervalSince(w.createdAt)))))
                let r = reviews[w.id]
                let approvals = r.map { "\($0.approvals)/\($0.approvalsNeeded)" + ($0.firstApprover.map { " (\($0))" } ?? "") } ?? "0/1"
                t.add(["\(w.id)", "\(w.merchantID)", w.businessID, w.chain, w.address, w.amount.description, age,
                       r.map { "\($0.level) \($0.levelName)" } ?? "1", r.map { ReviewCommand.timeLeft($0.deadline) } ?? "-", approvals, "\(w.version)",
                       String((w.stateReason ?? "").prefix(60))])
            }
            print(t.render(), terminator: "")
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show a withdrawal with its merchant's available balance, its review (level, deadline, approvals), its decisions and its callbacks.")
        @OptionGroup var options: ProcessOptions
        @Argument(help: "Withdrawal id.") var id: Int64

        func run() async throws {
            let id = self.id
            let (w, balance, callbacks, review, history) = try await read(options) { c, l in
                guard let w = try await Withdrawals.find(id, on: c, logger: l) else { throw ServiceError.notFound("withdrawal \(id)") }
                let balance = try await Ledger.available(merchantID: w.merchantID, on: c, logger: l)[w.coinID] ?? 0
                var callbacks: [String] = []
                for try await (status, state, at) in try await c.query("""
                    SELECT status, state, created_at FROM gateway.callbacks WHERE trade_type = 2 AND trade_id = \(id) ORDER BY id
                    """, logger: l).decode((Int16, String, Date).self) {
                    callbacks.append("status \(status) \(state) (\(iso(at)))")
                }
                let review = try await Reviews.status([id], on: c, logger: l)[id]
                return (w, balance, callbacks, review, try await Reviews.history(id, on: c, logger: l))
            }
            print("withdrawal \(w.id): \(w.state)\(w.stateReason.map { " (\($0))" } ?? "")")
            for (k, v) in [("merchant", "\(w.merchantID)"), ("businessId", w.businessID), ("destination", "\(w.address) on \(w.chain)"),
                           ("amount", "\(w.amount) base units (fee \(w.fee))"), ("available", "\(balance) base units"),
                           ("endpoint", w.proxypay ? "/mch/withdraw/proxypay" : "/mch/withdraw"),
                           ("version", "\(w.version) (pass --version to approve or reject exactly this)"), ("created", iso(w.createdAt))] {
                print("  \(k.padding(toLength: 12, withPad: " ", startingAt: 0)) \(v)")
            }
            if let r = review {
                let deadline = w.state == "pending_review" ? "\(iso(r.deadline)) (\(ReviewCommand.timeLeft(r.deadline)))" : iso(r.deadline)
                print("  review       level \(r.level) (\(r.levelName)), SLA \(DurationText.format(r.sla)), deadline \(deadline)")
                print("  approvals    \(r.approvals) of \(r.approvalsNeeded)\(r.firstApprover.map { " (first: \($0))" } ?? "")"
                      + (r.approvalsNeeded == 2 ? ", four eyes: two different reviewers" : ""))
            }
            print("  callbacks    \(callbacks.isEmpty ? "none" : callbacks.joined(separator: "; "))")
            print("decisions")
            if history.isEmpty { print("  none") }
            for d in history {
                print("  \(iso(d.at))  \(d.decision.padding(toLength: 14, withPad: " ", startingAt: 0)) \(d.rule.padding(toLength: 24, withPad: " ", startingAt: 0)) "
                      + "\(d.actor)\(d.detail.isEmpty ? "" : ": \(d.detail)")")
            }
        }
    }

    /// Looks up the reviewer named by --as, then decides.
    static func decide(_ options: ProcessOptions, id: Int64, approve: Bool, reason: String?, version: Int?, as name: String) async throws -> ReviewOutcome {
        try await write(options) { c, l in
            guard let reviewer = try await Reviews.reviewer(named: name, on: c, logger: l) else {
                throw CLIError("no enabled reviewer named \(name): reviewers are admin tokens (gatewayctl admin token add \(name) --level N)")
            }
            return try await Reviews.decide(id, approve: approve, reason: reason, expectedVersion: version, reviewer: reviewer, channel: "cli",
                                            on: c, logger: l)
        }
    }

    struct Approve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Approve a withdrawal: reserve its amount, send callback 1, queue the payment (four eyes: the first approval is recorded and it waits for a second reviewer).")
        @OptionGroup var options: ProcessOptions
        @Argument(help: "Withdrawal id.") var id: Int64
        @Option(name: .customLong("as"), help: ArgumentHelp(
            "The reviewer: the name of an enabled admin token, whose level bounds the reviews they may decide (recorded in the audit log).",
            valueName: "name")) var reviewer: String
        @Option(help: "The version you looked at (gatewayctl review show); a withdrawal changed since is left alone.") var version: Int?
        @Option(help: "A comment, recorded with the decision.") var comment: String?

        func validate() throws {
            guard !reviewer.trimmingCharacters(in: .whitespaces).isEmpty else { throw ValidationError("--as must name the reviewer") }
        }

        func run() async throws {
            switch try await ReviewCommand.decide(options, id: id, approve: true, reason: comment, version: version, as: reviewer) {
            case .decided(let w):
                print("withdrawal \(w.id) approved by \(reviewer): \(w.amount) base units reserved, payment queued")
            case .firstApproval(let w):
                print("withdrawal \(w.id): first approval by \(reviewer) recorded (version \(w.version)); four eyes: a second, different reviewer must approve it")
            }
        }
    }

    struct Reject: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Reject a withdrawal with a reason: callback 2, nothing paid, any reservation released.")
        @OptionGroup var options: ProcessOptions
        @Argument(help: "Withdrawal id.") var id: Int64
        @Option(name: .customLong("as"), help: ArgumentHelp(
            "The reviewer: the name of an enabled admin token, whose level bounds the reviews they may decide (recorded in the audit log).",
            valueName: "name")) var reviewer: String
        @Option(help: "Why (recorded, required).") var reason: String
        @Option(help: "The version you looked at (gatewayctl review show); a withdrawal changed since is left alone.") var version: Int?

        func validate() throws {
            guard !reviewer.trimmingCharacters(in: .whitespaces).isEmpty else { throw ValidationError("--as must name the reviewer") }
            guard !reason.trimmingCharacters(in: .whitespaces).isEmpty else { throw ValidationError("--reason must say why") }
        }

        func run() async throws {
            let w = try await ReviewCommand.decide(options, id: id, approve: false, reason: reason, version: version, as: reviewer).withdrawal
            print("withdrawal \(w.id) rejected by \(reviewer): \(reason)")
        }
    }
}

/// `gatewayctl ledger …`: balances as the ledger holds them.
struct LedgerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ledger", abstract: "The ledger: balances per merchant, coin and account; reconciliation with the chain.",
                                                    subcommands: [Balances.self, Check.self, Reconcile.self])

    struct Balances: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Balances per account: a merchant's available and reserved funds, and the gateway's own accounts (merchant -).")
        @OptionGroup var options: ProcessOptions
        @Option(help: "Only this merchant.") var merchant: Int64?

        func run() async throws {
            let m = merchant
            let rows = try await read(options) { c, l in
                var out: [[String]] = []
                for try await (merchant, chain, symbol, kind, balance) in try await c.query("""
                    SELECT a.merchant_id, k.chain, k.symbol, a.kind, a.balance::text FROM gateway.ledger_accounts a JOIN gateway.coins k ON k.id = a.coin_id
                    WHERE \(m)::int8 IS NULL OR a.merchant_id = \(m)
                    ORDER BY a.merchant_id NULLS FIRST, k.chain, k.symbol, a.kind
                    """, logger: l).decode((Int64?, String, String, String, String).self) {
                    out.append([merchant.map(String.init) ?? "-", chain, symbol, kind, balance])
                }
                return out
            }
            guard !rows.isEmpty else { return print("no ledger accounts yet") }
            var t = TextTable(header: ["merchant", "chain", "coin", "account", "balance (base units)"])
            for r in rows { t.add(r) }
            print(t.render(), terminator: "")
        }
    }

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check the ledger against itself: every balance equals its entries, every transfer sums to zero (exit 1 otherwise).")
        @OptionGroup var options: ProcessOptions

        func run() async throws {
            let problems = try await read(options) { c, l in try await Ledger.inconsistencies(on: c, logger: l) }
            guard problems.isEmpty else {
                for p in problems { print(p) }
                throw ExitCode(1)
            }
            print("ledger consistent: every balance equals its entries, every transfer sums to zero")
        }
    }
}
