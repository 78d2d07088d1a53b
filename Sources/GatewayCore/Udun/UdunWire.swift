import BigInt
import Crypto
import Foundation

/// The Open API's result codes (udun-protocol.md §4).
public enum UdunCode: Int, Sendable, CaseIterable {
    case success = 200
    case addressNotGenerated = -1
    case merchantNotFound = 4001
    case invalidParameters = 4005
    case noWalletForChain = 4017
    case unknownCoin = 4045
    case signatureUncheckable = 4162
    case signatureWrong = 4163
    case addressLimitReached = 4168
    case merchantDisabled = 4169
    case walletDoesNotSupportCoin = 4176
    case tooManyDecimals = 4034
    case invalidAddress = 4183
    case coinNotSupportedByMerchant = 554
    case duplicateBusinessId = 571
    case badAmount = 581
    case invalidProxypayAddress = 596
    case addressNotMerchants = 4184
    case timestampOutOfWindow = 4901
    case replayed = 4902
    case rateLimited = 4290
}

/// A business error answered with HTTP 200 and `{"code": …, "message": …}`.
public struct UdunError: Error, Equatable, CustomStringConvertible {
    public var code: UdunCode
    public var message: String

    public init(_ code: UdunCode, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.rawValue) \(message)" }
}

/// The request envelope `{timestamp, nonce, sign, body}`, with `timestamp` and `nonce` kept as
/// their literal JSON text (what the client signed).
public struct UdunEnvelope: Sendable, Equatable {
    public var timestamp: String
    public var nonce: String
    public var sign: String
    /// The exact business JSON string the client signed.
    public var body: String

    public init(timestamp: String, nonce: String, sign: String, body: String) {
        self.timestamp = timestamp
        self.nonce = nonce
        self.sign = sign
        self.body = body
    }

    /// Parses the HTTP body: bad JSON or a missing/mistyped `body` is 4005; a missing or
    /// malformed `sign`, `timestamp` or `nonce` is 4162.
    public static func parse(_ bytes: [UInt8]) throws(UdunError) -> UdunEnvelope {
        let root: JSONValue
        do { root = try JSONValue.parse(bytes) } catch { throw UdunError(.invalidParameters, "request is not valid JSON: \(error)") }
        guard case .object = root else { throw UdunError(.invalidParameters, "request must be a JSON object") }
        guard case .string(let body)? = root["body"] else { throw UdunError(.invalidParameters, "body must be a string holding JSON") }
        func literal(_ key: String) throws(UdunError) -> String {
            switch root[key] {
            case .string(let s)?: return s
            case .number(let n)?: return n
            default: throw UdunError(.signatureUncheckable, "\(key) is missing or not a number or string")
            }
        }
        let timestamp = try literal("timestamp")
        let nonce = try literal("nonce")
        guard case .string(let sign)? = root["sign"], sign.utf8.count == 32, sign.utf8.allSatisfy(Self.isHexDigit) else {
            throw UdunError(.signatureUncheckable, "sign must be 32 hexadecimal characters")
        }
        guard !nonce.isEmpty, nonce.utf8.count <= 64 else { throw UdunError(.signatureUncheckable, "nonce must be 1 to 64 characters") }
        guard timestamp.utf8.count <= 16, !timestamp.isEmpty, timestamp.utf8.allSatisfy({ (0x30...0x39).contains($0) }) else {
            throw UdunError(.signatureUncheckable, "timestamp must be Unix seconds or milliseconds")
        }
        return UdunEnvelope(timestamp: timestamp, nonce: nonce, sign: sign.lowercased(), body: body)
    }

    /// The timestamp in Unix seconds: values above 10^11 are milliseconds.
    public var timestampSeconds: Int64? {
        guard let t = Int64(timestamp) else { return nil }
        return t > 100_000_000_000 ? t / 1000 : t
    }

    static func isHexDigit(_ c: UInt8) -> Bool { (0x30...0x39).contains(c) || (0x41...0x46).contains(c) || (0x61...0x66).contains(c) }
}

/// `md5(body + key + nonce + timestamp)`, the Udun request and callback signature.
public enum UdunSignature {
    /// Lowercase hex MD5 of the concatenation.
    public static func sign(body: String, key: String, nonce: String, timestamp: String) -> String {
        let digest = Insecure.MD5.hash(data: Data((body + key + nonce + timestamp).utf8))
        return lowercaseHex(digest)
    }

    /// Lowercase hexadecimal of bytes.
    public static func lowercaseHex<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(64)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Compares in constant time (for equal lengths).
    public static func verify(_ envelope: UdunEnvelope, key: String) -> Bool {
        constantTimeEqual(sign(body: envelope.body, key: key, nonce: envelope.nonce, timestamp: envelope.timestamp), envelope.sign.lowercased())
    }

    /// True when both strings hold the same bytes; the time taken does not depend on where they differ.
    public static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        guard x.count == y.count else { return false }
        var diff: UInt8 = 0
        for i in 0..<x.count { diff |= x[i] ^ y[i] }
        return diff == 0
    }
}

/// Reads loosely typed business fields: numbers may arrive as strings and strings as numbers;
/// `""` means unset.
public struct UdunFields: Sendable {
    public let object: JSONValue

    public init(_ object: JSONValue) { self.object = object }

    /// Parses a business body: the array-of-one form, or a bare object (old clients).
    public static func single(fromBody body: String) throws(UdunError) -> UdunFields {
        let v: JSONValue
        do { v = try JSONValue.parse(body) } catch { throw UdunError(.invalidParameters, "body is not valid JSON: \(error)") }
        switch v {
        case .array(let items):
            guard items.count == 1 else { throw UdunError(.invalidParameters, "body must be an array of exactly one object, found \(items.count)") }
            guard case .object = items[0] else { throw UdunError(.invalidParameters, "body must be an array of one object") }
            return UdunFields(items[0])
        case .object:
            return UdunFields(v)
        default:
            throw UdunError(.invalidParameters, "body must be an array of one object")
        }
    }

    /// Parses a business body that must be a plain object (`/mch/support-coins`).
    public static func object(fromBody body: String) throws(UdunError) -> UdunFields {
        let v: JSONValue
        do { v = try JSONValue.parse(body) } catch { throw UdunError(.invalidParameters, "body is not valid JSON: \(error)") }
        if case .object = v { return UdunFields(v) }
        if case .array(let items) = v, items.count == 1, case .object = items[0] { return UdunFields(items[0]) }
        throw UdunError(.invalidParameters, "body must be a JSON object")
    }

    /// A string or number field as text; nil when absent, null or `""`.
    public func string(_ key: String) throws(UdunError) -> String? {
        switch object[key] {
        case nil, .null?: return nil
        case .string(let s)?: return s.isEmpty ? nil : s
        case .number(let n)?: return n
        case .bool?, .object?, .array?: throw UdunError(.invalidParameters, "\(key) must be a string or a number")
        }
    }

    /// A required string or number field.
    public func required(_ key: String) throws(UdunError) -> String {
        guard let s = try string(key) else { throw UdunError(.invalidParameters, "\(key) is required") }
        return s
    }

    /// A boolean given as true/false, 1/0 or "true"/"false"/"1"/"0"; absent is false.
    public func bool(_ key: String) throws(UdunError) -> Bool {
        switch object[key] {
        case nil, .null?: return false
        case .bool(let b)?: return b
        case .number(let n)?: return n != "0"
        case .string(let s)?:
            switch s.lowercased() {
            case "true", "1": return true
            case "false", "0", "": return false
            default: throw UdunError(.invalidParameters, "\(key) must be true or false")
            }
        default: throw UdunError(.invalidParameters, "\(key) must be true or false")
        }
    }
}

/// Conversion between whole-coin decimal text and integer base units.
public enum CoinAmount {
    /// Why a decimal amount was refused.
    public enum ParseError: Error, Equatable {
        case notANumber, notPositive, tooManyDecimals(Int)
    }

    /// Parses `"10"`, `"0.11"`, `10` into base units with `decimals`. No sign, exponent or spaces.
    public static func parse(_ text: String, decimals: Int) throws(ParseError) -> BigUInt {
        var t = Substring(text)
        if t.hasPrefix("-") {
            let rest = t.dropFirst()
            guard !rest.isEmpty, rest.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }) else { throw .notANumber }
            throw .notPositive
        }
        if t.hasPrefix("+") { t = t.dropFirst() }
        let parts = t.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        let whole = parts[0], fraction = parts.count > 1 ? parts[1] : ""
        guard !whole.isEmpty || !fraction.isEmpty, parts.count == 1 || !fraction.isEmpty || !whole.isEmpty,
              whole.allSatisfy({ $0.isASCII && $0.isNumber }), fraction.allSatisfy({ $0.isASCII && $0.isNumber }),
              whole.count + fraction.count <= 78
        else { throw .notANumber }
        if parts.count == 2 && fraction.isEmpty { throw .notANumber }
        let significant = fraction.reversed().drop(while: { $0 == "0" }).count
        guard significant <= decimals else { throw .tooManyDecimals(decimals) }
        let padded = String(fraction.prefix(decimals)) + String(repeating: "0", count: decimals - min(decimals, fraction.count))
        guard let value = BigUInt(String(whole.isEmpty ? "0" : whole) + padded, radix: 10) else { throw .notANumber }
        guard value > 0 else { throw .notPositive }
        return value
    }

    /// Formats base units as whole-coin decimal text: `12500000, 6` → `"12.5"`, `0` → `"0"`.
    public static func format(_ units: BigUInt, decimals: Int) -> String {
        let digits = String(units, radix: 10)
        guard decimals > 0 else { return digits }
        let padded = String(repeating: "0", count: max(0, decimals + 1 - digits.count)) + digits
        let whole = padded.dropLast(decimals)
        let fraction = padded.suffix(decimals).reversed().drop(while: { $0 == "0" }).reversed()
        return fraction.isEmpty ? String(whole) : "\(whole).\(String(fraction))"
    }
}
