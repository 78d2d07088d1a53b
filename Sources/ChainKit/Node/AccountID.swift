import Foundation

/// The 20-byte account id shared by EVM addresses and TRON addresses (a TRON address is `0x41` ‖ account id).
///
/// Packed into three integers so that a set of 100,000 watched addresses hashes and compares without touching the
/// heap: scanning a block is one `Set.contains` per transfer.
public struct AccountID: Sendable, Hashable, Comparable, CustomStringConvertible {
    let high: UInt64
    let mid: UInt64
    let low: UInt32

    init(high: UInt64, mid: UInt64, low: UInt32) {
        self.high = high
        self.mid = mid
        self.low = low
    }

    /// Wraps 20 raw bytes; nil for any other length.
    public init?<Bytes: Collection>(bytes: Bytes) where Bytes.Element == UInt8 {
        guard bytes.count == 20 else { return nil }
        var h: UInt64 = 0
        var m: UInt64 = 0
        var l: UInt32 = 0
        for (i, b) in bytes.enumerated() {
            switch i {
            case 0..<8: h = h << 8 | UInt64(b)
            case 8..<16: m = m << 8 | UInt64(b)
            default: l = l << 8 | UInt32(b)
            }
        }
        self.init(high: h, mid: m, low: l)
    }

    /// The account id of an EVM address.
    public init(_ address: EVMAddress) {
        self.init(bytes: address.bytes)!
    }

    /// The account id of a TRON address (the 20 bytes after `0x41`).
    public init(_ address: TronAddress) {
        self.init(bytes: address.bytes.dropFirst())!
    }

    /// Parses the last 40 hex digits of `text` (an ABI word or topic, a 40-digit log address, or a `41…`/`0x…`
    /// address); nil when `text` is shorter or those digits are not hex. The caller checks the overall shape.
    public init?(hexSuffixOf text: String) {
        let parsed =
            text.utf8.withContiguousStorageIfAvailable(AccountID.parseHexSuffix) ?? Array(text.utf8).withUnsafeBufferPointer(AccountID.parseHexSuffix)
        guard let parsed else { return nil }
        self = parsed
    }

    static func parseHexSuffix(_ buffer: UnsafeBufferPointer<UInt8>) -> AccountID? {
        guard buffer.count >= 40 else { return nil }
        let start = buffer.count - 40
        var h: UInt64 = 0
        var m: UInt64 = 0
        var l: UInt32 = 0
        for i in 0..<40 {
            guard let n = Hex.nibble(buffer[start + i]) else { return nil }
            switch i {
            case 0..<16: h = h << 4 | UInt64(n)
            case 16..<32: m = m << 4 | UInt64(n)
            default: l = l << 4 | UInt32(n)
            }
        }
        return AccountID(high: h, mid: m, low: l)
    }

    /// The 20 bytes.
    public var bytes: Data {
        var out = Data(capacity: 20)
        for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: high >> UInt64(shift))) }
        for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: mid >> UInt64(shift))) }
        for shift in stride(from: 24, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: low >> UInt32(shift))) }
        return out
    }

    /// As an EVM address.
    public var evmAddress: EVMAddress { EVMAddress(uncheckedBytes: bytes) }

    /// As a TRON address (`0x41` prepended).
    public var tronAddress: TronAddress { TronAddress(uncheckedBytes: Data([TronAddress.prefixByte]) + bytes) }

    /// 40 lower-case hex digits.
    public var hex: String { Hex.encode(bytes) }

    /// Byte-wise order.
    public static func < (lhs: AccountID, rhs: AccountID) -> Bool {
        (lhs.high, lhs.mid, lhs.low) < (rhs.high, rhs.mid, rhs.low)
    }

    /// 40 lower-case hex digits.
    public var description: String { hex }
}

/// The node protocol family of a chain, which also fixes its address format.
public enum ChainKind: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// Ethereum JSON-RPC; EIP-55 `0x…` addresses.
    case evm
    /// The TRON HTTP API; base58check `T…` addresses.
    case tron

    /// The address in the chain's user-facing form: EIP-55 checksummed, or TRON base58.
    public func format(_ account: AccountID) -> String {
        switch self {
        case .evm: return account.evmAddress.checksummed
        case .tron: return account.tronAddress.base58
        }
    }

    /// Validates a user-supplied address of this chain (TRON also accepts the node's `41…` hex form).
    public func parseAddress(_ text: String) throws(AddressError) -> AccountID {
        switch self {
        case .evm: return AccountID(try EVMAddress(text))
        case .tron: return AccountID(try TronAddress(base58OrHex: text))
        }
    }

    /// The address scheme used to derive this chain's addresses from HD keys.
    public var addressScheme: AddressScheme {
        switch self {
        case .evm: return .evm
        case .tron: return .tron
        }
    }

    /// `evm` or `tron`.
    public var description: String { rawValue }
}
