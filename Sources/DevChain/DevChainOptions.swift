import BigInt
import ChainKit
import Foundation
import Synchronization

/// How a devchain node behaves; every value has a default, so `DevChainOptions()` is a working node.
public struct DevChainOptions: Sendable {
    /// Everything random (keys, contract addresses, block hashes) derives from this text.
    public var seed: String
    /// EVM `eth_chainId`.
    public var evmChainID: UInt64
    /// Mine a block as soon as a transaction (or a control operation) is accepted.
    public var automine: Bool
    /// Also mine a block every interval (empty blocks too); nil mines only on demand.
    public var blockInterval: Duration?
    /// `eth_getLogs` refuses ranges wider than this many blocks (like a hosted provider); nil = no limit.
    public var evmMaxLogRange: UInt64?
    /// `eth_getLogs` refuses queries that match more logs than this (Infura-style -32005).
    public var evmMaxLogResults: Int
    /// EVM base fee per gas (constant), wei.
    public var evmBaseFee: BigUInt
    /// EVM suggested priority fee, wei.
    public var evmPriorityFee: BigUInt
    /// TRON: `/walletsolidity/*` serve the block this many below the head.
    public var tronSolidDepth: UInt64
    /// TRON `getEnergyFee`, sun per energy.
    public var tronEnergyPrice: Int64
    /// TRON `getTransactionFee`, sun per bandwidth byte.
    public var tronBandwidthPrice: Int64
    /// Pre-funded development accounts per chain (HD indices 10 …).
    public var devAccounts: Int
    /// Timestamp of block 0 in ms since 1970 (default: the wall clock when the options are made). The chains'
    /// clock starts there and runs with the wall clock, as a real node's head time does: a client that stamps a
    /// TRON transaction's `expiration` from its own clock is accepted (see `BlockClock`).
    public var genesisTimeMillis: Int64

    /// The defaults: seed `devchain`, chain id 1337, automine, no timed blocks, no log range limit.
    public init(
        seed: String = "devchain",
        evmChainID: UInt64 = 1337,
        automine: Bool = true,
        blockInterval: Duration? = nil,
        evmMaxLogRange: UInt64? = nil,
        evmMaxLogResults: Int = 10_000,
        evmBaseFee: BigUInt = 1_000_000_000,
        evmPriorityFee: BigUInt = 1_000_000_000,
        tronSolidDepth: UInt64 = 19,
        tronEnergyPrice: Int64 = 100,
        tronBandwidthPrice: Int64 = 1000,
        devAccounts: Int = 10,
        genesisTimeMillis: Int64? = nil
    ) {
        self.seed = seed
        self.evmChainID = evmChainID
        self.automine = automine
        self.blockInterval = blockInterval
        self.evmMaxLogRange = evmMaxLogRange
        self.evmMaxLogResults = evmMaxLogResults
        self.evmBaseFee = evmBaseFee
        self.evmPriorityFee = evmPriorityFee
        self.tronSolidDepth = tronSolidDepth
        self.tronEnergyPrice = tronEnergyPrice
        self.tronBandwidthPrice = tronBandwidthPrice
        self.devAccounts = devAccounts
        self.genesisTimeMillis = genesisTimeMillis ?? DevChainClock.wallMillis()
    }
}

/// How a new block's timestamp is chosen.
public enum BlockClock: Sendable {
    /// The chain's clock, never less than 1 ms (TRON) or 1 s (EVM) after the parent: timed blocks
    /// (`--block-time-ms`) and automined ones, produced as time passes.
    case wall
    /// One slot after the parent (3 s TRON, 12 s EVM), or the chain's clock if later: an explicit
    /// `mine {blocks}` makes that much chain time pass, as on the real chain (a test that mines 20 TRON
    /// blocks has moved 60 s past an expiration). The chain stays that far ahead until the wall clock
    /// catches up.
    case slot
}

/// The chains' clock: the wall clock shifted so that it read `genesisTimeMillis` when the node was made.
public struct DevChainClock: Sendable {
    /// Chain time minus wall time, in ms.
    public let offsetMillis: Int64

    /// A clock that reads `genesisTimeMillis` now.
    public init(genesisTimeMillis: Int64) {
        offsetMillis = genesisTimeMillis - Self.wallMillis()
    }

    /// The chain's time now, in ms since 1970.
    public func nowMillis() -> Int64 { Self.wallMillis() + offsetMillis }

    /// The timestamp of a block after one stamped `parentMillis`; `slotMillis` is the chain's block interval.
    func next(after parentMillis: Int64, slotMillis: Int64, _ mode: BlockClock, minimumStep: Int64) -> Int64 {
        max(parentMillis + (mode == .slot ? slotMillis : minimumStep), nowMillis())
    }

    /// Milliseconds since 1970 by the system clock.
    public static func wallMillis() -> Int64 { Int64((Date().timeIntervalSince1970 * 1000).rounded(.down)) }
}

/// The keys of a devchain, all derived from its seed: a BIP39 mnemonic (so a wallet can import the dev accounts),
/// then BIP44 paths. Test data only — never fund these on a real chain.
public struct DevChainKeys: Sendable {
    /// The development mnemonic (12 words from sha256("devchain:" + seed)).
    public let mnemonic: String
    let master: ExtendedPrivateKey

    /// HD index of the faucet (pays `fund`), per chain.
    public static let faucetIndex: UInt32 = 0
    /// HD index of the USDT treasury (sends `usdt` transfers and deploys the token), per chain.
    public static let treasuryIndex: UInt32 = 1
    /// First HD index of the pre-funded development accounts.
    public static let firstDevAccountIndex: UInt32 = 10

    /// Keys for `seed`.
    public init(seed: String) {
        let entropy = Hashing.sha256(Data("devchain:\(seed)".utf8)).prefix(16)
        mnemonic = try! BIP39.mnemonic(fromEntropy: Data(entropy))
        // PBKDF2 (2048 rounds) dominates starting a node; tests start many nodes with the same seed.
        if let cached = Self.masters.withLock({ $0[seed] }) {
            master = cached
        } else {
            master = try! ExtendedPrivateKey(seed: try! BIP39.seed(fromMnemonic: mnemonic))
            Self.masters.withLock { $0[seed] = master }
        }
    }

    private static let masters = Mutex<[String: ExtendedPrivateKey]>([:])

    /// The EVM key at `m/44'/60'/0'/0/index`.
    public func evmKey(_ index: UInt32) -> Secp256k1.PrivateKey {
        try! master.addressKey(scheme: .evm, account: 0, change: 0, index: index)
    }

    /// The TRON key at `m/44'/195'/0'/0/index`.
    public func tronKey(_ index: UInt32) -> Secp256k1.PrivateKey {
        try! master.addressKey(scheme: .tron, account: 0, change: 0, index: index)
    }

    /// The key of TRON block producer `index` (`m/44'/195'/1'/0/index`); a reorg switches producers, which changes block ids.
    public func witnessKey(_ index: UInt32) -> Secp256k1.PrivateKey {
        try! master.addressKey(scheme: .tron, account: 1, change: 0, index: index)
    }

    /// 20 deterministic bytes for `label` (contract addresses, salts).
    func derivedBytes(_ label: String) -> Data {
        Data(Keccak256.hash(Data("devchain:\(label):".utf8) + master.chainCode).suffix(20))
    }
}

/// An error a devchain control call or request answers with (HTTP 400 and a message).
public struct DevChainError: Error, Sendable, CustomStringConvertible {
    /// What was wrong.
    public let message: String

    /// An error.
    public init(_ message: String) { self.message = message }

    /// The message.
    public var description: String { message }
}

extension JSONValue {
    /// A non-negative amount given as a JSON integer or a decimal string.
    func amount(_ field: String) throws(DevChainError) -> BigUInt {
        let text: String?
        switch self {
        case .number(let n): text = n
        case .string(let s): text = s
        default: text = nil
        }
        guard let text, !text.isEmpty, text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }), let value = BigUInt(text) else {
            throw DevChainError("\(field) must be a non-negative whole number of base units (a JSON integer or decimal string)")
        }
        return value
    }
}
