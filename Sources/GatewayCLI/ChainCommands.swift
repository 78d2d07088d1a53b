import ArgumentParser
import AsyncHTTPClient
import BigInt
import ChainKit
import Foundation
import GatewayCore
import GatewayRuntime

/// `gatewayctl chain …`: ask the configured node of a chain.
struct ChainCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chain",
        abstract: "Ask a configured chain's node: its tip, an address's balance.",
        subcommands: [Tip.self, Balance.self]
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
