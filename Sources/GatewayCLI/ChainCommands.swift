import ArgumentParser
import AsyncHTTPClient
import BigInt
import ChainKit
import Foundation
import GatewayCore
import GatewayRuntime
import GatewayServices
import PostgresNIO

/// `gatewayctl chain …`: ask the configured node of a chain.
struct ChainCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chain",
        abstract: "Ask a configured chain's node (tip, balances); see and acknowledge deep-reorg alerts.",
        subcommands: [Tip.self, Balance.self, Alerts.self, AckReorg.self, Rescan.self]
    )

    /// The node client of a configured chain.
    static func client(for chain: ChainConfig) -> any ChainNodeClient {
        switch chain.kind {
        case .evm: return EVMNodeClient(options: chain.nodeClientOptions)
        case .tron: return TronNodeClient(options: chain.nodeClientOptions)
        }
    }

    struct Tip: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the node's latest block height and hash (evm: also checks the node's chain id against chain_id)."
        )

        @OptionGroup var options: ProcessOptions
        @Option(help: "A chain configured in workers.yml (e.g. tron, ethereum).") var chain: String

        func run() async throws {
            let config = try options.loadConfig()
            let chain = try config.chain(named: self.chain)
            let client = ChainCommand.client(for: chain)
            if let evm = client as? EVMNodeClient, let expected = chain.chainID {
                let actual = try await evm.chainID()
                guard actual == expected else {
                    throw ValidationError("the node of chain \(chain.name) reports chain id \(actual), the configuration says \(expected)")
                }
            }
            let height = try await client.tipHeight()
            let block = try await client.blockRefs(height...height)[0]
            print("height \(height)")
            print("hash   \(block.hash)")
            print("time   \(ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(block.timestampMillis) / 1000)))")
        }
    }

    struct Balance: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print an address's native balance, or a configured token's with --token.")

        @OptionGroup var options: ProcessOptions
        @Option(help: "A chain configured in workers.yml (e.g. tron, ethereum).") var chain: String
        @Option(help: "The address (the chain's own format).") var address: String
        @Option(help: "A token symbol configured for the chain (e.g. USDT); without it, the native coin.") var token: String?

        func run() async throws {
            let config = try options.loadConfig()
            let chain = try config.chain(named: self.chain)
            let account: AccountID
            do {
                account = try chain.kind.parseAddress(address)
            } catch {
                throw ValidationError("--address: \(error)")
            }
            let client = ChainCommand.client(for: chain)
            if let symbol = token {
                guard let token = chain.token(symbol) else {
                    throw ValidationError(
                        "chain \(chain.name) has no token \(symbol); configured: \(chain.tokens.map(\.symbol).joined(separator: ", "))"
                    )
                }
                let amount = try await client.tokenBalance(of: account, token: token.contract)
                print("\(Units.format(amount, decimals: token.decimals)) \(token.symbol) (\(amount) base units)")
            } else {
                let balance = try await client.nativeBalance(of: account)
                print(
                    "\(Units.format(balance.amount, decimals: chain.nativeDecimals)) \(chain.nativeSymbol) (\(balance.amount) base units)"
                        + (balance.accountExists ? "" : "; account not activated")
                )
            }
        }
    }
}

extension ChainCommand {
    struct Alerts: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List reorganisations deeper than the confirmation depth (open ones; --all for acknowledged too).")

        @OptionGroup var options: ProcessOptions
        @Flag(help: "Include acknowledged alerts.") var all = false

        func run() async throws {
            let all = self.all
            let rows = try await read(options) { c, l in
                var out: [[String]] = []
                for try await r in try await c.query("""
                    SELECT id, chain, fork_height, depth, confirmations, old_hash, new_hash, array_to_string(affected_deposits, ','), detail,
                           detected_at, coalesce(acknowledged_by || ' at ' || acknowledged_at::text, '')
                    FROM gateway.reorg_alerts WHERE \(all) OR acknowledged_at IS NULL ORDER BY id
                    """, logger: l).decode((Int64, String, Int64, Int32, Int32, String, String, String, String, Date, String).self) {
                    out.append(["\(r.0)", r.1, "\(r.2)", "\(r.3)", "\(r.4)", r.7.isEmpty ? "-" : r.7, ISO8601DateFormatter().string(from: r.9),
                                r.10.isEmpty ? "OPEN" : r.10, r.8])
                }
                return out
            }
            guard !rows.isEmpty else { return print(all ? "no reorg alerts" : "no open reorg alerts") }
            var t = TextTable(header: ["id", "chain", "fork at", "depth", "confirmations", "credited deposits affected", "detected", "state", "detail"])
            for r in rows { t.add(r) }
            print(t.render(), terminator: "")
        }
    }

    struct Rescan: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make the chain's deposit scanner start again from a block (recorded in the audit log).",
            discussion: """
                Sets the scanner's position to just before --from and forgets the stored block hashes; the active \
                chain-worker notices at the chain's next block (or its next lease renewal) and scans forward from there. Deposits already recorded are \
                not recorded or credited twice (they are unique per chain, transaction and log index). Use it after \
                pointing a chain at a new node or network, or to look at old blocks again.
                """)

        @OptionGroup var options: ProcessOptions
        @Option(help: "A chain configured in workers.yml.") var chain: String
        @Option(help: "The first block to scan.") var from: Int64

        func validate() throws {
            guard from >= 0 else { throw ValidationError("--from must be a block height (0 or more)") }
        }

        func run() async throws {
            let config = try options.loadConfig()
            _ = try config.chain(named: chain)
            let (chain, from) = (self.chain, self.from)
            try await write(options) { c, l in
                try await c.query("""
                    INSERT INTO gateway.chain_scanners (chain, scanned_height) VALUES (\(chain), \(from - 1))
                    ON CONFLICT (chain) DO UPDATE SET scanned_height = excluded.scanned_height, node_tip = NULL, updated_at = now()
                    """, logger: l)
                try await c.query("DELETE FROM gateway.chain_blocks WHERE chain = \(chain)", logger: l)
                try await Audit.record(actor: cliActor, action: "chain.rescan", target: "chain:\(chain)", detail: ["from": .string(String(from))],
                                       on: c, logger: l)
            }
            print("chain \(chain) will be scanned again from block \(from); deposits already recorded are not recorded twice")
        }
    }

    struct AckReorg: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "ack-reorg",
            abstract: "Acknowledge a deep-reorg alert once its credited deposits were checked on chain (recorded in the audit log).")

        @OptionGroup var options: ProcessOptions
        @Option(help: "The alert's id (gatewayctl chain alerts).") var id: Int64
        @Option(help: "Who checked it (recorded).") var by: String
        @Option(help: "What was found (recorded).") var note: String

        func validate() throws {
            guard id > 0 else { throw ValidationError("--id must be a positive alert id") }
            guard !by.trimmingCharacters(in: .whitespaces).isEmpty, !note.trimmingCharacters(in: .whitespaces).isEmpty else {
                throw ValidationError("--by and --note must not be empty")
            }
        }

        func run() async throws {
            let (id, by, note) = (self.id, self.by, self.note)
            let done = try await write(options) { c, l in
                var changed = false
                for try await _ in try await c.query("""
                    UPDATE gateway.reorg_alerts SET acknowledged_at = now(), acknowledged_by = \(by) WHERE id = \(id) AND acknowledged_at IS NULL RETURNING id
                    """, logger: l) { changed = true }
                if changed {
                    try await Audit.record(actor: "cli:\(by)", action: "reorg.acknowledge", target: "reorg_alert:\(id)", detail: ["note": .string(note)],
                                           on: c, logger: l)
                }
                return changed
            }
            guard done else {
                print("alert \(id) does not exist or is already acknowledged; nothing changed")
                throw ExitCode(1)
            }
            print("alert \(id) acknowledged by \(by)")
        }
    }
}

/// Base units ↔ decimal text.
enum Units {
    /// `amount` / 10^decimals as decimal text without trailing zeros (`1500000`, 6 → `1.5`).
    static func format(_ amount: BigUInt, decimals: Int) -> String {
        guard decimals > 0 else { return String(amount) }
        let scale = BigUInt(10).power(decimals)
        let (whole, fraction) = amount.quotientAndRemainder(dividingBy: scale)
        guard fraction > 0 else { return String(whole) }
        var digits = String(fraction)
        digits = String(repeating: "0", count: decimals - digits.count) + digits
        while digits.hasSuffix("0") { digits.removeLast() }
        return "\(whole).\(digits)"
    }
}
