import Foundation

/// A 20-byte Ethereum / EVM account address.
public struct EVMAddress: Sendable, Hashable, CustomStringConvertible {
    /// The 20 address bytes.
    public let bytes: Data

    /// The zero address (never a valid payout destination).
    public static let zero = EVMAddress(uncheckedBytes: Data(count: 20))

    init(uncheckedBytes: Data) {
        bytes = uncheckedBytes
    }

    /// Wraps 20 raw bytes.
    public init(bytes: Data) throws(AddressError) {
        guard bytes.count == 20 else { throw .wrongPayloadLength(expected: 20, got: bytes.count) }
        self.bytes = Data(bytes)
    }

    /// The address of a public key: the last 20 bytes of `keccak256(X || Y)`.
    public init(publicKey: Secp256k1.PublicKey) {
        bytes = Data(Keccak256.hash(publicKey.rawXY).suffix(20))
    }

    /// Validates a user-supplied address: `0x` + 40 hex digits; all-lower or all-upper case is accepted, mixed case must be the EIP-55 checksum.
    public init(_ string: String) throws(AddressError) {
        try AddressValidator.checkNotBlank(string)
        if AddressValidator.looksLikeTronHex(string) || AddressValidator.looksLikeTronBase58(string) {
            throw .wrongChain("a TRON address, not an EVM")
        }
        guard string.hasPrefix("0x") else { throw .missingHexPrefix }
        let utf8 = Array(string.utf8)
        guard utf8.count == 42 else { throw .wrongLength(expected: 42, got: string.count) }
        var bytes = Data(capacity: 20)
        var hasLower = false
        var hasUpper = false
        for i in stride(from: 2, to: 42, by: 2) {
            guard let hi = Hex.nibble(utf8[i]) else { throw .invalidCharacter(Character(Unicode.Scalar(utf8[i])), offset: i) }
            guard let lo = Hex.nibble(utf8[i + 1]) else { throw .invalidCharacter(Character(Unicode.Scalar(utf8[i + 1])), offset: i + 1) }
            bytes.append(hi << 4 | lo)
        }
        for c in utf8[2...] {
            if c >= UInt8(ascii: "a") && c <= UInt8(ascii: "f") { hasLower = true }
            if c >= UInt8(ascii: "A") && c <= UInt8(ascii: "F") { hasUpper = true }
        }
        self.bytes = bytes
        if hasLower && hasUpper && checksummed != string { throw .eip55ChecksumMismatch }
    }

    /// `0x` + 40 lower-case hex digits.
    public var lowercased: String { "0x" + Hex.encode(bytes) }

    /// The EIP-55 mixed-case checksummed form.
    public var checksummed: String {
        let lower = Hex.encode(bytes)
        let hash = Keccak256.hash(Array(lower.utf8))
        var out = "0x"
        for (i, c) in lower.enumerated() {
            let nibble = (hash[i / 2] >> (i % 2 == 0 ? 4 : 0)) & 0x0f
            out.append(c.isLetter && nibble >= 8 ? Character(c.uppercased()) : c)
        }
        return out
    }

    /// Whether this is the zero address.
    public var isZero: Bool { bytes.allSatisfy { $0 == 0 } }

    /// The checksummed form.
    public var description: String { checksummed }
}
