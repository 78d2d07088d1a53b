import ArgumentParser
import Foundation
import GatewayCore
import GatewayRuntime
import GatewayServices
import Logging
import PostgresNIO

/// The operator CLI.
public struct GatewayCTL: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "gatewayctl",
        abstract: "Operate usdt-gateway: schema migrations, queue status, dead jobs, benchmarks.",
        discussion: ProcessOptions.discussion,
        subcommands: [
            Migrate.self, Status.self, Jobs.self, ConfigCommand.self, KeysCommand.self, ChainCommand.self, MerchantCommand.self, CoinCommand.self,
            WalletCommand.self, AddressCommand.self, DepositCommand.self, WithdrawalCommand.self, ReviewCommand.self, UserCommand.self, LedgerCommand.self, SweepCommand.self, CallbacksCommand.self, AdminCommand.self, DemoCommand.self, Chaos.self, Bench.self,
        ])

    public init() {}

    /// Parses and runs a command; database errors are told by their SQLSTATE and message (never a
    /// DETAIL, which may carry values) instead of postgres-nio's deliberately generic text.
    public static func runMain() async {
        do {
            var command = try parseAsRoot()
            if var async = command as? AsyncParsableCommand {
                try await async.run()
            } else {
                try command.run()
            }
        } catch let error where error is PSQLError || error is CommitOutcomeUnknown || error is ConnectionClosed {
            FileHandle.standardError.write(Data("Error: database: \(DatabaseErrors.describe(error))\n".utf8))
            Foundation.exit(1)
        } catch {
            exit(withError: error)
        }
    }
}

/// Shared start-up of a CLI command: configuration, logging, a database handle with its pool running.
struct CLIContext {
    var config: GatewayConfig
    var logger: Logger
    var database: Database

    /// Runs `body` with a connected database, closing the pool afterwards.
    static func with<R: Sendable>(_ options: ProcessOptions, label: String = "gateway.ctl", requireSchema: Bool = true,
                                  _ body: @Sendable (CLIContext) async throws -> R) async throws -> R {
        let config = try options.loadConfig()
        Observability.bootstrapLogging(level: min(config.logLevel, .notice) == .notice ? .notice : config.logLevel)
        var logger = Logger(label: label)
        logger.logLevel = .notice
        let database = Database(config: config.database, logger: logger, quietPool: true)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try? await database.run() }
            defer { group.cancelAll() }
            let ctx = CLIContext(config: config, logger: logger, database: database)
            if requireSchema { try await database.requireSchema() }
            return try await body(ctx)
        }
    }
}

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply the SQL migrations in sql/ that the database does not have yet.",
        discussion: """
            Each file runs in its own transaction under an advisory lock, so concurrent runs apply \
            each file once. Re-running is a no-op. An applied file that was edited is an error.
            """)

    @OptionGroup var options: ProcessOptions
    @Option(help: ArgumentHelp("Folder of NNNN_name.sql files (default: GATEWAY_SQL_DIR, ./sql, or beside the executable).", valueName: "dir"))
    var sqlDir: String?
    @Flag(help: "List applied and pending migrations without applying any.") var dryRun = false

    func run() async throws {
        let config = try options.loadConfig()
        Observability.bootstrapLogging(level: .info)
        let logger = Logger(label: "gateway.ctl")
        guard let dir = sqlDir ?? GatewaySchema.locateSQLDirectory() else {
            throw ValidationError("cannot find the sql/ folder; pass --sql-dir or set GATEWAY_SQL_DIR")
        }
        let migrations = try GatewaySchema.loadMigrations(directory: dir)
        let migrator = try Migrator(connectionString: config.database.libpqConnectionString, logger: logger)
        if dryRun {
            let applied = try migrator.applied()
            for m in migrations { print("\(String(format: "%04d", m.version))_\(m.name)  \(applied[m.version] == nil ? "pending" : "applied")") }
            return
        }
        let done = try migrator.migrate(migrations)
        let latest = migrations.map(\.version).max() ?? 0
        print(done.isEmpty ? "schema is up to date (version \(latest))" : "applied \(done.count) migration(s); schema is at version \(latest)")
        // What SQL cannot derive: the gas address (…/account'/2/0) of wallets attached before migration 0012.
        let filled = try await CLIContext.with(options) { ctx in
            try await ctx.database.transaction { c in
                try await Wallets.fillGasAddresses(directory: ChainDirectory(config: ctx.config), on: c, logger: ctx.logger)
            }
        }
        if filled > 0 { print("filled the gas address of \(filled) wallet(s)") }
    }
}

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show the queue per stage, callbacks per merchant, chain scanners, deposits, withdrawals, reviews per level, hot wallets and deep-reorg alerts.")

    @OptionGroup var options: ProcessOptions

    func run() async throws {
        let text = try await CLIContext.with(options) { ctx in
            let report = try await StatusReport.render(ctx.database, chains: ctx.config.chains)
            // Which node is written to (a highly available formation names its nodes; a failover moves it).
            return ctx.database.health.text + " (nodes \(ctx.config.database.hosts.map(\.description).joined(separator: ", ")))\n\n" + report
        }
        print(text, terminator: "")
    }
}

/// `gatewayctl status` as text.
public enum StatusReport {
    /// An age in seconds as the monitor views give it (negative: none) as text.
    static func age(_ seconds: Double) -> String { seconds < 0 ? "-" : DurationText.format(.milliseconds(Int64(seconds * 1000))) }

    /// The dashboard; `chains` gives the hot wallets' low-water marks (none: nothing is flagged LOW).
    public static func render(_ database: Database, chains chainConfigs: [ChainConfig] = []) async throws -> String {
        let rows = try await database.query("""
            SELECT s.stage, coalesce(q.ready, 0), coalesce(q.scheduled, 0), coalesce(q.running, 0), coalesce(q.expired_leases, 0),
                   coalesce(q.dead, 0), coalesce(extract(epoch FROM q.oldest_ready_age)::float8, -1),
                   coalesce(q.completed_last_minute, 0)::int8, coalesce(q.completed_last_hour, 0)::int8
            FROM (SELECT unnest(\(Stage.allCases.map(\.rawValue))::text[]) AS stage
                  UNION SELECT stage FROM monitor.queue) s
            LEFT JOIN monitor.queue q ON q.stage = s.stage
            ORDER BY s.stage
            """)
        var table = TextTable(header: ["stage", "ready", "scheduled", "running", "expired", "dead", "oldest ready", "done/min", "done/hour"])
        for try await (stage, ready, scheduled, running, expired, dead, age, perMin, perHour) in rows.decode(
            (String, Int64, Int64, Int64, Int64, Int64, Double, Int64, Int64).self)
        {
            table.add([stage, "\(ready)", "\(scheduled)", "\(running)", "\(expired)", "\(dead)",
                       Self.age(age), "\(perMin)", "\(perHour)"])
        }
        var text = "queue\n" + table.render()
        let cbRows = try await database.query("""
            SELECT merchant_id, merchant, pending, coalesce(extract(epoch FROM oldest_pending_age)::float8, -1), dead
            FROM monitor.callbacks WHERE pending > 0 OR dead > 0 ORDER BY merchant_id
            """)
        var callbacks = TextTable(header: ["merchant", "name", "pending", "oldest pending", "dead"])
        var any = false
        for try await (id, name, pending, age, dead) in cbRows.decode((Int64, String, Int64, Double, Int64).self) {
            any = true
            callbacks.add(["\(id)", name, "\(pending)", Self.age(age), "\(dead)"])
        }
        text += "\ncallbacks\n" + (any ? callbacks.render() : "none waiting, none dead\n")

        var chains = TextTable(header: ["chain", "node tip", "scanned", "lag", "last scan", "leader", "waiting", "reorg alerts", "last error"])
        var anyChain = false
        for try await (chain, tip, scanned, lag, age, leader, alive, waiting, alerts, error, errorAge) in try await database.query("""
            SELECT chain, node_tip, scanned_height, lag_blocks, coalesce(extract(epoch FROM last_scan_age)::float8, -1), leader,
                   coalesce(leader_alive, false), deposits_waiting, open_reorg_alerts, last_error,
                   coalesce(extract(epoch FROM last_error_age)::float8, -1)
            FROM monitor.chains ORDER BY chain
            """).decode((String, Int64?, Int64?, Int64?, Double, String?, Bool, Int64, Int64, String?, Double).self) {
            anyChain = true
            func ago(_ s: Double) -> String { s < 0 ? "-" : Self.age(s) + " ago" }
            chains.add([chain, tip.map(String.init) ?? "-", scanned.map(String.init) ?? "-", lag.map(String.init) ?? "-", ago(age),
                        alive ? (leader ?? "-") : "none (lease expired)", "\(waiting)", alerts > 0 ? "\(alerts) OPEN" : "0",
                        error.map { "\(ago(errorAge)): \($0.prefix(60))" } ?? "-"])
        }
        text += "\nchains\n" + (anyChain ? chains.render() : "no chain scanned yet (is chain-worker running?)\n")

        var deposits = TextTable(header: ["chain", "coin", "status", "deposits", "amount (base units)", "oldest waiting"])
        var anyDeposit = false
        for try await (chain, symbol, status, n, amount, age) in try await database.query("""
            SELECT chain, symbol, status, deposits, amount::text, coalesce(extract(epoch FROM oldest_waiting_age)::float8, -1)
            FROM monitor.deposits ORDER BY chain, symbol, status
            """).decode((String, String, String, Int64, String, Double).self) {
            anyDeposit = true
            deposits.add([chain, symbol, status, "\(n)", amount, Self.age(age)])
        }
        text += "\ndeposits\n" + (anyDeposit ? deposits.render() : "none yet\n")

        var withdrawals = TextTable(header: ["chain", "coin", "state", "withdrawals", "amount (base units)", "oldest in state"])
        var anyWithdrawal = false
        for try await (chain, symbol, state, n, amount, age) in try await database.query("""
            SELECT chain, symbol, state, withdrawals, amount::text, coalesce(extract(epoch FROM oldest_in_state_age)::float8, -1)
            FROM monitor.withdrawals ORDER BY chain, symbol, state
            """).decode((String, String, String, Int64, String, Double).self) {
            anyWithdrawal = true
            withdrawals.add([chain, symbol, state, "\(n)", amount, Self.age(age)])
        }
        text += "\nwithdrawals\n" + (anyWithdrawal ? withdrawals.render() : "none open or finished in the last day\n")

        var reviews = TextTable(header: ["level", "name", "SLA", "waiting", "overdue", "most overdue by", "oldest at level", "oldest waiting",
                                         "four eyes", "1 of 2 approved"])
        var anyReview = false
        for try await (level, name, sla, waiting, overdue, overdueBy, atLevel, oldest, fourEyes, half) in try await database.query("""
            SELECT level, level_name, coalesce(extract(epoch FROM sla)::float8, -1), waiting, overdue,
                   coalesce(extract(epoch FROM most_overdue_by)::float8, -1), coalesce(extract(epoch FROM oldest_at_level_age)::float8, -1),
                   coalesce(extract(epoch FROM oldest_waiting_age)::float8, -1), four_eyes, awaiting_second_approval
            FROM monitor.reviews ORDER BY level
            """).decode((Int32, String, Double, Int64, Int64, Double, Double, Double, Int64, Int64).self) {
            anyReview = true
            reviews.add(["\(level)", name, Self.age(sla), "\(waiting)", overdue > 0 ? "\(overdue) OVERDUE" : "0", Self.age(overdueBy), Self.age(atLevel),
                         Self.age(oldest), "\(fourEyes)", "\(half)"])
        }
        text += "\nreviews\n" + (anyReview ? reviews.render() : "none waiting\n")
        text += try await HotWalletRows.statusSection(database, chains: chainConfigs)
        text += try await SweepCommand.statusSection(database)

        var alerts = TextTable(header: ["alert", "chain", "fork at", "depth", "confirmations", "detected", "detail"])
        var anyAlert = false
        for try await (id, chain, fork, depth, confirmations, at, detail) in try await database.query("""
            SELECT id, chain, fork_height, depth, confirmations, detected_at, detail FROM monitor.reorg_alerts ORDER BY id
            """).decode((Int64, String, Int64, Int32, Int32, Date, String).self) {
            anyAlert = true
            alerts.add(["\(id)", chain, "\(fork)", "\(depth)", "\(confirmations)", ISO8601DateFormatter().string(from: at), String(detail.prefix(100))])
        }
        if anyAlert { text += "\nDEEP REORG ALERTS (check the deposits on chain, then gatewayctl chain ack-reorg --id N)\n" + alerts.render() }
        return text
    }
}

struct Jobs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Inspect dead jobs and put them back.", subcommands: [List.self, Retry.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List dead jobs, newest first.")
        @OptionGroup var options: ProcessOptions
        @Option(help: "Only this stage.") var stage: String?
        @Option(help: "At most this many.") var limit = 50

        func run() async throws {
            let (stage, limit) = (self.stage, self.limit)
            let jobs = try await CLIContext.with(options) { ctx in
                try await ctx.database.withConnection { conn in try await JobQueue.deadJobs(stage: stage, limit: limit, on: conn, logger: ctx.logger) }
            }
            var table = TextTable(header: ["id", "stage", "kind", "ref", "attempts", "died", "last error"])
            let f = ISO8601DateFormatter()
            for j in jobs { table.add(["\(j.id)", j.stage, j.kind, j.ref ?? "-", "\(j.attempt)", f.string(from: j.diedAt), String(j.lastError.prefix(80))]) }
            print(jobs.isEmpty ? "no dead jobs" : table.render(), terminator: jobs.isEmpty ? "\n" : "")
        }
    }

    struct Retry: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Put a dead job, or all dead jobs of a stage, back in the queue with fresh attempts.")
        @OptionGroup var options: ProcessOptions
        @Option(help: "The dead job's id.") var id: Int64?
        @Option(help: "Every dead job of this stage.") var stage: String?

        func validate() throws {
            guard (id == nil) != (stage == nil) else { throw ValidationError("give exactly one of --id or --stage") }
            if let id, id <= 0 { throw ValidationError("--id must be a positive job id") }
        }

        func run() async throws {
            let (id, stage) = (self.id, self.stage)
            let ids = try await CLIContext.with(options) { ctx in
                try await ctx.database.transaction { conn in try await JobQueue.retryDead(id: id, stage: stage, on: conn, logger: ctx.logger) }
            }
            if ids.isEmpty {
                print(id != nil ? "job \(id!) is not dead (or does not exist); nothing changed" : "no dead jobs in stage \(stage!)")
                throw ExitCode(1)
            }
            print("put back \(ids.count) job(s): \(ids.prefix(20).map(String.init).joined(separator: ", "))\(ids.count > 20 ? ", …" : "")")
        }
    }
}

struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "config", abstract: "Check the configuration file.", subcommands: [Check.self])

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Load and validate the configuration; print a summary or the first error.")
        @OptionGroup var options: ProcessOptions

        func run() async throws {
            let c = try options.loadConfig()
            print("\(c.source): ok")
            print("  database  \(c.database.redactedDescription) (pool \(c.database.poolSize))")
            print("  api       \(c.api.listen)")
            print("  secrets   \(Self.secretSources(c))")
            for s in Stage.allCases {
                let w = c.worker(s)
                print("  \(s.rawValue.padding(toLength: 9, withPad: " ", startingAt: 0)) concurrency \(w.concurrency), batch \(w.batchSize), lease \(DurationText.format(w.lease)), "
                      + "max attempts \(w.maxAttempts), metrics \(w.metricsListen?.description ?? "off")")
            }
        }

        /// Where each secret is looked for, in order (never its value): what a unit's LoadCredential= lines must give.
        static func secretSources(_ c: GatewayConfig) -> String {
            func sources(_ env: String?, _ credential: String?, _ file: String?) -> String {
                let list = [env.map { "$\($0)" }, credential.map { "credential \($0)" }, file.map { "file \($0)" }].compactMap { $0 }
                return list.isEmpty ? "none" : list.joined(separator: ", then ")
            }
            let password = c.database.passwordCredential.map { "POSTGRES_PASSWORD/DATABASE_URL, then credential \($0)" } ?? "the URL or POSTGRES_PASSWORD"
            return "database password: \(password); wallet seed: \(sources(c.wallet.seedEnv, c.wallet.seedCredential, c.wallet.seedFile)); "
                + "console TOTP key: \(sources(c.console.totpKeyEnv, c.console.totpKeyCredential, c.console.totpKeyFile))"
        }
    }
}

/// A plain-text table with aligned columns.
public struct TextTable {
    var header: [String]
    var rows: [[String]] = []

    public init(header: [String]) { self.header = header }

    public mutating func add(_ row: [String]) { rows.append(row) }

    public func render() -> String {
        let all = [header] + rows
        let widths = header.indices.map { i in all.map { $0.indices.contains(i) ? $0[i].count : 0 }.max() ?? 0 }
        func line(_ r: [String]) -> String {
            r.enumerated().map { i, c in c.padding(toLength: widths[i], withPad: " ", startingAt: 0) }.joined(separator: "  ")
                .replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression)
        }
        return ([line(header), widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")] + rows.map(line))
            .joined(separator: "\n") + "\n"
    }
}
