import BigInt
import Foundation

/// Recursive Length Prefix encoding (Ethereum yellow paper, appendix B), with a strict canonical decoder.
public enum RLP {
    /// An RLP value: a byte string or a list of values.
    public indirect enum Item: Sendable, Hashable {
        /// A byte string.
        case bytes(Data)
        /// A list of items.
        case list([Item])

        /// An unsigned integer as a minimal big-endian byte string (zero is the empty string).
        public static func uint(_ value: BigUInt) -> Item {
            .bytes(value.serialize())
        }

        /// An unsigned integer as a minimal big-endian byte string (zero is the empty string).
        public static func uint(_ value: UInt64) -> Item {
            .uint(BigUInt(value))
        }

        /// The byte string, or nil for a list.
        public var bytesValue: Data? {
            if case .bytes(let data) = self { return data }
            return nil
        }

        /// The list items, or nil for a byte string.
        public var listValue: [Item]? {
            if case .list(let items) = self { return items }
            return nil
        }
    }

    /// Why bytes are not canonical RLP (or not the expected shape).
    public enum DecodingError: Error, Equatable, Sendable, CustomStringConvertible {
        /// No input.
        case empty
        /// The input ends inside an item.
        case truncated
        /// Bytes remain after the top-level item.
        case trailingBytes(Int)
        /// A length encoded in more bytes than needed, with a leading zero, or a long form for a short payload.
        case nonCanonicalLength
        /// A single byte below 0x80 wrapped in a string header.
        case nonCanonicalSingleByte
        /// A list where a byte string was expected, or the reverse.
        case unexpectedType(expectedList: Bool)
        /// An integer with leading zero bytes, or wider than allowed.
        case invalidInteger
        /// Nesting deeper than the decoder allows.
        case tooDeep

        /// A human-readable reason.
        public var description: String {
            switch self {
            case .empty: return "empty RLP input"
            case .truncated: return "RLP input truncated"
            case .trailingBytes(let n): return "\(n) bytes after the RLP item"
            case .nonCanonicalLength: return "non-canonical RLP length"
            case .nonCanonicalSingleByte: return "single byte below 0x80 must encode as itself"
            case .unexpectedType(let expectedList): return expectedList ? "expected an RLP list" : "expected an RLP byte string"
            case .invalidInteger: return "RLP integer with leading zeros or out of range"
            case .tooDeep: return "RLP nesting too deep"
            }
        }
    }

    /// Encodes an item.
    public static func encode(_ item: Item) -> Data {
        var out = Data()
        append(item, to: &out)
        return out
    }

    private static func append(_ item: Item, to out: inout Data) {
        switch item {
        case .bytes(let data):
            if data.count == 1, let byte = data.first, byte < 0x80 {
                out.append(byte)
            } else {
                appendHeader(length: data.count, offset: 0x80, to: &out)
                out.append(data)
            }
        case .list(let items):
            var body = Data()
            for child in items { append(child, to: &body) }
            appendHeader(length: body.count, offset: 0xc0, to: &out)
            out.append(body)
        }
    }

    private static func appendHeader(length: Int, offset: UInt8, to out: inout Data) {
        if length < 56 {
            out.append(offset + UInt8(length))
        } else {
            let lengthBytes = BigUInt(length).serialize()
            out.append(offset + 55 + UInt8(lengthBytes.count))
            out.append(lengthBytes)
        }
    }

    /// Decodes exactly one item that spans the whole input, rejecting non-canonical encodings.
    public static func decode(_ data: Data) throws(DecodingError) -> Item {
        let bytes = [UInt8](data)
        guard !bytes.isEmpty else { throw .empty }
        var position = 0
        let item = try decodeItem(bytes, &position, end: bytes.count, depth: 0)
        guard position == bytes.count else { throw .trailingBytes(bytes.count - position) }
        return item
    }

    private static func decodeItem(_ bytes: [UInt8], _ position: inout Int, end: Int, depth: Int) throws(DecodingError) -> Item {
        guard depth < 64 else { throw .tooDeep }
        guard position < end else { throw .truncated }
        let prefix = bytes[position]
        position += 1
        switch prefix {
        case 0x00...0x7f:
            return .bytes(Data([prefix]))
        case 0x80...0xbf:
            let length = try readLength(bytes, &position, end: end, prefix: prefix, offset: 0x80)
            guard end - position >= length else { throw .truncated }
            let payload = Data(bytes[position..<(position + length)])
            if length == 1 && payload[payload.startIndex] < 0x80 { throw .nonCanonicalSingleByte }
            position += length
            return .bytes(payload)
        default:
            let length = try readLength(bytes, &position, end: end, prefix: prefix, offset: 0xc0)
            guard end - position >= length else { throw .truncated }
            let listEnd = position + length
            var items: [Item] = []
            while position < listEnd {
                items.append(try decodeItem(bytes, &position, end: listEnd, depth: depth + 1))
            }
            return .list(items)
        }
    }

    private static func readLength(_ bytes: [UInt8], _ position: inout Int, end: Int, prefix: UInt8, offset: UInt8) throws(DecodingError) -> Int {
        let short = Int(prefix - offset)
        if short < 56 { return short }
        let lengthOfLength = short - 55
        guard end - position >= lengthOfLength else { throw .truncated }
        guard bytes[position] != 0, lengthOfLength <= 4 else { throw .nonCanonicalLength }
        var length = 0
        for _ in 0..<lengthOfLength {
            length = length << 8 | Int(bytes[position])
            position += 1
        }
        guard length >= 56 else { throw .nonCanonicalLength }
        return length
    }
}

extension RLP.Item {
    /// The byte string, or an error for a list.
    public func bytes() throws(RLP.DecodingError) -> Data {
        guard case .bytes(let data) = self else { throw .unexpectedType(expectedList: false) }
        return data
    }

    /// The list items, or an error for a byte string.
    public func list() throws(RLP.DecodingError) -> [RLP.Item] {
        guard case .list(let items) = self else { throw .unexpectedType(expectedList: true) }
        return items
    }

    /// A canonical unsigned integer (no leading zero bytes) of at most `maxBytes` bytes.
    public func bigUInt(maxBytes: Int = 32) throws(RLP.DecodingError) -> BigUInt {
        let data = try bytes()
        guard data.count <= maxBytes, data.first != 0 else { throw .invalidInteger }
        return BigUInt(data)
    }

    /// A canonical unsigned integer that fits in 64 bits.
    public func uint64() throws(RLP.DecodingError) -> UInt64 {
        let value = try bigUInt(maxBytes: 8)
        return UInt64(value)
    }
}
