import BigInt
import ChainKit
import Foundation

/// A token the gateway handles on a chain (USDT), from `chains.<name>.tokens.<SYMBOL>`.
public struct TokenConfig: Sendable, Equatable {
    /// The symbol, as written in the file (e.g. `USDT`).
    public var symbol: String
    /// The contract's account id.
    public var contract: AccountID
    /// Decimal places of the token's base unit (USDT: 6).
    public var decimals: Int

    /// A token.
    public init(symbol: String, contract: AccountID, decimals: Int) {
        self.symbol = symbol
        self.contract = contract
        self.decimals = decimals
    }
}

/// One chain the gateway watches and pays on, from `chains.<name>`.
public struct ChainConfig: Sendable, Equatable {
    /// The section name (`tron`, `ethereum`, …), used on the command line and in the database.
    public var name: String
    /// Node protocol and address format.
    public var kind: ChainKind
    /// The node URL (never logged: it may carry an API key).
    public var nodeURL: String
    /// EVM `eth_chainId` the node must report (required for `evm`).
    public var chainID: UInt64?
    /// Blocks on top of a deposit's block before it is credited.
    public var confirmations: Int
    /// The chain's block interval (how often to poll).
    public var blockTime: Duration
    /// Deadline of one node request.
    public var requestTimeout: Duration
    /// Attempts of a node request on transient failures.
    public var retryAttempts: Int
    /// Widest `eth_getLogs` range to ask for (EVM).
    public var maxLogRange: UInt64
    /// Most calls in one JSON-RPC batch (EVM).
    public var maxBatchSize: Int
    /// Extra request headers (the API key header, resolved from the environment; never logged).
    public var headers: [String: String]
    /// Tokens by symbol, in file order.
    public var tokens: [TokenConfig]
    /// Where the scanner starts on its very first run (nil: the node's tip at that moment).
    public var scanFrom: UInt64?
    /// Most blocks read per scan step (catching up goes this many at a time).
    public var scanBatch: Int
    /// How often the scanner asks the node for its tip when it is caught up.
    public var pollInterval: Duration
    /// How automatic payments are signed and followed on this chain (`payments:`).
    public var payments: PaymentConfig = PaymentConfig()
    /// Hot wallet low-water marks per coin symbol (upper case), in base units, from
    /// `hot_wallet_low_water: {USDT: "1000", TRX: "500"}` (whole coins in the file). A hot wallet
    /// holding less of a coin is shown LOW by `gatewayctl status` and `gatewayctl wallet show`.
    public var hotWalletLowWater: [String: BigUInt] = [:]
    /// Aggregation sweeps of this chain's deposit addresses (`sweep:`); nil: this chain is not swept.
    public var sweep: SweepConfig?

    /// A chain with defaults for everything but its identity.
    public init(
        name: String,
        kind: ChainKind,
        nodeURL: String,
        chainID: UInt64? = nil,
        confirmations: Int,
        blockTime: Duration,
        requestTimeout: Duration = .seconds(10),
        retryAttempts: Int = 5,
        maxLogRange: UInt64 = 2000,
        maxBatchSize: Int = 50,
        headers: [String: String] = [:],
        tokens: [TokenConfig] = [],
        scanFrom: UInt64? = nil,
        scanBatch: Int = 100,
        pollInterval: Duration? = nil
    ) {
        self.name = name
        self.kind = kind
        self.nodeURL = nodeURL
        self.chainID = chainID
        self.confirmations = confirmations
        self.blockTime = blockTime
        self.requestTimeout = requestTimeout
        self.retryAttempts = retryAttempts
        self.maxLogRange = maxLogRange
        self.maxBatchSize = maxBatchSize
        self.headers = headers
        self.tokens = tokens
        self.scanFrom = scanFrom
        self.scanBatch = scanBatch
        self.pollInterval = pollInterval ?? Self.defaultPollInterval(blockTime: blockTime)
    }

    /// A quarter of the block time, at most one second.
    public static func defaultPollInterval(blockTime: Duration) -> Duration { min(blockTime / 4, .seconds(1)) }

    /// The token with `symbol` (case-insensitive).
    public func token(_ symbol: String) -> TokenConfig? {
        tokens.first { $0.symbol.caseInsensitiveCompare(symbol) == .orderedSame }
    }

    /// The low-water mark of a coin (by symbol, case-insensitive), in base units.
    public func lowWater(_ symbol: String) -> BigUInt? { hotWalletLowWater[symbol.uppercased()] }

    /// The low-water marks in whole coins by symbol (upper case), for metrics and dashboards: a `Double` is
    /// close enough to compare with, while every decision uses the exact `hotWalletLowWater`.
    public var hotWalletLowWaterCoins: [String: Double] {
        var out: [String: Double] = [:]
        for (symbol, units) in hotWalletLowWater {
            let decimals = token(symbol)?.decimals ?? (symbol.caseInsensitiveCompare(nativeSymbol) == .orderedSame ? nativeDecimals : nil)
            guard let decimals else { continue }
            out[symbol.uppercased()] = Double(units) / pow(10, Double(decimals))
        }
        return out
    }

    /// Decimal places of the native coin (ETH 18, TRX 6).
    public var nativeDecimals: Int { kind == .evm ? 18 : 6 }

    /// The native coin's usual symbol.
    public var nativeSymbol: String { kind == .evm ? "ETH" : "TRX" }

    /// Options for a `ChainNodeClient` of this chain.
    public var nodeClientOptions: NodeClientOptions {
        NodeClientOptions(
            url: nodeURL,
            chain: name,
            requestTimeout: requestTimeout,
            retry: RetryPolicy(maxAttempts: retryAttempts, baseDelay: .milliseconds(200), maxDelay: .seconds(5)),
            headers: headers,
            maxBatchSize: maxBatchSize,
            maxLogBlockRange: maxLogRange
        )
    }

    /// Reads every `chains.<name>` section.
    static func readAll(_ chains: ConfigReader, environment: [String: String]) throws -> [ChainConfig] {
        var out: [ChainConfig] = []
        for name in chains.keys {
            guard name.range(of: "^[a-z][a-z0-9_-]{0,31}$", options: .regularExpression) != nil else {
                _ = chains.value(name)
                throw ConfigError(key: chains.keyPath(name), "a chain name is lower-case letters, digits, '-' or '_' (at most 32)")
            }
            out.append(try read(name: name, try chains.section(name), environment: environment))
        }
        try chains.finish()
        return out
    }

    static func read(name: String, _ r: ConfigReader, environment: [String: String]) throws -> ChainConfig {
        let kindText = try r.string("kind")
        guard let kind = ChainKind(rawValue: kindText) else { throw ConfigError(key: r.keyPath("kind"), "expected tron or evm, found '\(kindText)'") }
        let url = try r.string("node_url")
        guard let components = URLComponents(string: url), let scheme = components.scheme, ["http", "https"].contains(scheme),
            let host = components.host, !host.isEmpty
        else {
            throw ConfigError(key: r.keyPath("node_url"), "expected an http:// or https:// URL")
        }
        var chain = ChainConfig(
            name: name,
            kind: kind,
            nodeURL: url,
            confirmations: 0,
            blockTime: .seconds(3)
        )
        if let id = try r.optionalString("chain_id") {
            guard kind == .evm else { throw ConfigError(key: r.keyPath("chain_id"), "only evm chains have a chain id") }
            guard let n = UInt64(id.replacingOccurrences(of: "_", with: "")), n > 0 else {
                throw ConfigError(key: r.keyPath("chain_id"), "expected a positive whole number, found '\(id)'")
            }
            chain.chainID = n
        } else if kind == .evm {
            throw ConfigError(key: r.keyPath("chain_id"), "is required for an evm chain (the node's eth_chainId, e.g. 1 for Ethereum mainnet)")
        }
        chain.confirmations = try r.int("confirmations", in: 0...10_000)
        chain.blockTime = try r.duration("block_time", minimum: .milliseconds(100))
        chain.pollInterval = try r.duration("poll_interval", default: Self.defaultPollInterval(blockTime: chain.blockTime), minimum: .milliseconds(10))
        chain.scanBatch = try r.int("scan_batch", default: chain.scanBatch, in: 1...10_000)
        if let from = try r.optionalString("scan_from") {
            guard let n = UInt64(from.replacingOccurrences(of: "_", with: "")) else {
                throw ConfigError(key: r.keyPath("scan_from"), "expected a block height (a whole number), found '\(from)'")
            }
            chain.scanFrom = n
        }
        chain.requestTimeout = try r.duration("request_timeout", default: chain.requestTimeout, minimum: .milliseconds(50))
        chain.retryAttempts = try r.int("retry_attempts", default: chain.retryAttempts, in: 1...100)
        if kind == .evm {
            chain.maxLogRange = UInt64(try r.int("max_log_range", default: Int(chain.maxLogRange), in: 1...1_000_000))
            chain.maxBatchSize = try r.int("max_batch_size", default: chain.maxBatchSize, in: 1...1000)
        }
        if let header = try r.optionalString("api_key_header") {
            // The environment variable wins; under systemd the key comes as a credential (LoadCredential=).
            let variable = try r.optionalString("api_key_env")
            let credential = try r.optionalString("api_key_credential")
            if let credential { try SystemdCredentials.validate(credential, key: r.keyPath("api_key_credential")) }
            if let variable, let key = environment[variable], !key.isEmpty {
                chain.headers[header] = key
            } else if let credential, let key = try SystemdCredentials.read(credential, key: r.keyPath("api_key_credential"), environment: environment) {
                chain.headers[header] = key.trimmingCharacters(in: .whitespacesAndNewlines)
            } else if let variable {
                throw ConfigError(key: r.keyPath("api_key_env"), "the environment variable \(variable) is not set"
                    + (credential.map { " (nor is the credential '\($0)' given: \(SystemdCredentials.directoryVariable) is not set)" } ?? ""))
            } else if let credential {
                throw ConfigError(key: r.keyPath("api_key_credential"), "credential '\(credential)' cannot be read: "
                    + "\(SystemdCredentials.directoryVariable) is not set (not started by systemd with LoadCredential=\(credential):PATH)")
            } else {
                throw ConfigError(key: r.keyPath("api_key_env"), "api_key_header needs api_key_env or api_key_credential")
            }
        } else if try r.optionalString("api_key_env") != nil || r.optionalString("api_key_credential") != nil {
            throw ConfigError(key: r.keyPath("api_key_header"), "is required with api_key_env or api_key_credential (e.g. TRON-PRO-API-KEY)")
        }
        let tokens = try r.section("tokens")
        for symbol in tokens.keys {
            let t = try tokens.section(symbol)
            let contractText = try t.string("contract")
            let contract: AccountID
            do {
                contract = try kind.parseAddress(contractText)
            } catch {
                throw ConfigError(key: t.keyPath("contract"), "not a valid \(kind) address: \(error)")
            }
            chain.tokens.append(TokenConfig(symbol: symbol, contract: contract, decimals: try t.int("decimals", in: 0...36)))
            try t.finish()
        }
        try tokens.finish()
        chain.payments = try PaymentConfig.read(try r.section("payments"), kind: kind, blockTime: chain.blockTime)
        chain.hotWalletLowWater = try readLowWater(try r.section("hot_wallet_low_water"), chain: chain)
        if let sweep = try r.optionalSection("sweep") { chain.sweep = try SweepConfig.read(sweep, chain: chain) }
        try r.finish()
        return chain
    }

    /// The decimals of a coin of this chain by symbol (a token or the native coin), or nil.
    public func decimals(of symbol: String) -> Int? {
        if let token = token(symbol) { return token.decimals }
        return symbol.caseInsensitiveCompare(nativeSymbol) == .orderedSame ? nativeDecimals : nil
    }

    /// `hot_wallet_low_water`: per coin symbol (a token of this chain or its native coin), a whole-coin
    /// amount with at most the coin's decimals, in base units.
    static func readLowWater(_ r: ConfigReader, chain: ChainConfig) throws -> [String: BigUInt] {
        var out: [String: BigUInt] = [:]
        for symbol in r.keys {
            let key = r.keyPath(symbol)
            let decimals: Int
            if let token = chain.token(symbol) {
                decimals = token.decimals
            } else if symbol.caseInsensitiveCompare(chain.nativeSymbol) == .orderedSame {
                decimals = chain.nativeDecimals
            } else {
                _ = r.value(symbol)
                let known = chain.tokens.map(\.symbol) + [chain.nativeSymbol]
                throw ConfigError(key: key, "not a coin of this chain; expected one of \(known.joined(separator: ", "))")
            }
            let text = try r.string(symbol)
            let units: BigUInt
            if text.allSatisfy({ $0 == "0" || $0 == "." }) && text.contains("0") {
                units = 0
            } else {
                do {
                    units = try CoinAmount.parse(text.replacingOccurrences(of: "_", with: ""), decimals: decimals)
                } catch .tooManyDecimals(let d) {
                    throw ConfigError(key: key, "at most \(d) decimal places, found '\(text)'")
                } catch {
                    throw ConfigError(key: key, "expected a whole-coin amount such as \"1000\" or \"0.5\", found '\(text)'")
                }
            }
            guard out.updateValue(units, forKey: symbol.uppercased()) == nil else { throw ConfigError(key: key, "given twice") }
        }
        try r.finish()
        return out
    }
}

/// How payments are signed and followed on one chain (`chains.<name>.payments`).
public struct PaymentConfig: Sendable, Equatable {
    /// EVM: the most `maxFeePerGas` (wei) any transaction is signed with, replacements included.
    public var maxFeePerGas: BigUInt = BigUInt(500) * BigUInt(1_000_000_000)
    /// EVM: a transaction still unmined this long after it was first broadcast is replaced on the same
    /// nonce with fees raised by `replace_bump_percent` (at least geth's 10 %), under the cap.
    public var replaceAfter: Duration = .seconds(180)
    /// EVM: how much each replacement raises both fee caps, in percent (10 to 100).
    public var replaceBumpPercent: Int = 15
    /// TRON: `fee_limit` of a TRC20 transfer, sun (the most energy it may burn).
    public var feeLimit: Int64 = 30_000_000
    /// TRON: a transaction's expiration after its reference block's time.
    public var expiration: Duration = .seconds(60)
    /// A broadcast transaction not seen in a block is sent again (same bytes) this often.
    public var rebroadcastEvery: Duration = .seconds(30)
    /// How often a payment waiting for its confirmations looks at the node.
    public var pollInterval: Duration = .seconds(1)

    public init() {}

    static func read(_ r: ConfigReader, kind: ChainKind, blockTime: Duration) throws -> PaymentConfig {
        var p = PaymentConfig()
        p.pollInterval = try r.duration("poll_interval", default: ChainConfig.defaultPollInterval(blockTime: blockTime), minimum: .milliseconds(10))
        p.rebroadcastEvery = try r.duration("rebroadcast_every", default: p.rebroadcastEvery, minimum: .milliseconds(100))
        if kind == .evm {
            if let cap = try r.optionalString("max_fee_per_gas") {
                guard let v = BigUInt(cap.replacingOccurrences(of: "_", with: "")), v > 0 else {
                    throw ConfigError(key: r.keyPath("max_fee_per_gas"), "expected a positive whole number of wei, found '\(cap)'")
                }
                p.maxFeePerGas = v
            }
            p.replaceAfter = try r.duration("replace_after", default: p.replaceAfter, minimum: .milliseconds(100))
            p.replaceBumpPercent = try r.int("replace_bump_percent", default: p.replaceBumpPercent, in: 10...100)
        } else {
            p.feeLimit = Int64(try r.int("fee_limit", default: Int(p.feeLimit), in: 1...15_000_000_000))
            p.expiration = try r.duration("expiration", default: p.expiration, minimum: .seconds(1))
            guard p.expiration <= .seconds(86_400) else { throw ConfigError(key: r.keyPath("expiration"), "at most 24 h (java-tron refuses more)") }
        }
        try r.finish()
        return p
    }
}

/// Where the gateway's BIP39 seed is (`wallet:`), for the processes that sign.
public struct WalletConfig: Sendable, Equatable {
    /// A file holding the seed (128 hex digits, as `gatewayctl keys new` writes it) or a mnemonic.
    public var seedFile: String?
    /// An environment variable holding the same; it wins over the credential and the file.
    public var seedEnv: String?
    /// A systemd credential holding the same (`LoadCredential=`); it wins over the file.
    public var seedCredential: String?
    /// The Bitcoin network addresses are validated for.
    public var btcNetwork: BitcoinNetwork

    /// No seed configured, Bitcoin mainnet.
    public init(seedFile: String? = nil, seedEnv: String? = nil, btcNetwork: BitcoinNetwork = .mainnet) {
        self.seedFile = seedFile
        self.seedEnv = seedEnv
        self.btcNetwork = btcNetwork
    }

    static func read(_ r: ConfigReader) throws -> WalletConfig {
        var w = WalletConfig()
        w.seedFile = try r.optionalString("seed_file")
        w.seedEnv = try r.optionalString("seed_env")
        if let name = try r.optionalString("seed_credential") {
            try SystemdCredentials.validate(name, key: r.keyPath("seed_credential"))
            w.seedCredential = name
        }
        let network = try r.string("btc_network", default: "mainnet")
        guard let n = BitcoinNetwork(rawValue: network) else {
            throw ConfigError(key: r.keyPath("btc_network"), "expected mainnet, testnet or regtest, found '\(network)'")
        }
        w.btcNetwork = n
        try r.finish()
        return w
    }

    /// Loads the 64-byte BIP39 seed from `seed_env`, `seed_credential` or `seed_file`, in that order. Errors name where
    /// it was looked for, never what was found there.
    public func loadSeed(environment: [String: String] = ProcessInfo.processInfo.environment, relativeTo base: String? = nil) throws -> Data {
        if let variable = seedEnv, let text = environment[variable], !text.isEmpty {
            return try Self.parseSeed(text, source: "environment variable \(variable)")
        }
        if let name = seedCredential, let text = try SystemdCredentials.read(name, key: "wallet.seed_credential", environment: environment) {
            return try Self.parseSeed(text, source: "credential \(name)")
        }
        var elsewhere = ""
        if let seedEnv { elsewhere += ", \(seedEnv) is not set" }
        if let seedCredential { elsewhere += ", no credential '\(seedCredential)' (\(SystemdCredentials.directoryVariable) is not set)" }
        guard let file = seedFile else {
            guard elsewhere.isEmpty else { throw ConfigError(key: "wallet", "no seed: \(elsewhere.dropFirst(2)), and no wallet.seed_file") }
            throw ConfigError(key: "wallet", "no seed: set wallet.seed_file, wallet.seed_env or wallet.seed_credential (create one with gatewayctl keys new)")
        }
        let path =
            file.hasPrefix("/") || base == nil ? file : URL(fileURLWithPath: base!).deletingLastPathComponent().appendingPathComponent(file).path
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError(key: "wallet.seed_file", "cannot read \(path)\(elsewhere.isEmpty ? "" : " (and\(elsewhere.dropFirst(1)))")")
        }
        return try Self.parseSeed(String(decoding: data, as: UTF8.self), source: path)
    }

    /// 128 hex digits (the seed itself) or a BIP39 mnemonic (seed with an empty passphrase).
    static func parseSeed(_ text: String, source: String) throws -> Data {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.count == 128, let seed = try? Hex.decode(trimmed, allowPrefix: false) { return seed }
        do {
            return try BIP39.seed(fromMnemonic: trimmed)
        } catch {
            throw ConfigError(key: "wallet", "\(source) holds neither a 64-byte hex seed nor a valid mnemonic (\(error))")
        }
    }
}

extension GatewayConfig {
    /// The chain called `name`; the error lists the configured names.
    public func chain(named name: String) throws -> ChainConfig {
        guard let chain = chains.first(where: { $0.name == name }) else {
            let names = chains.map(\.name)
            throw ConfigError(
                key: "chains",
                names.isEmpty
                    ? "no chains are configured (chain '\(name)' asked for)" : "no chain '\(name)'; the chains are \(names.joined(separator: ", "))"
            )
        }
        return chain
    }
}
