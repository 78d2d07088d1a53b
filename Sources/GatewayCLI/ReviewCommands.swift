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
            Every decision is written to the audit log under --as.
            """,
        subcommands: [List.self, Show.self, Approve.self, Reject.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List withdrawals waiting for review, oldest first.")
        @OptionGroup var options: ProcessOptions
        @Option(help: "Only this merchant.") var merchant: Int64?
        @Option(help: "At most this many.") var limit = 100

        func validate() throws {
            guard (1...10_000).contains(limit) else { throw ValidationError("--limit must be between 1 and 10000") }
        }

        func run() async throws {
            let (m, lim) = (merchant, limit)
            let waiting = try await read(options) { c, l in
                try await Withdrawals.list(merchantID: m, state: "pending_review", limit: lim, on: c, logger: l)
            }.sorted { $0.createdAt < $1.createdAt }
            guard !waiting.isEmpty else { return print("no withdrawals waiting for review") }
            var t = TextTable(header: ["id", "merchant", "businessId", "chain", "address", "amount (base units)", "waiting", "version", "reason"])
            for w in waiting {
                let age = DurationText.format(.seconds(Int64(max(0, Date().timeIntervalSince(w.createdAt)))))
                t.add(["\(w.id)", "\(w.merchantID)", w.businessID, w.chain, w.address, w.amount.description, age, "\(w.version)",
                       String((w.stateReason ?? "").prefix(60))])
            }
            print(t.render(), terminator: "")
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a withdrawal with its merchant's available balance and its callbacks.")
        @OptionGroup var options: ProcessOptions
        @Argument(help: "Withdrawal id.") var id: Int64

        func run() async throws {
            let id = self.id
            let (w, balance, callbacks) = try await read(options) { c, l in
                guard let w = try await Withdrawals.find(id, on: c, logger: l) else { throw ServiceError.notFound("withdrawal \(id)") }
                let balance = try await Ledger.available(merchantID: w.merchantID, on: c, logger: l)[w.coinID] ?? 0
                var callbacks: [String] = []
                for try await (status, state, at) in try await c.query("""
                    SELECT status, state, created_at FROM gateway.callbacks WHERE trade_type = 2 AND trade_id = \(id) ORDER BY id
                    """, logger: l).decode((Int16, String, Date).self) {
                    callbacks.append("status \(status) \(state) (\(iso(at)))")
                }
                return (w, balance, callbacks)
            }
            print("withdrawal \(w.id): \(w.state)\(w.stateReason.map { " (\($0))" } ?? "")")
            for (k, v) in [("merchant", "\(w.merchantID)"), ("businessId", w.businessID), ("destination", "\(w.address) on \(w.chain)"),
                           ("amount", "\(w.amount) base units (fee \(w.fee))"), ("available", "\(balance) base units"),
                           ("version", "\(w.version) (pass --version to approve or reject exactly this)"), ("created", iso(w.createdAt))] {
                print("  \(k.padding(toLength: 12, withPad: " ", startingAt: 0)) \(v)")
            }
            print("  callbacks    \(callbacks.isEmpty ? "none" : callbacks.joined(separator: "; "))")
        }
    }

    struct Approve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Approve a withdrawal: reserve its amount, send callback 1, queue the payment.")
        @OptionGroup var options: ProcessOptions
        @Argument(help: "Withdrawal id.") var id: Int64
        @Option(name: .customLong("as"), help: "Who decides (recorded in the audit log).") var reviewer: String
        @Option(help: "The version you looked at (gatewayctl review show); a withdrawal changed since is left alone.") var version: Int?

        func validate() throws {
            guard !reviewer.trimmingCharacters(in: .whitespaces).isEmpty else { throw ValidationError("--as must name the reviewer") }
        }

        func run() async throws {
            let (id, who, version) = (self.id, reviewer, self.version)
            let w = try await write(options) { c, l in
                try await Withdrawals.decide(id, approve: true, reason: nil, expectedVersion: version, actor: "cli:\(who)", on: c, logger: l)
            }
            print("withdrawal \(w.id) approved by \(who): \(w.amount) base units reserved, payment queued")
        }
    }

    struct Reject: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Reject a withdrawal with a reason: callback 2, nothing paid.")
        @OptionGroup var options: ProcessOptions
        @Argument(help: "Withdrawal id.") var id: Int64
        @Option(name: .customLong("as"), help: "Who decides (recorded in the audit log).") var reviewer: String
        @Option(help: "Why (recorded, required).") var reason: String
        @Option(help: "The version you looked at (gatewayctl review show); a withdrawal changed since is left alone.") var version: Int?

        func validate() throws {
            guard !reviewer.trimmingCharacters(in: .whitespaces).isEmpty else { throw ValidationError("--as must name the reviewer") }
            guard !reason.trimmingCharacters(in: .whitespaces).isEmpty else { throw ValidationError("--reason must say why") }
        }

        func run() async throws {
            let (id, who, reason, version) = (self.id, reviewer, self.reason, self.version)
            let w = try await write(options) { c, l in
                try await Withdrawals.decide(id, approve: false, reason: reason, expectedVersion: version, actor: "cli:\(who)", on: c, logger: l)
            }
            print("withdrawal \(w.id) rejected by \(who): \(reason)")
        }
    }
}

/// `gatewayctl ledger …`: balances as the ledger holds them.
struct LedgerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ledger", abstract: "The ledger: balances per merchant, coin and account.",
                                                    subcommands: [Balances.self, Check.self])

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
