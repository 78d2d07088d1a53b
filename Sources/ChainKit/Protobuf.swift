import Foundation

/// Why bytes are not a protobuf message of the expected shape.
public enum ProtobufError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The input ends inside a field.
    case truncated
    /// A varint longer than 10 bytes.
    case varintOverflow
    /// Wire types 3/4 (groups) or 6/7, with the field number.
    case unsupportedWireType(Int, field: Int)
    /// Field number 0 or above 2^29 - 1.
    case invalidFieldNumber(UInt64)
    /// A known field with the wrong wire type or an invalid value.
    case invalidField(String)

    /// A human-readable reason.
    public var description: String {
        switch self {
        case .truncated: return "protobuf input truncated"
        case .varintOverflow: return "protobuf varint longer than 10 bytes"
        case .unsupportedWireType(let t, let field): return "unsupported protobuf wire type \(t) in field \(field)"
        case .invalidFieldNumber(let n): return "invalid protobuf field number \(n)"
        case .invalidField(let what): return "invalid protobuf field: \(what)"
        }
    }
}

/// A minimal protobuf (proto3) writer that produces the same bytes as protobuf-java for the scalar,
/// bytes and nested-message fields used by TRON: fields are written in the order called (call them in
/// ascending field-number order), and the `…IfNonDefault` methods omit zero / empty values.
public struct ProtobufWriter: Sendable {
    /// The bytes written so far.
    public private(set) var data = Data()

    /// An empty writer.
    public init() {}

    private mutating func appendVarint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            data.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        data.append(UInt8(v))
    }

    private mutating func appendKey(_ field: Int, wireType: UInt64) {
        precondition(field >= 1 && field < (1 << 29), "protobuf field number out of range")
        appendVarint(UInt64(field) << 3 | wireType)
    }

    /// Writes a varint field (int64 values are passed as their two's-complement bit pattern).
    public mutating func varint(_ field: Int, _ value: UInt64) {
        appendKey(field, wireType: 0)
        appendVarint(value)
    }

    /// Writes an int64 field unless it is zero (negative values take 10 bytes, as protobuf-java does).
    public mutating func int64IfNonDefault(_ field: Int, _ value: Int64) {
        if value != 0 { varint(field, UInt64(bitPattern: value)) }
    }

    /// Writes a length-delimited field.
    public mutating func bytes(_ field: Int, _ value: Data) {
        appendKey(field, wireType: 2)
        appendVarint(UInt64(value.count))
        data.append(value)
    }

    /// Writes a bytes/string field unless it is empty.
    public mutating func bytesIfNonDefault(_ field: Int, _ value: Data) {
        if !value.isEmpty { bytes(field, value) }
    }

    /// Writes a nested message (always, even when empty, as for a set message field).
    public mutating func message(_ field: Int, _ build: (inout ProtobufWriter) -> Void) {
        var nested = ProtobufWriter()
        build(&nested)
        bytes(field, nested.data)
    }
}

/// A minimal protobuf reader: iterates over (field number, value) pairs, skipping nothing by itself.
public struct ProtobufReader: Sendable {
    /// A field value by wire type.
    public enum Value: Sendable, Hashable {
        /// Wire type 0.
        case varint(UInt64)
        /// Wire type 1.
        case fixed64(UInt64)
        /// Wire type 2: bytes, strings and nested messages.
        case lengthDelimited(Data)
        /// Wire type 5.
        case fixed32(UInt32)

        /// The varint value, or an error naming `field`.
        public func varint(_ field: String) throws(ProtobufError) -> UInt64 {
            guard case .varint(let v) = self else { throw .invalidField("\(field) must be a varint") }
            return v
        }

        /// The length-delimited bytes, or an error naming `field`.
        public func bytes(_ field: String) throws(ProtobufError) -> Data {
            guard case .lengthDelimited(let d) = self else { throw .invalidField("\(field) must be length-delimited") }
            return d
        }
    }

    private let bytes: [UInt8]
    private var position = 0

    /// A reader over one serialised message.
    public init(_ data: Data) {
        bytes = [UInt8](data)
    }

    /// Whether every byte has been read.
    public var isAtEnd: Bool { position >= bytes.count }

    private mutating func readVarint() throws(ProtobufError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard position < bytes.count else { throw .truncated }
            let byte = bytes[position]
            position += 1
            guard shift < 64, shift < 63 || byte <= 1 else { throw .varintOverflow }
            result |= UInt64(byte & 0x7f) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
        }
    }

    private mutating func take(_ count: Int) throws(ProtobufError) -> [UInt8] {
        guard count >= 0, bytes.count - position >= count else { throw .truncated }
        defer { position += count }
        return Array(bytes[position..<(position + count)])
    }

    /// The next field, or nil at the end of the message.
    public mutating func next() throws(ProtobufError) -> (field: Int, value: Value)? {
        guard !isAtEnd else { return nil }
        let key = try readVarint()
        let fieldNumber = key >> 3
        guard fieldNumber >= 1, fieldNumber < (1 << 29) else { throw .invalidFieldNumber(fieldNumber) }
        let field = Int(fieldNumber)
        switch key & 7 {
        case 0:
            return (field, .varint(try readVarint()))
        case 1:
            let raw = try take(8)
            return (field, .fixed64(raw.reversed().reduce(0) { $0 << 8 | UInt64($1) }))
        case 2:
            let length = try readVarint()
            guard length <= UInt64(bytes.count - position) else { throw .truncated }
            return (field, .lengthDelimited(Data(try take(Int(length)))))
        case 5:
            let raw = try take(4)
            return (field, .fixed32(raw.reversed().reduce(0) { $0 << 8 | UInt32($1) }))
        default:
            throw .unsupportedWireType(Int(key & 7), field: field)
        }
    }
}
