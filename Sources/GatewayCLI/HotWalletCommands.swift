import ArgumentParser
import BigInt
import ChainKit
import Foundation
import GatewayCore
import GatewayRuntime
import GatewayServices
import GatewayStages
import Logging
import PostgresNIO

extension LedgerCommand {
    /// `gatewayctl ledger reconcile --chain C [--json]`.
    struct Reconcile: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Compare what our records say every address of a chain holds with the node, and the ledger with the records (exit 1 on any difference).",
            discussion: """
                For every deposit and hot address of the chain and every coin of it: expected = deposits and hot wallet \
                receipts in blocks, less what our transactions sent (in a block, not failed) and their settled network fees; \
                node = balanceOf / the native balance now. Per coin, the ledger's chain account must equal confirmed \
                deposits + booked hot receipts − confirmed payments (− network fees); the native coin's sweep_gas account \
                (top-ups waiting on deposit addresses) must equal confirmed top-ups − token sweep fees. Gas addresses are \
                covered like hot addresses. Transfers in blocks the scanner has \
                not reached yet show as differences until it does (the report gives both heights). Pairs that are zero on \
                both sides are left out. Differences count address/coin pairs and coins whose ledger check differs.
                """)
        @OptionGroup var options: ProcessOptions
        @Option(help: "A chain configured in workers.yml.") var chain: String
        @Flag(help: "Print the report as JSON (amounts are base-unit strings).") var json = false
        @Option(help: "Node requests at a time.") var concurrency = 16

        func validate() throws {
            guard (1...256).contains(concurrency) else { throw ValidationError("--concurrency must be between 1 and 256") }
        }

        func run() async throws {
            let (name, concurrency) = (chain, self.concurrency)
            let report: ReconciliationReport
            do {
                report = try await CLIContext.with(options) { ctx in
                    let chain = try ctx.config.chain(named: name)
                    return try await Reconciliation.run(chain: chain.name, node: ChainStage.nodeClient(for: chain, logger: ctx.logger), database: ctx.database,
                                                        concurrency: concurrency, logger: ctx.logger)
                }
            } catch let e as ServiceError {
                throw CLIError(e.description)
            } catch let e as ChainNodeError {
                throw CLIError("node: \(e)")
            }
            print(json ? Self.json(report).serialized : Self.text(report), terminator: json ? "\n" : "")
            if !report.isClean { throw ExitCode(1) }
        }

        static func summary(_ r: ReconciliationReport) -> String {
            "addresses \(r.addresses), coins \(r.coins), differences \(r.differences.count + r.ledgerDifferences.count)"
        }

        static func text(_ r: ReconciliationReport) -> String {
            var out = "chain \(r.chain): node tip \(r.nodeTip), scanned to \(r.scannedHeight.map(String.init) ?? "-")\n"
            let diffs = r.differences
            if diffs.isEmpty {
                out += "every address holds what our records expect\n"
            } else {
                var t = TextTable(header: ["address", "role", "merchant", "coin", "expected", "node", "difference"])
                for d in diffs {
                    t.add([d.address, d.role, "\(d.merchantID)", d.symbol, d.expected.description, d.node.description,
                           (d.difference > 0 ? "+" : "") + d.difference.description])
                }
                out += t.render()
            }
            var ledger = TextTable(header: ["coin", "ledger (−chain − sweep_gas)", "records", "difference"])
            for l in r.ledger { ledger.add([l.symbol, l.ledger.description, l.records.description, l.difference == 0 ? "0" : l.difference.description]) }
            out += "ledger against records (base units)\n" + ledger.render()
            return out + summary(r) + "\n"
        }

        static func json(_ r: ReconciliationReport) -> JSONValue {
            func amount(_ v: BigInt) -> JSONValue { .string(v.description) }
            func row(_ b: AddressBalance) -> JSONValue {
                .object([("address", .string(b.address)), ("role", .string(b.role)), ("merchant", .int(b.merchantID)), ("coin", .string(b.symbol)),
                         ("coin_id", .int(b.coinID)), ("expected", amount(b.expected)), ("node", amount(b.node)), ("difference", amount(b.difference))])
            }
            return .object([
                ("chain", .string(r.chain)), ("node_tip", .int(r.nodeTip)), ("scanned_height", r.scannedHeight.map { .int($0) } ?? .null),
                ("addresses", .int(r.addresses)), ("coins", .int(r.coins)),
                ("differences", .int(r.differences.count + r.ledgerDifferences.count)), ("clean", .bool(r.isClean)),
                ("address_differences", .array(r.differences.map(row))),
                ("ledger", .array(r.ledger.map {
                    .object([("coin", .string($0.symbol)), ("coin_id", .int($0.coinID)), ("ledger", amount($0.ledger)), ("records", amount($0.records)),
                             ("difference", amount($0.difference))])
                })),
                ("balances", .array(r.balances.map(row))),
            ])
        }
    }
}

extension WalletCommand {
    /// `gatewayctl wallet show [--merchant M] [--chain C]`.
    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show wallets' hot addresses with their balances on the node per coin against the low-water mark (LOW below it).",
            discussion: """
                Node balances are read now; "records" is what our records expect the hot address to hold (monitor.hot_wallets), \
                "in flight" what its signed or broadcast payments still take. Low-water marks: chains.<name>.hot_wallet_low_water.
                """)
        @OptionGroup var options: ProcessOptions
        @Option(help: "Only this merchant.") var merchant: Int64?
        @Option(help: "Only this chain.") var chain: String?

        func run() async throws {
            let (m, only) = (merchant, chain)
            let text = try await CLIContext.with(options) { ctx in
                let rows = try await HotWalletRows.read(ctx.database, merchant: m, chain: only)
                guard !rows.isEmpty else { return "no wallets\n" }
                var gasAddresses: [Int64: String] = [:]
                for try await (id, gas) in try await ctx.database.query("""
                    SELECT id, gas_address FROM gateway.wallets WHERE gas_address IS NOT NULL
                    """).decode((Int64, String).self) { gasAddresses[id] = gas }
                var out = ""
                var clients: [String: any ChainNodeClient] = [:]
                var current: Int64?
                var table = TextTable(header: [])
                func flush() { if current != nil { out += table.render() } }
                for r in rows {
                    if r.walletID != current {
                        flush()
                        current = r.walletID
                        out += "\(out.isEmpty ? "" : "\n")merchant \(r.merchantID) on \(r.chain), account \(r.accountIndex.map(String.init) ?? "- (xpub)"), hot address \(r.hotAddress)\n"
                        if let gas = gasAddresses[r.walletID] {
                            let chain = ctx.config.chains.first { $0.name == r.chain }
                            let used = chain?.sweep?.gasWallet == true ? "funds this chain's sweep top-ups" : "unused: chains.\(r.chain).sweep.gas_wallet is off"
                            var held = ""
                            if let chain, let account = try? chain.kind.parseAddress(gas) {
                                let client = clients[chain.name] ?? ChainStage.nodeClient(for: chain, logger: ctx.logger)
                                clients[chain.name] = client
                                held = (try? await client.nativeBalance(of: account).amount).map { ", holds \(CoinAmount.format($0, decimals: chain.nativeDecimals)) \(chain.nativeSymbol)" }
                                    ?? ", node error"
                            }
                            out += "  gas address \(gas) (…/account'/2/0; \(used)\(held))\n"
                        }
                        table = TextTable(header: ["coin", "node", "records", "in flight", "low water", ""])
                    }
                    let chain = ctx.config.chains.first { $0.name == r.chain }
                    var nodeText = "chain not configured"
                    var flag = ""
                    if let chain {
                        let client = clients[chain.name] ?? ChainStage.nodeClient(for: chain, logger: ctx.logger)
                        clients[chain.name] = client
                        do {
                            let account = try chain.kind.parseAddress(r.hotAddress)
                            let balance: BigUInt
                            if r.isToken {
                                balance = try await client.tokenBalance(of: account, token: try chain.kind.parseAddress(r.coinType))
                            } else {
                                balance = try await client.nativeBalance(of: account).amount
                            }
                            nodeText = CoinAmount.format(balance, decimals: r.decimals)
                            if let low = chain.lowWater(r.symbol), balance < low { flag = "LOW" }
                        } catch {
                            nodeText = "node error: \(String("\(error)".prefix(60)))"
                            flag = "?"
                        }
                    }
                    let low = chain?.lowWater(r.symbol).map { CoinAmount.format($0, decimals: r.decimals) } ?? "-"
                    table.add([r.symbol, nodeText, r.expectedText, r.inFlightText, low, flag])
                }
                flush()
                return out
            }
            print(text, terminator: "")
        }
    }
}

/// Rows of `monitor.hot_wallets`.
struct HotWalletRows: Sendable {
    var walletID: Int64
    var merchantID: Int64
    var chain: String
    var hotAddress: String
    var accountIndex: Int?
    var symbol: String
    var coinType: String
    var decimals: Int
    var isToken: Bool
    var expected: BigInt
    var inFlight: BigInt
    var inFlightTxs: Int64

    /// Whole coins (negative when our records are off).
    static func format(_ v: BigInt, decimals: Int) -> String {
        (v < 0 ? "-" : "") + CoinAmount.format(v.magnitude, decimals: decimals)
    }

    var expectedText: String { Self.format(expected, decimals: decimals) }
    var inFlightText: String { inFlight == 0 ? "0" : "\(Self.format(inFlight, decimals: decimals)) (\(inFlightTxs) tx)" }

    static func read(_ database: Database, merchant: Int64?, chain: String?) async throws -> [HotWalletRows] {
        var out: [HotWalletRows] = []
        for try await r in try await database.query("""
            SELECT h.wallet_id, h.merchant_id, h.chain, h.hot_address, coalesce(h.account_index, -1), h.symbol, k.coin_type, h.decimals, h.is_token,
                   h.expected::text, h.in_flight::text, h.in_flight_txs
            FROM monitor.hot_wallets h JOIN gateway.coins k ON k.id = h.coin_id
            WHERE (\(merchant)::int8 IS NULL OR h.merchant_id = \(merchant)) AND (\(chain)::text IS NULL OR h.chain = \(chain))
            ORDER BY h.merchant_id, h.chain, h.is_token, h.symbol
            """).decode((Int64, Int64, String, String, Int32, String, String, Int32, Bool, String, String, Int64).self) {
            out.append(HotWalletRows(walletID: r.0, merchantID: r.1, chain: r.2, hotAddress: r.3, accountIndex: r.4 < 0 ? nil : Int(r.4), symbol: r.5,
                                     coinType: r.6, decimals: Int(r.7), isToken: r.8, expected: BigInt(r.9) ?? 0, inFlight: BigInt(r.10) ?? 0,
                                     inFlightTxs: r.11))
        }
        return out
    }

    /// `gatewayctl status`'s hot wallet section: our records only, no node calls. A wallet is LOW when
    /// what it should hold, less what is in flight, is below the chain's low-water mark for the coin.
    static func statusSection(_ database: Database, chains: [ChainConfig]) async throws -> String {
        let rows = try await read(database, merchant: nil, chain: nil)
        guard !rows.isEmpty else { return "\nhot wallets\nnone attached\n" }
        var t = TextTable(header: ["merchant", "chain", "hot address", "coin", "records", "in flight", "low water", "sweep cap", ""])
        for r in rows {
            let chain = chains.first { $0.name == r.chain }
            let low = chain?.lowWater(r.symbol)
            let cap = chain?.sweep?.coins[r.symbol.uppercased()]?.hotCap
            var flags: [String] = []
            if let low, r.expected - r.inFlight < BigInt(low) { flags.append("LOW") }
            if let cap, r.expected >= BigInt(cap) { flags.append("AT CAP (sweeps go cold)") }
            t.add(["\(r.merchantID)", r.chain, r.hotAddress, r.symbol, r.expectedText, r.inFlightText,
                   low.map { CoinAmount.format($0, decimals: r.decimals) } ?? "-", cap.map { CoinAmount.format($0, decimals: r.decimals) } ?? "-",
                   flags.joined(separator: ", ")])
        }
        return "\nhot wallets (from our records; gatewayctl wallet show asks the node)\n" + t.render()
    }
}
