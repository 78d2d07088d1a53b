import Foundation

/// Base58 (Bitcoin alphabet) and Base58Check encoding, used by Bitcoin legacy addresses, WIF, extended keys and TRON addresses.
public enum Base58 {
    /// Errors thrown while decoding Base58 or Base58Check.
    public enum DecodingError: Error, Equatable, Sendable, CustomStringConvertible {
        /// The input is empty.
        case empty
        /// Longer than `Base58.maxInputLength` characters (decoding is quadratic, so untrusted input is capped).
        case tooLong(Int)
        /// A character outside the Base58 alphabet (`0`, `O`, `I`, `l`, spaces and non-ASCII are not in it), with its offset.
        case invalidCharacter(Character, offset: Int)
        /// Base58Check: the payload is shorter than the 4-byte checksum.
        case tooShort
        /// Base58Check: the last 4 bytes are not `sha256d(payload)[0..<4]`.
        case checksumMismatch

        /// A human-readable reason.
        public var description: String {
            switch self {
            case .empty: return "empty string"
            case .tooLong(let n): return "too long for base58: \(n) characters, at most \(Base58.maxInputLength)"
            case .invalidCharacter(let c, let offset): return "'\(c)' at offset \(offset) is not a base58 character"
            case .tooShort: return "too short for a base58check checksum"
            case .checksumMismatch: return "base58check checksum mismatch"
            }
        }
    }

    /// The Bitcoin Base58 alphabet.
    public static let alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
    private static let alphabetBytes: [UInt8] = Array(alphabet.utf8)
    private static let reverse: [Int8] = {
        var table = [Int8](repeating: -1, count: 128)
        for (i, c) in alphabet.utf8.enumerated() { table[Int(c)] = Int8(i) }
        return table
    }()

    /// Encodes bytes as Base58 (each leading zero byte becomes a leading `1`).
    public static func encode<D: DataProtocol>(_ data: D) -> String {
        let bytes = Array(data)
        let zeros = bytes.prefix(while: { $0 == 0 }).count
        // Base-58 digits, little-endian.
        var digits: [UInt8] = []
        digits.reserveCapacity(bytes.count * 138 / 100 + 1)
        for byte in bytes[zeros...] {
            var carry = Int(byte)
            for i in 0..<digits.count {
                carry += Int(digits[i]) << 8
                digits[i] = UInt8(carry % 58)
                carry /= 58
            }
            while carry > 0 {
                digits.append(UInt8(carry % 58))
                carry /= 58
            }
        }
        var out = [UInt8](repeating: alphabetBytes[0], count: zeros)
        out.append(contentsOf: digits.reversed().map { alphabetBytes[Int($0)] })
        return String(decoding: out, as: UTF8.self)
    }

    /// The longest string `decode` accepts (addresses are ≤ 35 characters, extended keys 111).
    public static let maxInputLength = 256

    /// Decodes a Base58 string; every leading `1` becomes a zero byte.
    public static func decode(_ string: String) throws(DecodingError) -> Data {
        guard !string.isEmpty else { throw .empty }
        guard string.utf8.count <= maxInputLength else { throw .tooLong(string.utf8.count) }
        var values: [UInt8] = []
        values.reserveCapacity(string.utf8.count)
        for (offset, character) in string.enumerated() {
            guard let ascii = character.asciiValue, reverse[Int(ascii)] >= 0 else {
                throw .invalidCharacter(character, offset: offset)
            }
            values.append(UInt8(reverse[Int(ascii)]))
        }
        let zeros = values.prefix(while: { $0 == 0 }).count
        var bytes: [UInt8] = []  // little-endian base-256
        bytes.reserveCapacity(values.count * 733 / 1000 + 1)
        for value in values[zeros...] {
            var carry = Int(value)
            for i in 0..<bytes.count {
                carry += Int(bytes[i]) * 58
                bytes[i] = UInt8(carry & 0xff)
                carry >>= 8
            }
            while carry > 0 {
                bytes.append(UInt8(carry & 0xff))
                carry >>= 8
            }
        }
        return Data(repeating: 0, count: zeros) + Data(bytes.reversed())
    }

    /// Base58Check: `base58(payload || sha256d(payload)[0..<4])`.
    public static func encodeCheck<D: DataProtocol>(_ payload: D) -> String {
        var data = Data(payload)
        data.append(Hashing.sha256d(data).prefix(4))
        return encode(data)
    }

    /// Decodes Base58Check and returns the payload without its checksum.
    public static func decodeCheck(_ string: String) throws(DecodingError) -> Data {
        let data = try decode(string)
        guard data.count >= 4 else { throw .tooShort }
        let payload = data.prefix(data.count - 4)
        let checksum = data.suffix(4)
        guard Hashing.sha256d(payload).prefix(4) == checksum else { throw .checksumMismatch }
        return Data(payload)
    }
}
