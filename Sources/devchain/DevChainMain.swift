import ArgumentParser
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
            One process, one loopback port, two in-memory chains, each with native balances and a USDT token \
            (ERC20 / TRC20, 6 decimals) whose transfers emit real-format Transfer events. Everything (keys, \
            contract addresses, block hashes, timestamps) is deterministic from --seed; state lives in memory.

            ENDPOINTS
              POST /                       Ethereum JSON-RPC 2.0 (single or batch): eth_chainId, net_version,
                                           eth_blockNumber, eth_getBlockByNumber/ByHash, eth_getLogs,
                                           eth_getTransactionByHash, eth_getTransactionReceipt,
                                           eth_getTransactionCount, eth_getBalance, eth_call, eth_estimateGas,
                                           eth_gasPrice, eth_maxPriorityFeePerGas, eth_feeHistory,
                                           eth_sendRawTransaction, eth_getCode, eth_syncing, web3_clientVersion
              /wallet/<name>               java-tron HTTP API (GET or POST, `visible` as java-tron reads it):
                                           getnowblock, getblockbynum, getblockbyid, gettransactionbyid,
                                           gettransactioninfobyid, gettransactioninfobyblocknum,
                                           broadcasttransaction, broadcasthex, getaccount, getaccountresource,
                                           triggerconstantcontract, estimateenergy, getchainparameters
              /walletsolidity/<name>       the same reads, answering only up to head - --tron-solid-depth
              GET /healthz                 "ok"

            CONTROL (JSON bodies; <c> is evm or tron; amounts are base units as integers or decimal strings)
              GET  /devchain/info                      chain ids, USDT contracts, faucet, treasury, dev accounts,
                                                       heights, the dev mnemonic
              GET  /devchain/<c>/balance?address=A     native and USDT balance
              POST /devchain/<c>/fund {address, amount}           native coin from the faucet (a real tx)
              POST /devchain/<c>/usdt {to, amount}                USDT from the treasury (a real transfer tx);
                   or {transfers: [{to, amount}, ...]}            several, in one block
              POST /devchain/<c>/mine {blocks}                    mine N blocks (default 1)
              POST /devchain/mine {blocks}                        mine N blocks on both chains
              POST /devchain/<c>/reorg {depth, drop_transactions} replace the last K blocks at the same heights
                                                                  (new hashes); their txs are re-included
                                                                  unless drop_transactions is true
              POST /devchain/faults {mode, count, scope, hang_ms} the next N chain requests fail: mode http500,
                                                                  http429, node_error (-32005 / "lack of computing
                                                                  resources"), hang (no answer for hang_ms,
                                                                  default 30000) or malformed; scope evm, tron
                                                                  or any
              POST /devchain/faults/clear                         drop queued faults
              POST /devchain/evm/limits {max_log_range, max_log_results}
                                                                  refuse wider eth_getLogs ranges (-32005 "block
                                                                  range is too wide"; null = no limit)

            Accepted transactions are checked like the real nodes do: EVM signature, EIP-155 chain id, nonce,
            fee cap vs base fee, balance for gas * price + value; TRON signature, reference block (TaPoS),
            expiration, duplicates, balances, bandwidth. Gas (21000 for ETH, ~41000-63000 for USDT) and TRON
            energy/bandwidth are charged. Dev account keys: m/44'/60'/0'/0/i and m/44'/195'/0'/0/i of the dev
            mnemonic, i = 10 ... (faucet 0, treasury 1).
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
    @Option(help: "Log level.") var logLevel = "info"

    func validate() throws {
        guard blockTimeMs >= 0 else { throw ValidationError("--block-time-ms must not be negative") }
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
            devAccounts: accounts
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
