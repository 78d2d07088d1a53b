import Foundation

/// Why an address string was rejected; `description` is a human-readable reason suitable for an API error message.
public enum AddressError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The string is empty.
    case empty
    /// Leading or trailing whitespace (never silently trimmed).
    case surroundingWhitespace
    /// A character not allowed in this encoding, with its offset.
    case invalidCharacter(Character, offset: Int)
    /// The string has the wrong number of characters.
    case wrongLength(expected: Int, got: Int)
    /// Longer than any address of this chain can be.
    case tooLong(max: Int, got: Int)
    /// The decoded payload has the wrong number of bytes.
    case wrongPayloadLength(expected: Int, got: Int)
    /// The Base58Check or bech32 checksum does not match.
    case checksumMismatch
    /// Upper- and lower-case letters mixed in a bech32 address.
    case mixedCase
    /// A mixed-case EVM address whose capitalisation is not its EIP-55 checksum.
    case eip55ChecksumMismatch
    /// An EVM address without the lower-case `0x` prefix.
    case missingHexPrefix
    /// A valid address of another network of the same chain (e.g. testnet on mainnet).
    case wrongNetwork(expected: String, found: String)
    /// An address of a different chain (e.g. a TRON address where a Bitcoin one was expected).
    case wrongChain(String)
    /// A version byte or human-readable part that this chain does not use.
    case unsupportedPrefix(String)
    /// A correct encoding in a form not accepted as user input (e.g. TRON's `41…` hex form).
    case wrongFormat(String)
    /// A bech32/bech32m string that breaks a segwit rule (witness version, program length, padding, checksum variant, separator).
    case invalidSegwit(Bech32.DecodingError)

    /// A human-readable reason.
    public var description: String {
        switch self {
        case .empty: return "empty address"
        case .surroundingWhitespace: return "leading or trailing whitespace"
        case .invalidCharacter(let c, let offset): return "invalid character '\(c)' at offset \(offset)"
        case .wrongLength(let expected, let got): return "wrong length: expected \(expected) characters, got \(got)"
        case .tooLong(let max, let got): return "too long: at most \(max) characters, got \(got)"
        case .wrongPayloadLength(let expected, let got): return "wrong payload length: expected \(expected) bytes, got \(got)"
        case .checksumMismatch: return "checksum mismatch"
        case .mixedCase: return "mixed upper and lower case"
        case .eip55ChecksumMismatch: return "mixed-case address fails EIP-55 checksum"
        case .missingHexPrefix: return "address must start with lower-case 0x"
        case .wrongNetwork(let expected, let found): return "\(found) address not accepted on \(expected)"
        case .wrongChain(let chain): return "this is \(chain) address"
        case .unsupportedPrefix(let what): return "unsupported prefix: \(what)"
        case .wrongFormat(let what): return what
        case .invalidSegwit(let error): return error.description
        }
    }
}

/// The chain (and network) an address is validated for.
public enum AddressChain: Sendable, Hashable {
    /// Bitcoin on the given network.
    case bitcoin(BitcoinNetwork)
    /// Ethereum or any EVM chain (the address format does not depend on the chain id).
    case evm
    /// TRON.
    case tron
}

/// An address that passed validation, in its parsed form.
public enum ValidatedAddress: Sendable, Hashable {
    /// A Bitcoin address.
    case bitcoin(BitcoinAddress)
    /// An EVM address.
    case evm(EVMAddress)
    /// A TRON address.
    case tron(TronAddress)

    /// The canonical string form (bech32 lower case, EIP-55 checksummed, TRON base58).
    public var canonical: String {
        switch self {
        case .bitcoin(let a): return a.string
        case .evm(let a): return a.checksummed
        case .tron(let a): return a.base58
        }
    }
}

/// One entry point for validating user-supplied addresses per chain.
public enum AddressValidator {
    /// Validates `address` for `chain`, returning the parsed address or throwing the reason it is unacceptable.
    public static func validate(_ address: String, chain: AddressChain) throws(AddressError) -> ValidatedAddress {
        switch chain {
        case .bitcoin(let network): return .bitcoin(try BitcoinAddress(address, network: network))
        case .evm: return .evm(try EVMAddress(address))
        case .tron: return .tron(try TronAddress(address))
        }
    }

    static func checkNotBlank(_ address: String) throws(AddressError) {
        guard !address.isEmpty else { throw .empty }
        if let first = address.first, first.isWhitespace { throw .surroundingWhitespace }
        if let last = address.last, last.isWhitespace { throw .surroundingWhitespace }
    }

    /// `0x` followed by 40 hex digits, in any case.
    static func looksLikeEVM(_ address: String) -> Bool {
        let utf8 = Array(address.utf8)
        guard utf8.count == 42, utf8[0] == UInt8(ascii: "0"), utf8[1] == UInt8(ascii: "x") || utf8[1] == UInt8(ascii: "X") else { return false }
        return utf8[2...].allSatisfy { Hex.nibble($0) != nil }
    }

    /// TRON's 42-hex-digit `41…` form.
    static func looksLikeTronHex(_ address: String) -> Bool {
        let utf8 = Array(address.utf8)
        return utf8.count == 42 && utf8[0] == UInt8(ascii: "4") && utf8[1] == UInt8(ascii: "1") && utf8.allSatisfy { Hex.nibble($0) != nil }
    }

    /// A Base58Check string decoding to 21 bytes starting with 0x41.
    static func looksLikeTronBase58(_ address: String) -> Bool {
        guard let payload = try? Base58.decodeCheck(address) else { return false }
        return payload.count == 21 && payload.first == TronAddress.prefixByte
    }
}
