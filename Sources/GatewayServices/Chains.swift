import ChainKit
import GatewayCore

/// What kind of chain a configured chain name is: it decides address formats and derivation.
public enum ChainKind: Sendable, Equatable {
    case tron
    case evm
    case bitcoin(BitcoinNetwork)

    /// How addresses of this chain are validated.
    public var addressChain: AddressChain {
        switch self {
        case .tron: return .tron
        case .evm: return .evm
        case .bitcoin(let n): return .bitcoin(n)
        }
    }

    /// How deposit addresses of this chain are derived (Bitcoin: native segwit).
    public var scheme: AddressScheme {
        switch self {
        case .tron: return .tron
        case .evm: return .evm
        case .bitcoin(let n): return .bitcoinP2WPKH(n)
        }
    }
}

/// The chains this gateway knows, by name (`tron`, `ethereum`, …).
public struct ChainDirectory: Sendable {
    public var kinds: [String: ChainKind]

    public init(_ kinds: [String: ChainKind]) { self.kinds = kinds }

    /// The chains of `workers.yml` (`chains:`), plus `bitcoin` for validating Bitcoin addresses
    /// on the configured network.
    public init(config: GatewayConfig) {
        var kinds: [String: ChainKind] = ["bitcoin": .bitcoin(config.wallet.btcNetwork)]
        for chain in config.chains { kinds[chain.name] = chain.kind == .evm ? .evm : .tron }
        self.kinds = kinds
    }

    /// TRON, Ethereum and Bitcoin under their usual names (for tests and the embedded set-up).
    public static let standard = ChainDirectory(["tron": .tron, "ethereum": .evm, "bitcoin": .bitcoin(.mainnet)])

    /// The kind of a chain; nil when it is not configured.
    public func kind(_ chain: String) -> ChainKind? { kinds[chain] }

    /// Validates an address for a chain and returns its canonical form, or the reason it is invalid.
    public func canonicalAddress(_ address: String, chain: String) -> Result<String, AddressError> {
        guard let kind = kinds[chain] else { return .failure(.wrongFormat("chain \(chain) is not configured")) }
        do {
            return .success(try AddressValidator.validate(address, chain: kind.addressChain).canonical)
        } catch {
            return .failure(error)
        }
    }
}
