import ArgumentParser
import Foundation
import ChainKit
import DevChain
import GatewayCore
import GatewayRuntime
import Logging
import ServiceLifecycle

@main
struct DevChainMain: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "devchain",
        abstract: "A local chain node speaking the Ethereum JSON-RPC and TRON HTTP API subsets the gateway uses.",
        discussion: """
            One process, one loopback port, two in-memory chains, each with native
            balances and a USDT token (ERC20 / TRC20, 6 decimals) whose transfers
            emit real-format Transfer events. Keys and contract addresses derive
            from --seed; state lives in memory. The chains' time starts at
            --genesis-time (default: now) and follows the wall clock, as a real
            node's head does, so a client that stamps a TRON transaction's
            expiration from its own clock is accepted. Timed and automined blocks
            carry that clock; an explicit mine {blocks} puts each block one slot
            (3 s TRON, 12 s EVM) after its parent, moving chain time ahead.

            ENDPOINTS
              POST /                 Ethereum JSON-RPC 2.0, single or batch:
                                     eth_chainId net_version eth_blockNumber
                                     eth_getBlockByNumber eth_getBlockByHash
                                     eth_getLogs eth_getTransactionByHash
                                     eth_getTransactionReceipt eth_getCode
                                     eth_getTransactionCount eth_getBalance
                                     eth_call eth_estimateGas eth_gasPrice
                                     eth_maxPriorityFeePerGas eth_feeHistory
                                     eth_sendRawTransaction eth_syncing
              /wallet/<name>         java-tron HTTP API, GET or POST, `visible`
                                     read as java-tron reads it: getnowblock
                                     getblockbynum getblockbyid
                                     gettransactionbyid gettransactioninfobyid
                                     gettransactioninfobyblocknum
                                     broadcasttransaction broadcasthex
                                     getaccount getaccountresource
                                     triggerconstantcontract estimateenergy
                                     getchainparameters getnodeinfo
              /walletsolidity/<name> the same reads, up to head - solid depth
              GET /healthz           "ok"

            CONTROL (JSON bodies; <c> is evm or tron; amounts in base units, as
            integers or decimal strings)
              GET  /devchain/info             contracts, faucet, treasury, dev
                                              accounts, heights, dev mnemonic
              GET  /devchain/<c>/balance?address=A
              POST /devchain/<c>/fund {address, amount}
                                              native coin from the faucet
              POST /devchain/<c>/usdt {to, amount}
                   or {transfers: [{to, amount}, ...]}
                                              USDT from the treasury, one block
              POST /devchain/<c>/mine {blocks}
              POST /devchain/mine {blocks}    both chains
              POST /devchain/<c>/reorg {depth, drop_transactions}
                                              replace the last K blocks at the
                                              same heights (new hashes); their
                                              txs are re-included unless dropped
              POST /devchain/faults {mode, count, scope, hang_ms}
                                              the next N chain requests fail:
                                              http500, http429, node_error,
                                              hang or malformed; scope evm,
                                              tron or any
              POST /devchain/faults/clear
              POST /devchain/evm/limits {max_log_range, max_log_results}
                                              refuse wider eth_getLogs ranges

            Transactions are checked as the real nodes check them (EVM signature,
            EIP-155 chain id, nonce, fee cap, balance; TRON signature, TaPoS,
            expiration, duplicates, balance, bandwidth) and charged gas, energy
            and bandwidth. Dev account keys are m/44'/60'/0'/0/i and
            m/44'/195'/0'/0/i of the dev mnemonic, i = 10, 11, ... (faucet 0,
            treasury 1).
            """
    )

    @Option(help: "Address to listen on (host:port; port 0 picks a free one).") var listen = "127.0.0.1:8545"
    @Option(help: "Seed that keys, contract addresses and block hashes derive from.") var seed = "devchain"
    @Option(help: "EVM chain id.") var chainId: UInt64 = 1337
    @Option(help: "Also mine a block on both chains every N milliseconds (0 = only on demand).") var blockTimeMs = 0
    @Flag(inversion: .prefixedNo, help: "Mine a block as soon as a transaction or control operation arrives.") var automine = true
    @Option(help: "Refuse eth_getLogs ranges wider than N blocks, like a hosted provider (0 = no limit).") var evmMaxLogRange: UInt64 = 0
    @Option(help: "Refuse eth_getLogs queries matching more than N logs.") var evmMaxLogResults = 10_000
    @Option(help: "TRON /walletsolidity serves the block this many below the head.") var tronSolidDepth: UInt64 = 19
    @Option(help: "TRON energy price (getEnergyFee), sun.") var tronEnergyPrice: Int64 = 100
    @Option(help: "Pre-funded development accounts per chain.") var accounts = 10
    @Option(help: ArgumentHelp("Time of block 0: milliseconds since 1970 or ISO 8601 (2026-01-01T00:00:00Z); default now.",
                               valueName: "time")) var genesisTime: String?
    @Option(help: "Log level.") var logLevel = "info"

    /// `--genesis-time` in ms since 1970, nil when not given.
    static func genesisMillis(_ text: String?) throws -> Int64? {
        guard let text else { return nil }
        if let ms = Int64(text), ms >= 0 { return ms }
        let iso = ISO8601DateFormatter()
        iso.formatOptions = [.withInternetDateTime]
        let fractional = ISO8601DateFormatter()
        fractional.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        guard let date = iso.date(from: text) ?? fractional.date(from: text) else {
            throw ValidationError("--genesis-time: expected milliseconds since 1970 or an ISO 8601 time like 2026-01-01T00:00:00Z, found '\(text)'")
        }
        return Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
    }

    func validate() throws {
        guard blockTimeMs >= 0 else { throw ValidationError("--block-time-ms must not be negative") }
        _ = try Self.genesisMillis(genesisTime)
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level must be trace, debug, info, notice, warning, error or critical")
        }
    }

    func run() async throws {
        let address = try ListenAddress(parsing: listen, key: "--listen")
        Observability.bootstrapLogging(level: Logger.Level(rawValue: logLevel) ?? .info)
        var configured = Logger(label: "gateway.devchain")
        configured.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        let logger = configured
        let options = DevChainOptions(
            seed: seed,
            evmChainID: chainId,
            automine: automine,
            blockInterval: blockTimeMs > 0 ? .milliseconds(blockTimeMs) : nil,
            evmMaxLogRange: evmMaxLogRange > 0 ? evmMaxLogRange : nil,
            evmMaxLogResults: evmMaxLogResults,
            tronSolidDepth: tronSolidDepth,
            tronEnergyPrice: tronEnergyPrice,
            devAccounts: accounts,
            genesisTimeMillis: try Self.genesisMillis(genesisTime)
        )
        let chain = DevChain(options: options)
        let evmUSDT = ChainKind.evm.format(chain.evm.usdt)
        let tronUSDT = ChainKind.tron.format(chain.tron.usdt)
        let app = chain.application(listen: address, logger: logger) { port in
            logger.info(
                "devchain listening on \(address.host):\(port)",
                metadata: [
                    "evm.chain_id": "\(options.evmChainID)", "evm.usdt": "\(evmUSDT)", "tron.usdt": "\(tronUSDT)",
                ]
            )
        }
        try await StageRunner.runServices([.init(service: app)], logger: logger)
    }
}
