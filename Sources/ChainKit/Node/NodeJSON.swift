import BigInt
import Foundation

/// Ethereum JSON-RPC value encodings (execution-apis "hex encoding"): quantities are `0x` + hex without leading
/// zeros (`0x0` for zero), data is `0x` + an even number of hex digits.
public enum EthHex {
    /// `0x` + minimal hex of a quantity.
    public static func quantity(_ value: UInt64) -> String { "0x" + String(value, radix: 16) }

    /// `0x` + minimal hex of a quantity.
    public static func quantity(_ value: BigUInt) -> String { "0x" + String(value, radix: 16) }

    /// `0x` + hex of bytes.
    public static func data<D: Sequence>(_ bytes: D) -> String where D.Element == UInt8 { "0x" + Hex.encode(bytes) }

    /// A strict quantity: `0x`, then `0` or hex digits without a leading zero; nil otherwise or above 2^256 − 1.
    public static func parseQuantity(_ text: String) -> BigUInt? {
        guard let digits = quantityDigits(text), digits.utf8.count <= 64 else { return nil }
        if digits.utf8.count <= 16 { return UInt64(digits, radix: 16).map { BigUInt($0) } }
        return BigUInt(hexDigits: digits)
    }

    /// A strict quantity that fits in 64 bits.
    public static func parseQuantityUInt64(_ text: String) -> UInt64? {
        guard let digits = quantityDigits(text), digits.utf8.count <= 16 else { return nil }
        return UInt64(digits, radix: 16)
    }

    private static func quantityDigits(_ text: String) -> Substring? {
        guard text.hasPrefix("0x") else { return nil }
        let digits = text.dropFirst(2)
        guard !digits.isEmpty, Hex.isHex(digits) else { return nil }
        if digits.utf8.count > 1 && digits.utf8.first == UInt8(ascii: "0") { return nil }
        return digits
    }

    /// Strict data: `0x` + an even number of hex digits.
    public static func parseData(_ text: String) -> Data? {
        guard text.hasPrefix("0x") else { return nil }
        return try? Hex.decode(String(text.dropFirst(2)), allowPrefix: false)
    }

    /// A 32-byte hash as `0x` + 64 hex digits; returns it lower-cased.
    public static func parseHash(_ text: String) -> String? {
        let utf8 = text.utf8
        guard utf8.count == 66, text.hasPrefix("0x"), Hex.isHex(text.dropFirst(2)) else { return nil }
        return text.lowercased()
    }

    /// A 20-byte address `0x` + 40 hex digits in any case (nodes send lower case; no checksum check).
    public static func parseAddress(_ text: String) -> AccountID? {
        let utf8 = text.utf8
        guard utf8.count == 42, text.hasPrefix("0x") else { return nil }
        return AccountID(hexSuffixOf: text)
    }
}

/// Reads fields of a node answer, throwing `ChainNodeError.malformedResponse` that names the method and field.
struct ResponseReader {
    let method: String

    func fail(_ field: String, _ reason: String) -> ChainNodeError {
        .malformedResponse(method: method, field: field, reason: reason)
    }

    func require(_ value: JSONValue?, _ field: String) throws(ChainNodeError) -> JSONValue {
        guard let value, !value.isNull else { throw fail(field, "missing") }
        return value
    }

    func object(_ value: JSONValue?, _ field: String) throws(ChainNodeError) -> JSONValue {
        let v = try require(value, field)
        guard case .object = v else { throw fail(field, "expected an object, found \(v.typeName)") }
        return v
    }

    func array(_ value: JSONValue?, _ field: String) throws(ChainNodeError) -> [JSONValue] {
        let v = try require(value, field)
        guard let a = v.arrayValue else { throw fail(field, "expected an array, found \(v.typeName)") }
        return a
    }

    func string(_ value: JSONValue?, _ field: String) throws(ChainNodeError) -> String {
        let v = try require(value, field)
        guard let s = v.stringValue else { throw fail(field, "expected a string, found \(v.typeName)") }
        return s
    }

    func bool(_ value: JSONValue?, _ field: String) throws(ChainNodeError) -> Bool {
        let v = try require(value, field)
        guard let b = v.boolValue else { throw fail(field, "expected a boolean, found \(v.typeName)") }
        return b
    }

    // MARK: Ethereum encodings

    func quantity(_ value: JSONValue?, _ field: String) throws(ChainNodeError) -> BigUInt {
        let s = try string(value, field)
        guard let q = EthHex.parseQuantity(s) else { throw fail(field, "not a hex quantity: \(Self.clip(s))") }
        return q
    }

    func quantity64(_ value: JSONValue?, _ field: String) throws(ChainNodeError) -> UInt64 {
        let s = try string(value, field)
        guard let q = EthHex.parseQuantityUInt64(s) else { throw fail(field, "not a 64-bit hex quantity: \(Self.clip(s))") }
        return q
    }

    func hash(_ value: JSONValue?, _ field: String) throws(ChainNodeError) -> String {
        let s = try string(value, field)
        guard let h = EthHex.parseHash(s) else { throw fail(field, "not a 32-byte hex hash: \(Self.clip(s))") }
        return h
    }

    func address(_ value: JSONValue?, _ field: String) throws(ChainNodeError) -> AccountID {
        let s = try string(value, field)
        guard let a = EthHex.parseAddress(s) else { throw fail(field, "not a 20-byte hex address: \(Self.clip(s))") }
        return a
    }

    func data(_ value: JSONValue?, _ field: String) throws(ChainNodeError) -> Data {
        let s = try string(value, field)
        guard let d = EthHex.parseData(s) else { throw fail(field, "not 0x-prefixed hex data: \(Self.clip(s))") }
        return d
    }

    // MARK: TRON encodings

    /// A JSON integer that fits in Int64; `absentAs` when the key is missing (java-tron omits zero values).
    func int64(_ value: JSONValue?, _ field: String, absentAs: Int64? = nil) throws(ChainNodeError) -> Int64 {
        guard let value, !value.isNull else {
            if let absentAs { return absentAs }
            throw fail(field, "missing")
        }
        guard case .number(let text) = value else { throw fail(field, "expected a number, found \(value.typeName)") }
        guard let n = Int64(text) else { throw fail(field, "not a 64-bit integer: \(Self.clip(text))") }
        return n
    }

    /// A non-negative JSON integer.
    func uint64(_ value: JSONValue?, _ field: String, absentAs: UInt64? = nil) throws(ChainNodeError) -> UInt64 {
        let n = try int64(value, field, absentAs: absentAs.map { Int64($0) })
        guard n >= 0 else { throw fail(field, "negative: \(n)") }
        return UInt64(n)
    }

    /// Lower-case hex without `0x` of exactly `bytes` bytes (when given).
    func plainHex(_ value: JSONValue?, _ field: String, bytes: Int? = nil) throws(ChainNodeError) -> String {
        let s = try string(value, field)
        let utf8 = s.utf8
        guard utf8.count % 2 == 0, Hex.isHex(s) else { throw fail(field, "not hex: \(Self.clip(s))") }
        if let bytes, utf8.count != bytes * 2 { throw fail(field, "expected \(bytes) bytes of hex, found \(utf8.count / 2)") }
        return s.lowercased()
    }

    static func clip(_ s: String) -> String {
        s.count > 80 ? String(s.prefix(80)) + "…" : s
    }
}

extension Hex {
    /// Whether every character is a hex digit (either case); true for the empty string.
    static func isHex<S: StringProtocol>(_ text: S) -> Bool {
        text.utf8.withContiguousStorageIfAvailable { buffer in buffer.allSatisfy { nibble($0) != nil } }
            ?? text.utf8.allSatisfy { nibble($0) != nil }
    }
}

extension BigUInt {
    /// An unsigned integer from hex digits (no prefix, either case); nil for a non-hex character.
    init?<S: StringProtocol>(hexDigits text: S) {
        let digits = text.utf8.count % 2 == 0 ? String(text) : "0" + text
        guard let bytes = try? Hex.decode(digits, allowPrefix: false) else { return nil }
        self.init(bytes)
    }
}
