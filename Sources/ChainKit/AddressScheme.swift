import Foundation

/// How a chain turns an HD public key into an address, and where its accounts live (BIP44 / BIP84).
public enum AddressScheme: Sendable, Hashable {
    /// TRON: `m/44'/195'/account'`, base58check `T…` addresses.
    case tron
    /// Ethereum and EVM chains: `m/44'/60'/account'`, EIP-55 checksummed addresses.
    case evm
    /// Bitcoin native segwit: `m/84'/0'/account'` (testnet/regtest coin type 1), P2WPKH `bc1q…`.
    case bitcoinP2WPKH(BitcoinNetwork)
    /// Bitcoin legacy: `m/44'/0'/account'` (testnet/regtest coin type 1), P2PKH `1…`.
    case bitcoinP2PKH(BitcoinNetwork)

    /// The BIP43 purpose (44 or 84).
    public var purpose: UInt32 {
        if case .bitcoinP2WPKH = self { return 84 }
        return 44
    }

    /// The SLIP-44 coin type.
    public var coinType: UInt32 {
        switch self {
        case .tron: return DerivationPath.tronCoinType
        case .evm: return DerivationPath.evmCoinType
        case .bitcoinP2WPKH(let network), .bitcoinP2PKH(let network): return network == .mainnet ? DerivationPath.bitcoinCoinType : 1
        }
    }

    /// `m/purpose'/coin'/account'`: the key whose xpub a watch-only service holds.
    public func accountPath(account: UInt32) -> DerivationPath {
        DerivationPath.account(purpose: purpose, coinType: coinType, account: account)
    }

    /// The address string of a public key under this scheme.
    public func address(for publicKey: Secp256k1.PublicKey) -> String {
        switch self {
        case .tron: return TronAddress(publicKey: publicKey).base58
        case .evm: return EVMAddress(publicKey: publicKey).checksummed
        case .bitcoinP2WPKH(let network): return BitcoinAddress.p2wpkh(publicKey: publicKey, network: network).string
        case .bitcoinP2PKH(let network): return BitcoinAddress.p2pkh(publicKey: publicKey, network: network).string
        }
    }
}

/// A watch-only account: an account-level xpub and its scheme, deriving deposit (`0/i`) and change/hot (`1/i`) addresses.
///
/// DESIGN §5: deposit address i = `…/account'/0/i`, the wallet's hot address = `…/account'/1/0`.
public struct WatchOnlyAccount: Sendable, Hashable {
    /// The account-level extended public key (`m/purpose'/coin'/account'`).
    public let accountKey: ExtendedPublicKey
    /// How addresses are formed.
    public let scheme: AddressScheme
    private let externalChain: ExtendedPublicKey
    private let internalChain: ExtendedPublicKey

    /// Wraps an account xpub (depth 3, as exported by a wallet for that account).
    public init(accountKey: ExtendedPublicKey, scheme: AddressScheme) throws(HDKeyError) {
        guard accountKey.depth == 3 else { throw .invalidPath("an account key is at depth 3, this one is at depth \(accountKey.depth)") }
        self.accountKey = accountKey
        self.scheme = scheme
        externalChain = try accountKey.derived(childNumber: 0)
        internalChain = try accountKey.derived(childNumber: 1)
    }

    /// Parses an account xpub/zpub string.
    public init(serialized: String, scheme: AddressScheme) throws(HDKeyError) {
        try self.init(accountKey: ExtendedPublicKey(serialized: serialized), scheme: scheme)
    }

    /// The public key of deposit address `index` (`0/index`).
    public func depositPublicKey(index: UInt32) throws(HDKeyError) -> Secp256k1.PublicKey {
        try externalChain.derived(childNumber: index).publicKey
    }

    /// Deposit address `index` (`…/account'/0/index`).
    public func depositAddress(index: UInt32) throws(HDKeyError) -> String {
        scheme.address(for: try depositPublicKey(index: index))
    }

    /// Deposit addresses for a range of indices, deriving from the cached external chain key.
    public func depositAddresses(_ indices: Range<UInt32>) throws(HDKeyError) -> [String] {
        var addresses: [String] = []
        addresses.reserveCapacity(indices.count)
        for index in indices { addresses.append(try depositAddress(index: index)) }
        return addresses
    }

    /// The wallet's hot address (`…/account'/1/0`), which pays withdrawals and receives sweeps.
    public func hotAddress() throws(HDKeyError) -> String {
        scheme.address(for: try internalChain.derived(childNumber: 0).publicKey)
    }

    /// The wallet's gas address (`…/account'/2/0`): funds the sweeps' gas top-ups when a chain is configured
    /// with a dedicated gas wallet (`chains.<name>.sweep.gas_wallet: true`). Branch 2 of the account is ours:
    /// deposit addresses are branch 0, the hot address branch 1.
    public func gasAddress() throws(HDKeyError) -> String {
        scheme.address(for: try accountKey.derived(childNumber: 2).derived(childNumber: 0).publicKey)
    }
}

extension ExtendedPrivateKey {
    /// The private key of an address in an account: `m/purpose'/coin'/account'/change/index` from this master key.
    public func addressKey(scheme: AddressScheme, account: UInt32, change: UInt32, index: UInt32) throws(HDKeyError) -> Secp256k1.PrivateKey {
        let path = DerivationPath.bip44(purpose: scheme.purpose, coinType: scheme.coinType, account: account, change: change, index: index)
        return try derived(path: path).privateKey
    }
}
