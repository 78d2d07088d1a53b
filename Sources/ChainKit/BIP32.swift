import Foundation

/// Why an HD key, derivation or path was rejected; descriptions never contain key material.
public enum HDKeyError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The seed must be 16 to 64 bytes (BIP32).
    case invalidSeedLength(Int)
    /// The extended key string is not valid Base58Check.
    case invalidEncoding(Base58.DecodingError)
    /// The decoded payload is not 78 bytes.
    case wrongLength(Int)
    /// The 4 version bytes are not a known xprv/xpub/yprv/ypub/zprv/zpub/tprv/tpub/… prefix.
    case unknownVersion(UInt32)
    /// A public extended key where a private one was expected, or the reverse.
    case wrongKeyKind(expectedPrivate: Bool)
    /// The key material is invalid (bad private-key padding byte, out-of-range key, or not a curve point).
    case invalidKeyData
    /// Depth 0 with a non-zero parent fingerprint or child number.
    case inconsistentMasterKey
    /// A hardened child cannot be derived from a public key.
    case hardenedDerivationFromPublicKey(index: UInt32)
    /// The derived key is invalid (probability below 2^-127); BIP32 says to use the next index.
    case invalidChild(index: UInt32)
    /// A derivation path that cannot be parsed.
    case invalidPath(String)

    /// A human-readable reason.
    public var description: String {
        switch self {
        case .invalidSeedLength(let n): return "seed must be 16 to 64 bytes, got \(n)"
        case .invalidEncoding(let e):
            // An xprv is a secret: name the position of a bad character, never the character itself.
            if case .invalidCharacter(_, let offset) = e { return "extended key has an invalid base58 character at offset \(offset)" }
            return "extended key is not valid base58check: \(e)"
        case .wrongLength(let n): return "extended key payload must be 78 bytes, got \(n)"
        case .unknownVersion(let v): return "unknown extended key version 0x\(String(v, radix: 16))"
        case .wrongKeyKind(let expectedPrivate):
            return expectedPrivate
                ? "a public extended key where a private one was expected" : "a private extended key where a public one was expected"
        case .invalidKeyData: return "invalid key data in extended key"
        case .inconsistentMasterKey: return "depth 0 key with a parent fingerprint or child number"
        case .hardenedDerivationFromPublicKey(let i): return "hardened child \(i & 0x7fff_ffff)' cannot be derived from a public key"
        case .invalidChild(let i): return "child \(i) is invalid; use the next index"
        case .invalidPath(let reason): return "invalid derivation path: \(reason)"
        }
    }
}

/// The version-byte pair of a serialised extended key (BIP32 / SLIP-132).
public struct ExtendedKeyVersion: Sendable, Hashable, CustomStringConvertible {
    /// Version of the private form (e.g. 0x0488ade4 for xprv).
    public let privateVersion: UInt32
    /// Version of the public form (e.g. 0x0488b21e for xpub).
    public let publicVersion: UInt32
    /// Short name such as "xpub".
    public let name: String

    /// Mainnet BIP32/BIP44 `xprv` / `xpub`.
    public static let xpub = ExtendedKeyVersion(privateVersion: 0x0488_ADE4, publicVersion: 0x0488_B21E, name: "xpub")
    /// Mainnet BIP49 `yprv` / `ypub` (SLIP-132).
    public static let ypub = ExtendedKeyVersion(privateVersion: 0x049D_7878, publicVersion: 0x049D_7CB2, name: "ypub")
    /// Mainnet BIP84 `zprv` / `zpub` (SLIP-132).
    public static let zpub = ExtendedKeyVersion(privateVersion: 0x04B2_430C, publicVersion: 0x04B2_4746, name: "zpub")
    /// Testnet BIP32/BIP44 `tprv` / `tpub`.
    public static let tpub = ExtendedKeyVersion(privateVersion: 0x0435_8394, publicVersion: 0x0435_87CF, name: "tpub")
    /// Testnet BIP49 `uprv` / `upub` (SLIP-132).
    public static let upub = ExtendedKeyVersion(privateVersion: 0x044A_4E28, publicVersion: 0x044A_5262, name: "upub")
    /// Testnet BIP84 `vprv` / `vpub` (SLIP-132).
    public static let vpub = ExtendedKeyVersion(privateVersion: 0x045F_18BC, publicVersion: 0x045F_1CF6, name: "vpub")

    /// Every version understood when parsing.
    public static let known: [ExtendedKeyVersion] = [.xpub, .ypub, .zpub, .tpub, .upub, .vpub]

    /// The short name.
    public var description: String { name }

    /// Finds the version pair for 4 version bytes, and whether they denote the private form.
    static func lookup(_ raw: UInt32) -> (version: ExtendedKeyVersion, isPrivate: Bool)? {
        for version in known {
            if version.privateVersion == raw { return (version, true) }
            if version.publicVersion == raw { return (version, false) }
        }
        return nil
    }
}

/// A BIP32 derivation path such as `m/44'/195'/0'/0/5` (also accepts `h`/`H` for hardened and relative paths like `0/5`).
public struct DerivationPath: Sendable, Hashable, CustomStringConvertible {
    /// One step of a path.
    public struct Component: Sendable, Hashable, CustomStringConvertible {
        /// Index without the hardened bit (0 ..< 2^31).
        public let index: UInt32
        /// Whether the step is hardened.
        public let hardened: Bool

        /// A step; `index` must be below 2^31.
        public init(_ index: UInt32, hardened: Bool = false) {
            precondition(index < 0x8000_0000, "BIP32 index must be below 2^31")
            self.index = index
            self.hardened = hardened
        }

        /// The 32-bit child number with the hardened bit set when hardened.
        public var childNumber: UInt32 { hardened ? index | 0x8000_0000 : index }

        /// `44'` or `5`.
        public var description: String { hardened ? "\(index)'" : "\(index)" }
    }

    /// Hardened offset (2^31).
    public static let hardenedOffset: UInt32 = 0x8000_0000

    /// The steps from the starting key.
    public let components: [Component]

    /// A path from explicit components.
    public init(_ components: [Component]) {
        self.components = components
    }

    /// Parses `m/44'/195'/0'/0/5`, `m`, or a relative `0/5`.
    public init(_ string: String) throws(HDKeyError) {
        var parts = string.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard !string.isEmpty else { throw .invalidPath("empty path") }
        if parts.first == "m" || parts.first == "M" { parts.removeFirst() }
        var components: [Component] = []
        for part in parts {
            var digits = Substring(part)
            var hardened = false
            if let last = digits.last, last == "'" || last == "h" || last == "H" {
                hardened = true
                digits = digits.dropLast()
            }
            guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else {
                throw .invalidPath("'\(part)' is not an index")
            }
            guard digits.count <= 10, let value = UInt64(digits), value < UInt64(DerivationPath.hardenedOffset) else {
                throw .invalidPath("index \(digits) is not below 2^31")
            }
            components.append(Component(UInt32(value), hardened: hardened))
        }
        self.components = components
    }

    /// `m/purpose'/coin'/account'/change/index` (BIP44 layout; BIP84 with purpose 84).
    public static func bip44(purpose: UInt32 = 44, coinType: UInt32, account: UInt32, change: UInt32, index: UInt32) -> DerivationPath {
        DerivationPath([
            Component(purpose, hardened: true), Component(coinType, hardened: true), Component(account, hardened: true),
            Component(change), Component(index),
        ])
    }

    /// `m/purpose'/coin'/account'`, the level whose xpub a watch-only wallet holds.
    public static func account(purpose: UInt32 = 44, coinType: UInt32, account: UInt32) -> DerivationPath {
        DerivationPath([Component(purpose, hardened: true), Component(coinType, hardened: true), Component(account, hardened: true)])
    }

    /// SLIP-44 coin type for TRON.
    public static let tronCoinType: UInt32 = 195
    /// SLIP-44 coin type for Ethereum and EVM chains.
    public static let evmCoinType: UInt32 = 60
    /// SLIP-44 coin type for Bitcoin.
    public static let bitcoinCoinType: UInt32 = 0

    /// `m/…` rendering with `'` for hardened steps.
    public var description: String {
        (["m"] + components.map(\.description)).joined(separator: "/")
    }
}

/// A BIP32 extended private key.
public struct ExtendedPrivateKey: Sendable, Hashable, CustomStringConvertible, CustomReflectable {
    /// The secp256k1 private key.
    public let privateKey: Secp256k1.PrivateKey
    /// Its public key (computed once).
    public let publicKey: Secp256k1.PublicKey
    /// 32-byte chain code.
    public let chainCode: Data
    /// Depth from the master key (0 for the master).
    public let depth: UInt8
    /// First 4 bytes of HASH160 of the parent's public key (0 for the master).
    public let parentFingerprint: UInt32
    /// This key's child number (hardened bit included).
    public let childNumber: UInt32
    /// Version bytes used when serialising (kept from parsing; xprv for keys from a seed).
    public let version: ExtendedKeyVersion

    init(privateKey: Secp256k1.PrivateKey, chainCode: Data, depth: UInt8, parentFingerprint: UInt32, childNumber: UInt32, version: ExtendedKeyVersion)
    {
        self.privateKey = privateKey
        self.publicKey = privateKey.publicKey
        self.chainCode = chainCode
        self.depth = depth
        self.parentFingerprint = parentFingerprint
        self.childNumber = childNumber
        self.version = version
    }

    /// The master key of a BIP32 seed (`HMAC-SHA512("Bitcoin seed", seed)`).
    public init(seed: Data, version: ExtendedKeyVersion = .xpub) throws(HDKeyError) {
        guard (16...64).contains(seed.count) else { throw .invalidSeedLength(seed.count) }
        let i = Hashing.hmacSHA512(key: Data("Bitcoin seed".utf8), data: seed)
        guard let key = try? Secp256k1.PrivateKey(i.prefix(32)) else { throw .invalidKeyData }
        self.init(privateKey: key, chainCode: Data(i.suffix(32)), depth: 0, parentFingerprint: 0, childNumber: 0, version: version)
    }

    /// Parses an xprv / yprv / zprv / tprv / … string.
    public init(serialized string: String) throws(HDKeyError) {
        let fields = try ExtendedKeyFields(string)
        guard fields.isPrivate else { throw .wrongKeyKind(expectedPrivate: true) }
        guard fields.keyData[0] == 0, let key = try? Secp256k1.PrivateKey(fields.keyData.dropFirst()) else { throw .invalidKeyData }
        self.init(
            privateKey: key,
            chainCode: fields.chainCode,
            depth: fields.depth,
            parentFingerprint: fields.parentFingerprint,
            childNumber: fields.childNumber,
            version: fields.version
        )
    }

    /// First 4 bytes of HASH160 of this key's compressed public key.
    public var fingerprint: UInt32 {
        Hashing.hash160(publicKey.compressed).prefix(4).reduce(0) { $0 << 8 | UInt32($1) }
    }

    /// The matching extended public key (neutered).
    public var extendedPublicKey: ExtendedPublicKey {
        ExtendedPublicKey(
            publicKey: publicKey,
            chainCode: chainCode,
            depth: depth,
            parentFingerprint: parentFingerprint,
            childNumber: childNumber,
            version: version
        )
    }

    /// CKDpriv: the child at a 32-bit child number (≥ 2^31 means hardened).
    public func derived(childNumber: UInt32) throws(HDKeyError) -> ExtendedPrivateKey {
        guard depth < UInt8.max else { throw .invalidPath("deeper than 255 levels") }
        var data = Data(capacity: 37)
        if childNumber >= DerivationPath.hardenedOffset {
            data.append(0)
            data.append(privateKey.bytes)
        } else {
            data.append(publicKey.compressed)
        }
        data.append(contentsOf: bigEndianBytes(childNumber))
        let i = Hashing.hmacSHA512(key: chainCode, data: data)
        guard let child = try? privateKey.adding(tweak: Data(i.prefix(32))) else { throw .invalidChild(index: childNumber) }
        return ExtendedPrivateKey(
            privateKey: child,
            chainCode: Data(i.suffix(32)),
            depth: depth + 1,
            parentFingerprint: fingerprint,
            childNumber: childNumber,
            version: version
        )
    }

    /// Derives along every step of `path` from this key.
    public func derived(path: DerivationPath) throws(HDKeyError) -> ExtendedPrivateKey {
        var key = self
        for component in path.components { key = try key.derived(childNumber: component.childNumber) }
        return key
    }

    /// Derives along a path string such as `m/44'/195'/0'/0/5`.
    public func derived(path: String) throws(HDKeyError) -> ExtendedPrivateKey {
        try derived(path: DerivationPath(path))
    }

    /// Base58Check serialisation with this key's version (or another one, e.g. `.zpub` to export a zprv).
    public func serialized(version: ExtendedKeyVersion? = nil) -> String {
        serializeExtendedKey(
            version: (version ?? self.version).privateVersion,
            depth: depth,
            parentFingerprint: parentFingerprint,
            childNumber: childNumber,
            chainCode: chainCode,
            keyData: Data([0]) + privateKey.bytes
        )
    }

    /// Redacted: private keys are never printed.
    public var description: String { "ExtendedPrivateKey(depth: \(depth), <redacted>)" }

    /// Empty mirror so that `dump` does not print the key either.
    public var customMirror: Mirror { Mirror(self, children: []) }
}

/// A BIP32 extended public key, which derives non-hardened children for watch-only wallets.
public struct ExtendedPublicKey: Sendable, Hashable, CustomStringConvertible {
    /// The secp256k1 public key.
    public let publicKey: Secp256k1.PublicKey
    /// 32-byte chain code.
    public let chainCode: Data
    /// Depth from the master key.
    public let depth: UInt8
    /// First 4 bytes of HASH160 of the parent's public key (0 for the master).
    public let parentFingerprint: UInt32
    /// This key's child number (hardened bit included).
    public let childNumber: UInt32
    /// Version bytes used when serialising.
    public let version: ExtendedKeyVersion

    init(publicKey: Secp256k1.PublicKey, chainCode: Data, depth: UInt8, parentFingerprint: UInt32, childNumber: UInt32, version: ExtendedKeyVersion) {
        self.publicKey = publicKey
        self.chainCode = chainCode
        self.depth = depth
        self.parentFingerprint = parentFingerprint
        self.childNumber = childNumber
        self.version = version
    }

    /// Parses an xpub / ypub / zpub / tpub / … string.
    public init(serialized string: String) throws(HDKeyError) {
        let fields = try ExtendedKeyFields(string)
        guard !fields.isPrivate else { throw .wrongKeyKind(expectedPrivate: false) }
        guard fields.keyData[0] == 2 || fields.keyData[0] == 3, let key = try? Secp256k1.PublicKey(fields.keyData) else {
            throw .invalidKeyData
        }
        self.init(
            publicKey: key,
            chainCode: fields.chainCode,
            depth: fields.depth,
            parentFingerprint: fields.parentFingerprint,
            childNumber: fields.childNumber,
            version: fields.version
        )
    }

    /// First 4 bytes of HASH160 of this key's compressed public key.
    public var fingerprint: UInt32 {
        Hashing.hash160(publicKey.compressed).prefix(4).reduce(0) { $0 << 8 | UInt32($1) }
    }

    /// CKDpub: the non-hardened child at `index`; throws for hardened child numbers.
    public func derived(childNumber: UInt32) throws(HDKeyError) -> ExtendedPublicKey {
        guard childNumber < DerivationPath.hardenedOffset else { throw .hardenedDerivationFromPublicKey(index: childNumber) }
        guard depth < UInt8.max else { throw .invalidPath("deeper than 255 levels") }
        var data = publicKey.compressed
        data.append(contentsOf: bigEndianBytes(childNumber))
        let i = Hashing.hmacSHA512(key: chainCode, data: data)
        guard let child = try? publicKey.adding(tweak: Data(i.prefix(32))) else { throw .invalidChild(index: childNumber) }
        return ExtendedPublicKey(
            publicKey: child,
            chainCode: Data(i.suffix(32)),
            depth: depth + 1,
            parentFingerprint: fingerprint,
            childNumber: childNumber,
            version: version
        )
    }

    /// Derives along a path of non-hardened steps (e.g. `0/5` from an account xpub).
    public func derived(path: DerivationPath) throws(HDKeyError) -> ExtendedPublicKey {
        var key = self
        for component in path.components { key = try key.derived(childNumber: component.childNumber) }
        return key
    }

    /// Derives along a path string such as `0/5`.
    public func derived(path: String) throws(HDKeyError) -> ExtendedPublicKey {
        try derived(path: DerivationPath(path))
    }

    /// Base58Check serialisation with this key's version (or another one, e.g. `.zpub`).
    public func serialized(version: ExtendedKeyVersion? = nil) -> String {
        serializeExtendedKey(
            version: (version ?? self.version).publicVersion,
            depth: depth,
            parentFingerprint: parentFingerprint,
            childNumber: childNumber,
            chainCode: chainCode,
            keyData: publicKey.compressed
        )
    }

    /// The serialised key.
    public var description: String { serialized() }
}

private func bigEndianBytes(_ value: UInt32) -> [UInt8] {
    [UInt8(value >> 24), UInt8(truncatingIfNeeded: value >> 16), UInt8(truncatingIfNeeded: value >> 8), UInt8(truncatingIfNeeded: value)]
}

private func serializeExtendedKey(
    version: UInt32,
    depth: UInt8,
    parentFingerprint: UInt32,
    childNumber: UInt32,
    chainCode: Data,
    keyData: Data
) -> String {
    var payload = Data(capacity: 78)
    payload.append(contentsOf: bigEndianBytes(version))
    payload.append(depth)
    payload.append(contentsOf: bigEndianBytes(parentFingerprint))
    payload.append(contentsOf: bigEndianBytes(childNumber))
    payload.append(chainCode)
    payload.append(keyData)
    return Base58.encodeCheck(payload)
}

/// The fields of a decoded 78-byte extended key payload.
private struct ExtendedKeyFields {
    let version: ExtendedKeyVersion
    let isPrivate: Bool
    let depth: UInt8
    let parentFingerprint: UInt32
    let childNumber: UInt32
    let chainCode: Data
    let keyData: Data

    init(_ string: String) throws(HDKeyError) {
        let payload: [UInt8]
        do {
            payload = Array(try Base58.decodeCheck(string))
        } catch {
            throw .invalidEncoding(error)
        }
        guard payload.count == 78 else { throw .wrongLength(payload.count) }
        func u32(_ at: Int) -> UInt32 { payload[at..<(at + 4)].reduce(0) { $0 << 8 | UInt32($1) } }
        let raw = u32(0)
        guard let (version, isPrivate) = ExtendedKeyVersion.lookup(raw) else { throw .unknownVersion(raw) }
        self.version = version
        self.isPrivate = isPrivate
        depth = payload[4]
        parentFingerprint = u32(5)
        childNumber = u32(9)
        chainCode = Data(payload[13..<45])
        keyData = Data(payload[45..<78])
        if depth == 0 && (parentFingerprint != 0 || childNumber != 0) { throw .inconsistentMasterKey }
    }
}
