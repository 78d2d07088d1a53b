import ArgumentParser
import BigInt
import Foundation
import GatewayCore
import GatewayRuntime
import GatewayServices
import GatewayStages
import Logging
import PostgresNIO

/// `gatewayctl sweep plan|list`.
struct SweepCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sweep", abstract: "Plan and inspect aggregation sweeps of deposit addresses.", subcommands: [Plan.self, List.self])

    /// `gatewayctl status`'s sweep section: funds waiting on deposit addresses, sweeps by state and age,
    /// gas spent per day (monitor.sweep_waiting, monitor.sweeps, monitor.sweep_gas). Base units.
    static func statusSection(_ database: Database) async throws -> String {
        var waiting = TextTable(header: ["chain", "coin", "addresses", "amount", "being swept"])
        var anyWaiting = false
        for try await (chain, symbol, n, amount, moving) in try await database.query("""
            SELECT chain, symbol, addresses, amount::text, being_swept::text FROM monitor.sweep_waiting WHERE addresses > 0 ORDER BY chain, symbol
            """).decode((String, String, Int64, String, String).self) {
            anyWaiting = true
            waiting.add([chain, symbol, "\(n)", amount, moving])
        }
        var sweeps = TextTable(header: ["chain", "coin", "state", "to", "sweeps", "amount", "oldest"])
        var anySweep = false
        for try await (chain, symbol, state, role, n, amount, age) in try await database.query("""
            SELECT chain, symbol, state, destination_role, sweeps, amount::text, extract(epoch FROM oldest_age)::float8
            FROM monitor.sweeps ORDER BY chain, symbol, state, destination_role
            """).decode((String, String, String, String, Int64, String, Double).self) {
            anySweep = true
            sweeps.add([chain, symbol, state, role, "\(n)", amount, StatusReport.age(age)])
        }
        var gas = TextTable(header: ["chain", "day", "purpose", "transactions", "network fees", "topped up"])
        var anyGas = false
        for try await (chain, day, purpose, n, fees, topped) in try await database.query("""
            SELECT chain, to_char(day, 'YYYY-MM-DD'), purpose, transactions, coalesce(network_fees, 0)::text, coalesce(topped_up, 0)::text
            FROM monitor.sweep_gas WHERE day > now() - interval '7 days' ORDER BY chain, day, purpose
            """).decode((String, String, String, Int64, String, String).self) {
            anyGas = true
            gas.add([chain, day, purpose, "\(n)", fees, topped])
        }
        return "\nfunds waiting on deposit addresses (base units, from our records)\n" + (anyWaiting ? waiting.render() : "none\n")
            + "\nsweeps (open, and finished in the last day)\n" + (anySweep ? sweeps.render() : "none\n")
            + "\nsweep gas per day (native base units)\n" + (anyGas ? gas.render() : "none\n")
    }

    /// `gatewayctl sweep plan --chain C [--address A] [--dry-run]`.
    struct Plan: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the chain's sweep planner now and show its plan with the estimated gas (--dry-run: store nothing).",
            discussion: """
                Deposit addresses whose confirmed balance (by our records, checked against the node) reaches the coin's \
                chains.<name>.sweep threshold get one sweep each, to the hot address below its cap and to the cold address \
                above it. Without --dry-run the sweeps are stored and sweep-worker carries them out; addresses that wait \
                (dust rule, node behind our records) are listed with the reason. Amounts are base units. \
                It looks at every deposit address (a full pass, as each sweep-worker's first run does; between full \
                passes sweep-worker looks only at addresses with a confirmed deposit or an ended sweep since it last \
                looked), so it also shows what a lowered threshold would sweep.
                """)
        @OptionGroup var options: ProcessOptions
        @Option(help: "A chain configured in workers.yml with a sweep section.") var chain: String
        @Option(help: "Only this deposit address.") var address: String?
        @Flag(help: "Show the plan without storing it.") var dryRun = false

        func run() async throws {
            let (name, address, dryRun) = (chain, self.address, self.dryRun)
            let report = try await CLIContext.with(options) { ctx in
                let chain = try ctx.config.chain(named: name)
                let planner = try SweepPlanner(chain: chain, database: ctx.database, logger: ctx.logger)
                return try await planner.plan(address: address, dryRun: dryRun)
            }
            var t = TextTable(header: ["address", "coin", "amount", "to", "destination", "gas_estimate", "topup"])
            for p in report.planned {
                t.add([p.address, p.symbol, p.amount.description, p.destinationRole, p.destination, p.gasEstimate.description, p.topupAmount.description])
            }
            print("chain \(report.chain): \(report.planned.count) sweep(s) \(dryRun ? "would be planned (dry run)" : "planned, \(report.stored.count) stored")")
            if !report.planned.isEmpty { print(t.render(), terminator: "") }
            if !report.waiting.isEmpty {
                var w = TextTable(header: ["address", "coin", "balance", "waits because"])
                for x in report.waiting { w.add([x.address, x.symbol, x.balance.description, x.reason]) }
                print("waiting:")
                print(w.render(), terminator: "")
            }
        }
    }

    /// `gatewayctl sweep list [--chain C] [--state S] [--limit N]`.
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List sweeps, newest first, with counts by state.")
        @OptionGroup var options: ProcessOptions
        @Option(help: "Only this chain.") var chain: String?
        @Option(help: "Only this state: planned, gas_topup_sent, gas_confirmed, sweep_sent, swept, failed.") var state: String?
        @Option(help: "At most this many rows.") var limit = 50

        func validate() throws {
            let states = ["planned", "gas_topup_sent", "gas_confirmed", "sweep_sent", "swept", "failed"]
            if let state, !states.contains(state) { throw ValidationError("--state must be one of \(states.joined(separator: ", "))") }
            guard (1...10_000).contains(limit) else { throw ValidationError("--limit must be between 1 and 10000") }
        }

        func run() async throws {
            let (chain, state, limit) = (self.chain, self.state, self.limit)
            let (sweeps, counts) = try await CLIContext.with(options) { ctx in
                try await ctx.database.withConnection { c in
                    (try await Sweeps.list(chain: chain, state: state, limit: limit, on: c, logger: ctx.logger),
                     try await Sweeps.counts(on: c, logger: ctx.logger))
                }
            }
            print("sweeps by state: " + (counts.isEmpty ? "none" : counts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")))
            var t = TextTable(header: ["id", "chain", "address", "coin", "amount", "to", "state", "topup", "network_fee", "age_s", "reason"])
            for s in sweeps {
                t.add(["\(s.id)", s.chain, s.address, s.symbol, s.amount.description, s.destinationRole, s.state, s.topupAmount.description,
                       s.networkFee?.description ?? "-", String(Int(s.age)), s.stateReason ?? ""])
            }
            if !sweeps.isEmpty { print(t.render(), terminator: "") }
        }
    }
}
