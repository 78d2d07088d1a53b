import ArgumentParser
import ChainKit
import Foundation
import GatewayCore
import GatewayRuntime

/// How `--chain` names an address format: a configured chain's name, or `tron`, `evm` (`eth`, `ethereum`),
/// `btc` (native segwit P2WPKH, BIP84) or `btc-legacy` (P2PKH, BIP44).
enum ChainArgument {
    enum Resolved {
        case tron
        case evm
        case bitcoinSegwit
        case bitcoinLegacy

        func scheme(_ network: BitcoinNetwork) -> AddressScheme {
            switch self {
            case .tron: return .tron
            case .evm: return .evm
            case .bitcoinSegwit: return .bitcoinP2WPKH(network)
            case .bitcoinLegacy: return .bitcoinP2PKH(network)
            }
        }

        func addressChain(_ network: BitcoinNetwork) -> AddressChain {
            switch self {
            case .tron: return .tron
            case .evm: return .evm
            case .bitcoinSegwit, .bitcoinLegacy: return .bitcoin(network)
            }
        }

        var isBitcoin: Bool { self == .bitcoinSegwit || self == .bitcoinLegacy }
    }

    static let help = "tron, evm (eth, ethereum), btc (P2WPKH) or btc-legacy (P2PKH), or a chain configured in workers.yml."

    static func resolve(_ name: String, config: GatewayConfig?) throws -> Resolved {
        if let chain = config?.chains.first(where: { $0.name == name }) { return chain.kind == .tron ? .tron : .evm }
        switch name.lowercased() {
        case "tron", "trx": return .tron
        case "evm", "eth", "ethereum": return .evm
        case "btc", "bitcoin", "btc-segwit": return .bitcoinSegwit
        case "btc-legacy": return .bitcoinLegacy
        default:
            let configured = config?.chains.map(\.name) ?? []
            throw ValidationError(
                "unknown chain '\(name)': use \(help)\(configured.isEmpty ? "" : " Configured: \(configured.joined(separator: ", ")).")"
            )
        }
    }

    /// The configuration when the file exists (address commands work without one); a broken file is an error.
    static func optionalConfig(_ options: ProcessOptions) throws -> GatewayConfig? {
        if options.config == nil, ProcessInfo.processInfo.environment["GATEWAY_CONFIG"] == nil,
            !FileManager.default.fileExists(atPath: options.configPath)
        {
            return nil
        }
        return try options.loadConfig()
    }

    static func network(_ option: String?, config: GatewayConfig?) throws -> BitcoinNetwork {
        guard let option else { return config?.wallet.btcNetwork ?? .mainnet }
        guard let n = BitcoinNetwork(rawValue: option) else { throw ValidationError("--network must be mainnet, testnet or regtest") }
        return n
    }
}

/// `gatewayctl keys …`: the gateway's seed and account xpubs.
struct KeysCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "Create the gateway's seed; print account xpubs for watch-only processes.",
        subcommands: [New.self, XPub.self]
    )

    struct New: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a new BIP39 mnemonic, show it once, and write its seed to a file only the owner can read.",
            discussion: """
                The mnemonic is printed once, here, and never stored: write it down offline; it is the only backup of \
                every address the gateway derives. The 64-byte seed (128 hex digits) goes to --out, or to \
                wallet.seed_file of the configuration, created with mode 0600. An existing file is never overwritten.
                """
        )

        @OptionGroup var options: ProcessOptions
        @Option(help: ArgumentHelp("Where to write the seed (default: wallet.seed_file).", valueName: "path")) var out: String?
        @Option(help: "Words in the mnemonic: 12, 15, 18, 21 or 24.") var words = 24

        func validate() throws {
            guard [12, 15, 18, 21, 24].contains(words) else { throw ValidationError("--words must be 12, 15, 18, 21 or 24") }
        }

        func run() async throws {
            let path: String
            if let out {
                path = out
            } else {
                let config = try options.loadConfig()
                guard let file = config.wallet.seedFile else { throw ValidationError("pass --out, or set wallet.seed_file in \(config.source)") }
                path = file.hasPrefix("/") ? file : URL(fileURLWithPath: config.source).deletingLastPathComponent().appendingPathComponent(file).path
            }
            let mnemonic = try BIP39.generateMnemonic(wordCount: words)
            let seed = try BIP39.seed(fromMnemonic: mnemonic)
            try SeedFile.create(at: path, contents: Hex.encode(seed) + "\n")
            let list = mnemonic.split(separator: " ").enumerated().map { String(format: "%2d %@", $0.offset + 1, String($0.element)) }
            print(
                """
                Write these \(words) words down, in order, and keep them offline. They are shown only now, and they are the
                only backup of every address this gateway derives.

                """
            )
            for row in stride(from: 0, to: list.count, by: 4) {
                print("  " + list[row..<min(row + 4, list.count)].map { $0.padding(toLength: 14, withPad: " ", startingAt: 0) }.joined())
            }
            print("\nseed written to \(path) (mode 0600)")
        }
    }

    struct XPub: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "xpub",
            abstract: "Print the account xpub of a chain (m/44'/coin'/account', BIP84 for btc) from the configured seed.",
            discussion: "The xpub is what gateway-api and chain-worker hold: it derives deposit addresses 0/i and the hot address 1/0, never a key."
        )

        @OptionGroup var options: ProcessOptions
        @Option(help: ArgumentHelp(ChainArgument.help, valueName: "chain")) var chain: String
        @Option(help: "Account number (one per merchant wallet).") var account: UInt32 = 0
        @Option(help: "btc: mainnet, testnet or regtest (default: wallet.btc_network).") var network: String?
        @Flag(help: "btc: print the SLIP-132 form (zpub/vpub for P2WPKH) instead of xpub/tpub.") var slip132 = false

        func validate() throws {
            guard account < DerivationPath.hardenedOffset else { throw ValidationError("--account must be below 2^31") }
        }

        func run() async throws {
            let config = try options.loadConfig()
            let resolved = try ChainArgument.resolve(chain, config: config)
            let network = try ChainArgument.network(self.network, config: config)
            let seed: Data
            do {
                seed = try config.wallet.loadSeed(relativeTo: config.source)
            } catch let error as ConfigError {
                throw ValidationError(error.description)
            }
            let scheme = resolved.scheme(network)
            let master = try ExtendedPrivateKey(seed: seed, version: network == .mainnet ? .xpub : .tpub)
            let key = try master.derived(path: scheme.accountPath(account: account)).extendedPublicKey
            var version: ExtendedKeyVersion = network == .mainnet ? .xpub : .tpub
            if slip132, resolved == .bitcoinSegwit { version = network == .mainnet ? .zpub : .vpub }
            print(key.serialized(version: version))
        }
    }
}

/// Writes a secret file: created exclusively (never overwriting), mode 0600, flushed to disk.
enum SeedFile {
    static func create(at path: String, contents: String) throws {
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        if !FileManager.default.fileExists(atPath: directory) {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        }
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            if errno == EEXIST { throw ValidationError("\(path) already exists; refusing to overwrite a seed (move it away first)") }
            throw ValidationError("cannot create \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        // The umask cannot widen 0600, but an inherited ACL or odd umask could narrow it oddly: set it exactly.
        fchmod(fd, 0o600)
        let bytes = Array(contents.utf8)
        var written = 0
        while written < bytes.count {
            let n = bytes[written...].withUnsafeBufferPointer { write(fd, $0.baseAddress, $0.count) }
            guard n > 0 else { throw ValidationError("cannot write \(path): \(String(cString: strerror(errno)))") }
            written += n
        }
        guard fsync(fd) == 0 else { throw ValidationError("cannot flush \(path): \(String(cString: strerror(errno)))") }
    }
}

/// `gatewayctl address …`: derive and validate addresses without keys or a node.
struct AddressCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "address",
        abstract: "Derive addresses from an account xpub; validate user-supplied addresses.",
        subcommands: [Derive.self, Validate.self, AddressListCommand.self]
    )

    struct Derive: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the address at <change>/<index> of an account xpub (deposit addresses are 0/i, the hot address 1/0)."
        )

        @OptionGroup var options: ProcessOptions
        @Option(help: "The account-level extended public key (xpub/zpub/tpub…, depth 3).") var xpub: String
        @Option(help: ArgumentHelp(ChainArgument.help, valueName: "chain")) var chain: String
        @Option(help: "Address index.") var index: UInt32
        @Option(help: "0 for deposit (external) addresses, 1 for the hot (internal) chain.") var change: UInt32 = 0
        @Option(help: "btc: mainnet, testnet or regtest (default: from the key's version, else wallet.btc_network).") var network: String?

        func validate() throws {
            guard change <= 1 else { throw ValidationError("--change must be 0 or 1") }
            guard index < DerivationPath.hardenedOffset else {
                throw ValidationError("--index must be below 2^31 (public derivation cannot reach hardened children)")
            }
        }

        func run() async throws {
            print(try address(config: try ChainArgument.optionalConfig(options)))
        }

        /// The derived address (what `run` prints).
        func address(config: GatewayConfig?) throws -> String {
            try Self.address(xpub: xpub, chain: chain, index: index, change: change, network: network, config: config)
        }

        /// The address at `change/index` of an account xpub for `chain`.
        static func address(
            xpub: String,
            chain: String,
            index: UInt32,
            change: UInt32 = 0,
            network: String? = nil,
            config: GatewayConfig?
        ) throws
            -> String
        {
            let resolved = try ChainArgument.resolve(chain, config: config)
            let key: ExtendedPublicKey
            do {
                key = try ExtendedPublicKey(serialized: xpub)
            } catch {
                throw ValidationError("--xpub: \(error)")
            }
            var bitcoinNetwork = try ChainArgument.network(network, config: config)
            if network == nil, [ExtendedKeyVersion.tpub, .upub, .vpub].contains(key.version) { bitcoinNetwork = .testnet }
            let account: WatchOnlyAccount
            do {
                account = try WatchOnlyAccount(accountKey: key, scheme: resolved.scheme(bitcoinNetwork))
            } catch {
                throw ValidationError("--xpub: \(error)")
            }
            let child = try account.accountKey.derived(childNumber: change).derived(childNumber: index)
            return account.scheme.address(for: child.publicKey)
        }
    }

    struct Validate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check an address for a chain: exit 0 and print its canonical form, or exit 1 and print why it is invalid."
        )

        @OptionGroup var options: ProcessOptions
        @Option(help: ArgumentHelp(ChainArgument.help, valueName: "chain")) var chain: String
        @Option(help: "btc: mainnet, testnet or regtest (default: wallet.btc_network, else mainnet).") var network: String?
        @Argument(help: "The address, exactly as given (surrounding spaces are an error, not trimmed).") var address: String

        func run() async throws {
            switch try verdict(config: try ChainArgument.optionalConfig(options)) {
            case .success(let canonical): print("valid: \(canonical)")
            case .failure(let reason):
                print("invalid: \(reason.description)")
                throw ExitCode(1)
            }
        }

        /// The canonical form of a valid address, or why it is invalid (what `run` prints).
        func verdict(config: GatewayConfig?) throws -> Result<String, AddressError> {
            try Self.verdict(address, chain: chain, network: network, config: config)
        }

        /// The canonical form of `address` for `chain`, or why it is invalid.
        static func verdict(_ address: String, chain: String, network: String? = nil, config: GatewayConfig?) throws -> Result<String, AddressError> {
            let resolved = try ChainArgument.resolve(chain, config: config)
            let network = try ChainArgument.network(network, config: config)
            do {
                return .success(try AddressValidator.validate(address, chain: resolved.addressChain(network)).canonical)
            } catch {
                return .failure(error)
            }
        }
    }
}
