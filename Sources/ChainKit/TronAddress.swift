import Foundation

/// A TRON account address: 21 bytes (`0x41` + 20-byte account id), shown to users as a 34-character base58check `T…` string.
public struct TronAddress: Sendable, Hashable, CustomStringConvertible {
    /// The mainnet address prefix byte (also used by Nile and Shasta).
    public static let prefixByte: UInt8 = 0x41

    /// The 21 address bytes, starting with 0x41.
    public let bytes: Data

    init(uncheckedBytes: Data) {
        bytes = uncheckedBytes
    }

    /// Validates a user-supplied base58check `T…` address (34 characters, 21-byte payload, 0x41 prefix).
    public init(_ string: String) throws(AddressError) {
        try AddressValidator.checkNotBlank(string)
        if AddressValidator.looksLikeTronHex(string) {
            throw .wrongFormat("TRON hex form 41…: enter the base58 address starting with T")
        }
        if AddressValidator.looksLikeEVM(string) { throw .wrongChain("an EVM 0x address, not a TRON") }
        let payload: Data
        do {
            payload = try Base58.decodeCheck(string)
        } catch {
            switch error {
            case .empty: throw .empty
            case .tooLong(let n): throw .wrongLength(expected: 34, got: n)
            case .invalidCharacter(let c, let offset): throw .invalidCharacter(c, offset: offset)
            case .tooShort, .checksumMismatch:
                if string.count != 34 { throw .wrongLength(expected: 34, got: string.count) }
                throw .checksumMismatch
            }
        }
        guard payload.count == 21 else { throw .wrongPayloadLength(expected: 21, got: payload.count) }
        guard payload[payload.startIndex] == Self.prefixByte else {
            let prefix = payload[payload.startIndex]
            if prefix == 0xa0 { throw .unsupportedPrefix("byte 0xa0 (obsolete TRON testnet), expected 0x41") }
            if prefix == 0x00 || prefix == 0x05 { throw .wrongChain("a Bitcoin address, not a TRON") }
            throw .unsupportedPrefix("byte 0x\(Hex.encode([prefix])), expected 0x41")
        }
        guard string.count == 34 else { throw .wrongLength(expected: 34, got: string.count) }
        bytes = payload
    }

    /// Parses the 21-byte hex form used by the TRON HTTP API (`41…`, 42 hex digits, optional `0x`).
    public init(hex: String) throws(AddressError) {
        let data: Data
        do {
            data = try Hex.decode(hex)
        } catch {
            switch error {
            case .oddLength(let n): throw .wrongLength(expected: 42, got: n)
            case .invalidCharacter(let c, let offset): throw .invalidCharacter(c, offset: offset)
            }
        }
        try self.init(bytes: data)
    }

    /// Wraps 21 bytes starting with 0x41.
    public init(bytes: Data) throws(AddressError) {
        guard bytes.count == 21 else { throw .wrongPayloadLength(expected: 21, got: bytes.count) }
        guard bytes[bytes.startIndex] == Self.prefixByte else {
            throw .unsupportedPrefix("byte 0x\(Hex.encode([bytes[bytes.startIndex]])), expected 0x41")
        }
        self.bytes = Data(bytes)
    }

    /// Accepts either node form: base58 `T…` or hex `41…` (as returned with `visible` true or false).
    public init(base58OrHex string: String) throws(AddressError) {
        if AddressValidator.looksLikeTronHex(string) || (string.hasPrefix("0x41") && string.count == 44) {
            try self.init(hex: string)
        } else {
            try self.init(string)
        }
    }

    /// The TRON address with the same 20-byte account id as an EVM address (prefix 0x41 prepended).
    public init(evmAddress: EVMAddress) {
        bytes = Data([Self.prefixByte]) + evmAddress.bytes
    }

    /// The address of a public key: `0x41` + last 20 bytes of `keccak256(X || Y)`.
    public init(publicKey: Secp256k1.PublicKey) {
        self.init(evmAddress: EVMAddress(publicKey: publicKey))
    }

    /// The 34-character base58check form (`T…`).
    public var base58: String { Base58.encodeCheck(bytes) }

    /// The 42-digit lower-case hex form (`41…`), without `0x`, as in TRON node JSON.
    public var hex: String { Hex.encode(bytes) }

    /// The 20-byte account id as an EVM address (ABI words, log addresses, topics).
    public var evmAddress: EVMAddress { EVMAddress(uncheckedBytes: Data(bytes.dropFirst())) }

    /// The base58 form.
    public var description: String { base58 }
}
