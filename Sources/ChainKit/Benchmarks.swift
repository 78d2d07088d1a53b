import BigInt
import Foundation

/// A named, deterministic ChainKit operation for benchmark harnesses (ordo-one/benchmark, hyperfine, callgrind).
///
/// Inputs (keys, xpubs, transactions) are prepared in `init`, outside any timed region; `run(iterations:)` then
/// repeats only the operation and folds every result into a checksum, so the work cannot be optimised away and two
/// runs of the same workload can be compared for equality.
public struct ChainKitWorkload: Sendable {
    /// The operations that can be measured.
    public enum Kind: String, Sendable, CaseIterable {
        /// Keccak-256 of 1 KiB.
        case keccak256OneKiB = "keccak256-1KiB"
        /// RIPEMD-160 of 1 KiB.
        case ripemd160OneKiB = "ripemd160-1KiB"
        /// Base58Check encode and decode of a 21-byte TRON payload.
        case base58CheckRoundTrip = "base58check-roundtrip"
        /// BIP39 mnemonic → seed (PBKDF2-HMAC-SHA512, 2048 iterations).
        case bip39Seed = "bip39-seed"
        /// One hardened BIP32 private derivation step.
        case bip32HardenedChild = "bip32-hardened-child"
        /// One TRON deposit address from an account xpub (`0/i`).
        case tronDepositAddress = "tron-deposit-address"
        /// One EVM deposit address from an account xpub (`0/i`).
        case evmDepositAddress = "evm-deposit-address"
        /// One P2WPKH deposit address from an account xpub (`0/i`).
        case bitcoinDepositAddress = "btc-deposit-address"
        /// Validation of a user-supplied TRON, EVM and Bitcoin address.
        case addressValidation = "address-validation"
        /// A recoverable ECDSA signature over a 32-byte hash.
        case secp256k1Sign = "secp256k1-sign"
        /// Public-key recovery from a recoverable signature.
        case secp256k1Recover = "secp256k1-recover"
        /// Build and sign an EIP-1559 ERC20 transfer, producing raw bytes and the tx hash.
        case evmSignERC20 = "evm-sign-erc20"
        /// Decode a raw signed EIP-1559 transaction and recover its sender (the dev node's path).
        case evmDecodeAndRecover = "evm-decode-recover"
        /// Build and sign a TRC20 transfer, producing the broadcasthex payload.
        case tronSignTRC20 = "tron-sign-trc20"
        /// Decode a signed TRON transaction and recover its signer (the dev node's path).
        case tronDecodeAndRecover = "tron-decode-recover"
    }

    /// Which operation this workload runs.
    public let kind: Kind
    private let key: Secp256k1.PrivateKey
    private let master: ExtendedPrivateKey
    private let tron: WatchOnlyAccount
    private let evm: WatchOnlyAccount
    private let bitcoin: WatchOnlyAccount
    private let blob: Data
    private let signature: Secp256k1.RecoverableSignature
    private let rawEVM: Data
    private let rawTron: Data
    private let tronReference: TronReferenceBlock

    /// Prepares the inputs of `kind` from fixed test keys (never real funds).
    public init(_ kind: Kind) {
        self.kind = kind
        // Fixed, public test material: these keys must never hold value.
        key = try! Secp256k1.PrivateKey(Data(repeating: 0x46, count: 32))
        master = try! ExtendedPrivateKey(seed: Data(repeating: 0x2a, count: 64))
        tron = try! WatchOnlyAccount(accountKey: master.derived(path: AddressScheme.tron.accountPath(account: 0)).extendedPublicKey, scheme: .tron)
        evm = try! WatchOnlyAccount(accountKey: master.derived(path: AddressScheme.evm.accountPath(account: 0)).extendedPublicKey, scheme: .evm)
        let btcScheme = AddressScheme.bitcoinP2WPKH(.mainnet)
        bitcoin = try! WatchOnlyAccount(accountKey: master.derived(path: btcScheme.accountPath(account: 0)).extendedPublicKey, scheme: btcScheme)
        blob = Data((0..<1024).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) })
        signature = try! key.sign(hash: Hashing.sha256(blob))
        tronReference = try! TronReferenceBlock(blockID: "0000000003b20b808a1f6c2b7e3d9a405c6e7f8091a2b3c4d5e6f708192a3b4c")
        rawEVM = try! Self.evmTransfer(nonce: 0).sign(with: key).rawBytes
        let owner = TronAddress(publicKey: key.publicKey)
        rawTron = try! TronTransaction(rawData: Self.tronTransfer(owner: owner, amount: 1, reference: tronReference)).signed(with: key).serialized()
    }

    private static let usdtEVM = try! EVMAddress("0xdAC17F958D2ee523a2206206994597C13D831ec7")
    private static let usdtTron = try! TronAddress("TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t")

    private static func evmTransfer(nonce: UInt64) -> EVMTransaction {
        .eip1559(
            EVMEIP1559Transaction(
                chainID: 1,
                nonce: nonce,
                maxPriorityFeePerGas: 1_500_000_000,
                maxFeePerGas: 40_000_000_000,
                gasLimit: 65_000,
                to: usdtEVM,
                value: 0,
                data: ERC20.transferCalldata(to: usdtEVM, amount: BigUInt(nonce) + 1)
            )
        )
    }

    private static func tronTransfer(owner: TronAddress, amount: UInt64, reference: TronReferenceBlock) throws -> TronRawData {
        try TronRawData.trc20Transfer(
            from: owner,
            token: usdtTron,
            to: owner,
            amount: BigUInt(amount),
            feeLimit: 30_000_000,
            reference: reference,
            expiration: 1_700_000_060_000,
            timestamp: 1_700_000_000_000
        )
    }

    /// Runs the operation `iterations` times (each iteration varies an index or nonce) and returns a checksum of the results.
    public func run(iterations: Int) throws -> UInt64 {
        var checksum: UInt64 = 0
        func fold<D: DataProtocol>(_ data: D) {
            for byte in data.prefix(8) { checksum = (checksum &* 31) &+ UInt64(byte) }
        }
        for i in 0..<iterations {
            let index = UInt32(truncatingIfNeeded: i) & 0x7fff_ffff
            switch kind {
            case .keccak256OneKiB:
                fold(Keccak256.hash(blob))
            case .ripemd160OneKiB:
                fold(RIPEMD160.hash(blob))
            case .base58CheckRoundTrip:
                let encoded = Base58.encodeCheck(Data([TronAddress.prefixByte]) + blob.prefix(20))
                fold(try Base58.decodeCheck(encoded))
            case .bip39Seed:
                fold(try BIP39.seed(fromMnemonic: "legal winner thank year wave sausage worth useful legal winner thank yellow", passphrase: "\(i)"))
            case .bip32HardenedChild:
                fold(try master.derived(childNumber: DerivationPath.hardenedOffset | index).chainCode)
            case .tronDepositAddress:
                fold(Data(try tron.depositAddress(index: index).utf8))
            case .evmDepositAddress:
                fold(Data(try evm.depositAddress(index: index).utf8))
            case .bitcoinDepositAddress:
                fold(Data(try bitcoin.depositAddress(index: index).utf8))
            case .addressValidation:
                fold(try TronAddress("TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t").bytes)
                fold(try EVMAddress("0xdAC17F958D2ee523a2206206994597C13D831ec7").bytes)
                fold(Data(try BitcoinAddress("bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu", network: .mainnet).string.utf8))
            case .secp256k1Sign:
                fold(try key.sign(hash: Hashing.sha256(withUnsafeBytes(of: UInt64(i).bigEndian) { Data($0) })).compact)
            case .secp256k1Recover:
                fold(try signature.recoverPublicKey(hash: Hashing.sha256(blob)).compressed)
            case .evmSignERC20:
                fold(try Self.evmTransfer(nonce: UInt64(i)).sign(with: key).hash)
            case .evmDecodeAndRecover:
                fold(try SignedEVMTransaction(raw: rawEVM).recoverSender().bytes)
            case .tronSignTRC20:
                let owner = TronAddress(publicKey: key.publicKey)
                let raw = try Self.tronTransfer(owner: owner, amount: UInt64(i) + 1, reference: tronReference)
                fold(try TronTransaction(rawData: raw).signed(with: key).serialized().suffix(65))
            case .tronDecodeAndRecover:
                let transaction = try TronTransaction(serialized: rawTron)
                fold(try transaction.recoverSigners()[0].bytes)
            }
        }
        return checksum
    }
}
