import Foundation

/// Bech32 (BIP173) and Bech32m (BIP350) encoding, plus segwit address encoding on top of them.
public enum Bech32 {
    /// Which checksum constant a string uses.
    public enum Variant: Sendable, Equatable, CustomStringConvertible {
        /// BIP173 bech32 (constant 1): segwit version 0.
        case bech32
        /// BIP350 bech32m (constant 0x2bc830a3): segwit versions 1 to 16.
        case bech32m

        var constant: UInt32 {
            switch self {
            case .bech32: return 1
            case .bech32m: return 0x2bc8_30a3
            }
        }

        /// `bech32` or `bech32m`.
        public var description: String {
            switch self {
            case .bech32: return "bech32"
            case .bech32m: return "bech32m"
            }
        }
    }

    /// Errors thrown while decoding bech32 strings and segwit addresses.
    public enum DecodingError: Error, Equatable, Sendable, CustomStringConvertible {
        /// Longer than the 90-character limit.
        case tooLong(Int)
        /// A character outside the printable ASCII range or the bech32 data alphabet, with its offset.
        case invalidCharacter(Character, offset: Int)
        /// Upper- and lower-case letters mixed.
        case mixedCase
        /// No `1` separator, or an empty human-readable part.
        case missingSeparator
        /// Fewer than 6 characters after the separator (cannot hold a checksum).
        case dataTooShort
        /// The checksum matches neither bech32 nor bech32m.
        case checksumMismatch
        /// The human-readable part is not the expected one.
        case wrongHumanReadablePart(expected: String, found: String)
        /// Segwit: no witness version in the data part.
        case emptyData
        /// Segwit: witness version above 16.
        case invalidWitnessVersion(Int)
        /// Segwit: the 5-to-8 bit conversion left more than 4 bits or non-zero padding.
        case invalidPadding
        /// Segwit: witness program length outside 2...40, or not 20/32 for version 0.
        case invalidProgramLength(version: Int, length: Int)
        /// Segwit: version 0 must use bech32 and versions 1+ bech32m.
        case wrongVariant(version: Int, expected: Variant)

        /// A human-readable reason.
        public var description: String {
            switch self {
            case .tooLong(let n): return "too long: \(n) characters, at most 90"
            case .invalidCharacter(let c, let offset): return "invalid bech32 character '\(c)' at offset \(offset)"
            case .mixedCase: return "mixed upper and lower case"
            case .missingSeparator: return "missing '1' separator or empty human-readable part"
            case .dataTooShort: return "data part too short for a checksum"
            case .checksumMismatch: return "checksum mismatch"
            case .wrongHumanReadablePart(let expected, let found): return "human-readable part '\(found)' where '\(expected)' was expected"
            case .emptyData: return "empty data section (no witness version)"
            case .invalidWitnessVersion(let v): return "witness version \(v) (max 16)"
            case .invalidPadding: return "invalid padding in the 5-to-8 bit conversion"
            case .invalidProgramLength(let v, let n):
                return v == 0
                    ? "witness v0 program of \(n) bytes (must be 20 or 32)"
                    : "witness program of \(n) bytes (must be 2 to 40)"
            case .wrongVariant(let v, let expected): return "witness v\(v) must be encoded with \(expected)"
            }
        }
    }

    private static let charset: [UInt8] = Array("qpzry9x8gf2tvdw0s3jn54khce6mua7l".utf8)
    private static let charsetReverse: [Int8] = {
        var table = [Int8](repeating: -1, count: 128)
        for (i, c) in charset.enumerated() { table[Int(c)] = Int8(i) }
        return table
    }()

    private static func polymod(_ values: [UInt8]) -> UInt32 {
        let generator: [UInt32] = [0x3b6a_57b2, 0x2650_8e6d, 0x1ea1_19fa, 0x3d42_33dd, 0x2a14_62b3]
        var chk: UInt32 = 1
        for v in values {
            let top = chk >> 25
            chk = (chk & 0x1ff_ffff) << 5 ^ UInt32(v)
            for i in 0..<5 where (top >> UInt32(i)) & 1 == 1 {
                chk ^= generator[i]
            }
        }
        return chk
    }

    private static func expand(_ hrp: [UInt8]) -> [UInt8] {
        hrp.map { $0 >> 5 } + [0] + hrp.map { $0 & 31 }
    }

    /// Encodes 5-bit values under a lower-case human-readable part.
    public static func encode(hrp: String, values: [UInt8], variant: Variant) -> String {
        let hrpBytes = Array(hrp.lowercased().utf8)
        let mod = polymod(expand(hrpBytes) + values + [0, 0, 0, 0, 0, 0]) ^ variant.constant
        let checksum = (0..<6).map { UInt8((mod >> (5 * (5 - UInt32($0)))) & 31) }
        let body = (values + checksum).map { charset[Int($0)] }
        return String(decoding: hrpBytes + [UInt8(ascii: "1")] + body, as: UTF8.self)
    }

    /// Decodes a bech32/bech32m string into its lower-cased human-readable part, 5-bit values (checksum removed) and variant.
    public static func decode(_ string: String) throws(DecodingError) -> (hrp: String, values: [UInt8], variant: Variant) {
        let count = string.count
        guard count <= 90 else { throw .tooLong(count) }
        var hasLower = false
        var hasUpper = false
        var bytes: [UInt8] = []
        for (offset, character) in string.enumerated() {
            guard let ascii = character.asciiValue, ascii >= 33, ascii <= 126 else {
                throw .invalidCharacter(character, offset: offset)
            }
            if character.isLowercase { hasLower = true }
            if character.isUppercase { hasUpper = true }
            bytes.append(ascii)
        }
        if hasLower && hasUpper { throw .mixedCase }
        bytes = bytes.map { ($0 >= 65 && $0 <= 90) ? $0 + 32 : $0 }
        guard let separator = bytes.lastIndex(of: UInt8(ascii: "1")), separator >= 1 else { throw .missingSeparator }
        guard bytes.count - separator - 1 >= 6 else { throw .dataTooShort }
        let hrp = Array(bytes[..<separator])
        var values: [UInt8] = []
        for i in (separator + 1)..<bytes.count {
            let v = charsetReverse[Int(bytes[i])]
            guard v >= 0 else {
                throw .invalidCharacter(Character(Unicode.Scalar(bytes[i])), offset: i)
            }
            values.append(UInt8(v))
        }
        let mod = polymod(expand(hrp) + values)
        let variant: Variant
        switch mod {
        case Variant.bech32.constant: variant = .bech32
        case Variant.bech32m.constant: variant = .bech32m
        default: throw .checksumMismatch
        }
        return (String(decoding: hrp, as: UTF8.self), Array(values.dropLast(6)), variant)
    }

    /// Regroups bits (for example 8-bit bytes into 5-bit values); returns nil when `pad` is false and the input has excess or non-zero padding.
    public static func convertBits(_ data: [UInt8], from: Int, to: Int, pad: Bool) -> [UInt8]? {
        var acc = 0
        var bits = 0
        var out: [UInt8] = []
        let maxValue = (1 << to) - 1
        for value in data {
            guard Int(value) >> from == 0 else { return nil }
            acc = (acc << from) | Int(value)
            bits += from
            while bits >= to {
                bits -= to
                out.append(UInt8((acc >> bits) & maxValue))
            }
            acc &= (1 << bits) - 1
        }
        if pad {
            if bits > 0 { out.append(UInt8((acc << (to - bits)) & maxValue)) }
        } else if bits >= from || ((acc << (to - bits)) & maxValue) != 0 {
            return nil
        }
        return out
    }

    /// Encodes a segwit address (bech32 for version 0, bech32m for versions 1 to 16).
    public static func encodeSegwit(hrp: String, version: Int, program: Data) -> String {
        precondition((0...16).contains(version), "witness version must be 0...16")
        let values = [UInt8(version)] + convertBits(Array(program), from: 8, to: 5, pad: true)!
        return encode(hrp: hrp, values: values, variant: version == 0 ? .bech32 : .bech32m)
    }

    /// Decodes a segwit address for the expected human-readable part, enforcing BIP173/BIP350 rules.
    public static func decodeSegwit(hrp expectedHRP: String, _ address: String) throws(DecodingError) -> (version: Int, program: Data) {
        let (hrp, values, variant) = try decode(address)
        guard hrp == expectedHRP.lowercased() else { throw .wrongHumanReadablePart(expected: expectedHRP.lowercased(), found: hrp) }
        guard let first = values.first else { throw .emptyData }
        let version = Int(first)
        guard version <= 16 else { throw .invalidWitnessVersion(version) }
        guard let program = convertBits(Array(values.dropFirst()), from: 5, to: 8, pad: false) else { throw .invalidPadding }
        guard (2...40).contains(program.count) else { throw .invalidProgramLength(version: version, length: program.count) }
        if version == 0 && program.count != 20 && program.count != 32 {
            throw .invalidProgramLength(version: version, length: program.count)
        }
        let expected: Variant = version == 0 ? .bech32 : .bech32m
        guard variant == expected else { throw .wrongVariant(version: version, expected: expected) }
        return (version, Data(program))
    }
}
