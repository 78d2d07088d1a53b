import Foundation

/// Lower-case hexadecimal encoding and strict decoding of byte strings.
public enum Hex {
    /// Errors thrown when a string is not valid hexadecimal.
    public enum DecodingError: Error, Equatable, Sendable, CustomStringConvertible {
        /// The number of hex digits is odd.
        case oddLength(Int)
        /// A character that is not a hex digit, with its offset (after any `0x` prefix).
        case invalidCharacter(Character, offset: Int)

        /// A human-readable reason.
        public var description: String {
            switch self {
            case .oddLength(let n): return "odd number of hex digits (\(n))"
            case .invalidCharacter(let c, let offset): return "invalid hex character '\(c)' at offset \(offset)"
            }
        }
    }

    private static let digits: [UInt8] = Array("0123456789abcdef".utf8)

    /// Encodes bytes as lower-case hex without a `0x` prefix.
    public static func encode<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        // Contiguous bytes (Data, arrays) take the fast path: node JSON is mostly hex.
        if let encoded = bytes.withContiguousStorageIfAvailable(encode(buffer:)) { return encoded }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.underestimatedCount * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func encode(buffer: UnsafeBufferPointer<UInt8>) -> String {
        String(unsafeUninitializedCapacity: buffer.count * 2) { out in
            digits.withUnsafeBufferPointer { table in
                for (i, b) in buffer.enumerated() {
                    out[2 * i] = table[Int(b >> 4)]
                    out[2 * i + 1] = table[Int(b & 0x0f)]
                }
            }
            return buffer.count * 2
        }
    }

    /// Decodes hex (either case); an optional `0x`/`0X` prefix is accepted when `allowPrefix` is true.
    public static func decode(_ string: String, allowPrefix: Bool = true) throws(DecodingError) -> Data {
        var utf8 = Array(string.utf8)
        if allowPrefix, utf8.count >= 2, utf8[0] == UInt8(ascii: "0"), utf8[1] == UInt8(ascii: "x") || utf8[1] == UInt8(ascii: "X") {
            utf8.removeFirst(2)
        }
        guard utf8.count % 2 == 0 else { throw .oddLength(utf8.count) }
        var out = Data(capacity: utf8.count / 2)
        var i = 0
        while i < utf8.count {
            guard let hi = nibble(utf8[i]) else { throw .invalidCharacter(character(in: utf8, at: i), offset: i) }
            guard let lo = nibble(utf8[i + 1]) else { throw .invalidCharacter(character(in: utf8, at: i + 1), offset: i + 1) }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }

    static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    private static func character(in utf8: [UInt8], at index: Int) -> Character {
        let scalar = Unicode.Scalar(utf8[index])
        return Character(scalar)
    }
}
