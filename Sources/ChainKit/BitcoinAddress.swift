import Foundation

/// A Bitcoin network: fixes the bech32 human-readable part and the Base58 version bytes.
public enum BitcoinNetwork: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// Bitcoin mainnet (`bc`, 0x00, 0x05).
    case mainnet
    /// Testnet and signet (`tb`, 0x6f, 0xc4).
    case testnet
    /// Regtest (`bcrt`, 0x6f, 0xc4).
    case regtest

    /// The bech32 human-readable part.
    public var bech32HRP: String {
        switch self {
        case .mainnet: return "bc"
        case .testnet: return "tb"
        case .regtest: return "bcrt"
        }
    }

    /// Base58 version byte of P2PKH addresses.
    public var p2pkhVersion: UInt8 { self == .mainnet ? 0x00 : 0x6f }

    /// Base58 version byte of P2SH addresses.
    public var p2shVersion: UInt8 { self == .mainnet ? 0x05 : 0xc4 }

    /// The network name.
    public var description: String { rawValue }
}

/// A parsed Bitcoin address: legacy P2PKH / P2SH or a segwit witness program, on one network.
public struct BitcoinAddress: Sendable, Hashable, CustomStringConvertible {
    /// What the address commits to.
    public enum Payload: Sendable, Hashable {
        /// Pay to public-key hash (20-byte HASH160).
        case p2pkh(Data)
        /// Pay to script hash (20-byte HASH160).
        case p2sh(Data)
        /// Segwit: witness version 0...16 and a 2 to 40 byte program.
        case witness(version: Int, program: Data)
    }

    /// The script type, named as in the address vectors.
    public enum Kind: String, Sendable, Hashable {
        /// Legacy pay to public-key hash (`1…`).
        case p2pkh
        /// Legacy pay to script hash (`3…`).
        case p2sh
        /// Segwit v0, 20-byte program (`bc1q…`).
        case p2wpkh
        /// Segwit v0, 32-byte program.
        case p2wsh
        /// Segwit v1, 32-byte program (taproot, `bc1p…`).
        case p2tr
        /// A valid segwit encoding of a script type without defined spending rules (v1 not 32 bytes, v2+); refuse to pay to it.
        case witnessUnknown = "witness_unknown"
    }

    /// The network the address belongs to.
    public let network: BitcoinNetwork
    /// The decoded payload.
    public let payload: Payload

    /// Wraps a payload (its sizes are checked).
    public init(payload: Payload, network: BitcoinNetwork) throws(AddressError) {
        switch payload {
        case .p2pkh(let hash), .p2sh(let hash):
            guard hash.count == 20 else { throw .wrongPayloadLength(expected: 20, got: hash.count) }
        case .witness(let version, let program):
            guard (0...16).contains(version) else { throw .invalidSegwit(.invalidWitnessVersion(version)) }
            guard (2...40).contains(program.count), version != 0 || program.count == 20 || program.count == 32 else {
                throw .invalidSegwit(.invalidProgramLength(version: version, length: program.count))
            }
        }
        self.payload = payload
        self.network = network
    }

    /// P2WPKH (`bc1q…`) of a compressed public key.
    public static func p2wpkh(publicKey: Secp256k1.PublicKey, network: BitcoinNetwork = .mainnet) -> BitcoinAddress {
        try! BitcoinAddress(payload: .witness(version: 0, program: Hashing.hash160(publicKey.compressed)), network: network)
    }

    /// P2PKH (`1…`) of a compressed public key.
    public static func p2pkh(publicKey: Secp256k1.PublicKey, network: BitcoinNetwork = .mainnet) -> BitcoinAddress {
        try! BitcoinAddress(payload: .p2pkh(Hashing.hash160(publicKey.compressed)), network: network)
    }

    /// BIP86 single-key taproot (`bc1p…`): output key = internal key (even y) + tagged-hash("TapTweak", x)·G.
    public static func p2tr(internalKey: Secp256k1.PublicKey, network: BitcoinNetwork = .mainnet) throws(Secp256k1.Error) -> BitcoinAddress {
        let x = internalKey.compressed.dropFirst()
        let evenKey = try Secp256k1.PublicKey(Data([0x02]) + x)
        let tweaked = try evenKey.adding(tweak: Hashing.taggedHash(tag: "TapTweak", x))
        return try! BitcoinAddress(payload: .witness(version: 1, program: Data(tweaked.compressed.dropFirst())), network: network)
    }

    /// Validates a user-supplied address for `network`: P2PKH, P2SH, bech32 v0 (20/32 bytes) or bech32m v1+.
    public init(_ string: String, network: BitcoinNetwork) throws(AddressError) {
        try AddressValidator.checkNotBlank(string)
        // The longest Bitcoin address is a 90-character bech32 string; refuse more before any decoding work.
        guard string.utf8.count <= 90 else { throw .tooLong(max: 90, got: string.utf8.count) }
        if AddressValidator.looksLikeEVM(string) { throw .wrongChain("an EVM 0x address, not a Bitcoin") }
        let lower = string.lowercased()
        let knownHRPs = BitcoinNetwork.allCases.map(\.bech32HRP)
        // bcrt1 before bc1 is irrelevant: "bcrt1" does not start with "bc1".
        if knownHRPs.contains(where: { lower.hasPrefix($0 + "1") }) {
            try self.init(segwit: string, network: network)
            return
        }
        // Another chain's bech32 address (e.g. ltc1…): a valid checksum under a foreign human-readable part.
        if let decoded = try? Bech32.decode(string) {
            throw .unsupportedPrefix("human-readable part '\(decoded.hrp)', expected '\(network.bech32HRP)'")
        }
        do {
            try self.init(base58: string, network: network)
        } catch {
            // Something like "bcq…" is a bech32 address with a damaged separator, not base58.
            if case .invalidCharacter = error, knownHRPs.contains(where: { lower.hasPrefix($0) }) {
                try self.init(segwit: string, network: network)
                return
            }
            throw error
        }
    }

    private init(segwit string: String, network: BitcoinNetwork) throws(AddressError) {
        let hrp: String
        do {
            hrp = try Bech32.decode(string).hrp
        } catch {
            throw Self.mapBech32(error)
        }
        guard hrp == network.bech32HRP else {
            if let other = BitcoinNetwork.allCases.first(where: { $0.bech32HRP == hrp }) {
                throw .wrongNetwork(expected: network.rawValue, found: other.rawValue)
            }
            throw .unsupportedPrefix("human-readable part '\(hrp)', expected '\(network.bech32HRP)'")
        }
        do {
            let (version, program) = try Bech32.decodeSegwit(hrp: hrp, string)
            payload = .witness(version: version, program: program)
            self.network = network
        } catch {
            throw Self.mapBech32(error)
        }
    }

    private static func mapBech32(_ error: Bech32.DecodingError) -> AddressError {
        switch error {
        case .checksumMismatch: return .checksumMismatch
        case .invalidCharacter(let c, let offset): return .invalidCharacter(c, offset: offset)
        case .mixedCase: return .mixedCase
        case .tooLong(let n): return .tooLong(max: 90, got: n)
        default: return .invalidSegwit(error)
        }
    }

    private init(base58 string: String, network: BitcoinNetwork) throws(AddressError) {
        let data: Data
        do {
            data = try Base58.decodeCheck(string)
        } catch {
            switch error {
            case .empty: throw .empty
            case .tooLong(let n): throw .tooLong(max: 90, got: n)
            case .invalidCharacter(let c, let offset): throw .invalidCharacter(c, offset: offset)
            case .checksumMismatch: throw .checksumMismatch
            case .tooShort: throw .wrongPayloadLength(expected: 21, got: 0)
            }
        }
        guard data.count == 21 else { throw .wrongPayloadLength(expected: 21, got: data.count) }
        let version = data[data.startIndex]
        let hash = Data(data.dropFirst())
        switch version {
        case network.p2pkhVersion: payload = .p2pkh(hash)
        case network.p2shVersion: payload = .p2sh(hash)
        default:
            if let other = BitcoinNetwork.allCases.first(where: { $0.p2pkhVersion == version || $0.p2shVersion == version }) {
                // testnet and regtest share version bytes; name them together.
                let found = other == .mainnet ? "mainnet" : "testnet/regtest"
                throw .wrongNetwork(expected: network.rawValue, found: found)
            }
            if version == TronAddress.prefixByte { throw .wrongChain("a TRON address, not a Bitcoin") }
            throw .unsupportedPrefix("version byte 0x\(Hex.encode([version]))")
        }
        self.network = network
    }

    /// The script type.
    public var kind: Kind {
        switch payload {
        case .p2pkh: return .p2pkh
        case .p2sh: return .p2sh
        case .witness(0, let program): return program.count == 20 ? .p2wpkh : .p2wsh
        case .witness(1, let program) where program.count == 32: return .p2tr
        case .witness: return .witnessUnknown
        }
    }

    /// The address string (segwit in lower case).
    public var string: String {
        switch payload {
        case .p2pkh(let hash): return Base58.encodeCheck(Data([network.p2pkhVersion]) + hash)
        case .p2sh(let hash): return Base58.encodeCheck(Data([network.p2shVersion]) + hash)
        case .witness(let version, let program): return Bech32.encodeSegwit(hrp: network.bech32HRP, version: version, program: program)
        }
    }

    /// The output script (scriptPubKey) paying to this address.
    public var scriptPubKey: Data {
        switch payload {
        case .p2pkh(let hash): return Data([0x76, 0xa9, 0x14]) + hash + Data([0x88, 0xac])
        case .p2sh(let hash): return Data([0xa9, 0x14]) + hash + Data([0x87])
        case .witness(let version, let program):
            return Data([version == 0 ? 0x00 : UInt8(0x50 + version), UInt8(program.count)]) + program
        }
    }

    /// The address string.
    public var description: String { string }
}

extension Secp256k1.PrivateKey {
    /// Wallet Import Format for a compressed key: base58check(0x80 or 0xef || key || 0x01).
    public func wif(network: BitcoinNetwork = .mainnet) -> String {
        Base58.encodeCheck(Data([network == .mainnet ? 0x80 : 0xef]) + bytes + Data([0x01]))
    }

    /// Parses a WIF private key (compressed or uncompressed form, mainnet or testnet).
    public init(wif: String) throws(Secp256k1.Error) {
        guard let payload = try? Base58.decodeCheck(wif),
            let version = payload.first, version == 0x80 || version == 0xef,
            payload.count == 33 || (payload.count == 34 && payload.last == 0x01)
        else { throw .invalidPrivateKey }
        try self.init(payload.dropFirst().prefix(32))
    }
}
