import ChainKit
import Foundation
import Testing

private struct AddressFile: Decodable {
    struct BTC: Decodable {
        let network: String
        let address: String
        let valid: Bool
        let type: String?
        let hash160: String?
        let witness_version: Int?
        let witness_program: String?
        let reason: String
    }
    struct ETH: Decodable {
        let address: String
        let valid: Bool
        let checksummed_form: String?
        let reason: String
    }
    struct TRON: Decodable {
        let address: String
        let valid: Bool
        let hex: String?
        let evm_address: String?
        let reason: String
    }
    let btc: [BTC]
    let eth: [ETH]
    let tron: [TRON]

    static func load() throws -> AddressFile {
        try Vectors.load(AddressFile.self, from: "address_validation.json")
    }
}

/// What an invalid vector must be rejected with: the exact error, or just its kind when the wording is free.
private enum Expected: Sendable {
    case exact(AddressError)
    case kind(String)

    func matches(_ error: AddressError) -> Bool {
        switch self {
        case .exact(let expected): return error == expected
        case .kind(let name): return kindName(error) == name
        }
    }
}

private func kindName(_ error: AddressError) -> String {
    switch error {
    case .empty: return "empty"
    case .surroundingWhitespace: return "surroundingWhitespace"
    case .invalidCharacter: return "invalidCharacter"
    case .wrongLength: return "wrongLength"
    case .tooLong: return "tooLong"
    case .wrongPayloadLength: return "wrongPayloadLength"
    case .checksumMismatch: return "checksumMismatch"
    case .mixedCase: return "mixedCase"
    case .eip55ChecksumMismatch: return "eip55ChecksumMismatch"
    case .missingHexPrefix: return "missingHexPrefix"
    case .wrongNetwork: return "wrongNetwork"
    case .wrongChain: return "wrongChain"
    case .unsupportedPrefix: return "unsupportedPrefix"
    case .wrongFormat: return "wrongFormat"
    case .invalidSegwit: return "invalidSegwit"
    }
}

// The expected rejection of every invalid vector, chosen from its "reason" text. Keyed by network + address.
private let expectedBTC: [String: Expected] = [
    "mainnet tb1qcr8te4kr609gcawutmrza0j4xv80jy8zmfp6l0": .exact(.wrongNetwork(expected: "mainnet", found: "testnet")),
    "mainnet tb1p5cyxnuxmeuwuvkwfem96lqzszd02n6xdcjrs20cac6yqjjwudpxqp3mvzv": .exact(.wrongNetwork(expected: "mainnet", found: "testnet")),
    "mainnet bcrt1qcr8te4kr609gcawutmrza0j4xv80jy8zeqchgx": .exact(.wrongNetwork(expected: "mainnet", found: "regtest")),
    "mainnet ltc1qcr8te4kr609gcawutmrza0j4xv80jy8z4nqduv": .kind("unsupportedPrefix"),
    "testnet bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu": .exact(.wrongNetwork(expected: "testnet", found: "mainnet")),
    "mainnet n1M8ZVQtL7QoFvGMg24D6b2ojWvFXCGpoS": .exact(.wrongNetwork(expected: "mainnet", found: "testnet/regtest")),
    "mainnet 2N8ShdHvtvhbbrWPBQkgTqvNtP5Bp33veEi": .exact(.wrongNetwork(expected: "mainnet", found: "testnet/regtest")),
    "mainnet Lf48XedjbkDbjcUu8b58YgtF5jgpff6imo": .exact(.unsupportedPrefix("version byte 0x30")),
    "mainnet MP6dsSQqGMwgTE2XqW3w3ce2VRa6J27zqw": .exact(.unsupportedPrefix("version byte 0x32")),
    "mainnet bc1qcr8te4kr609gcawutmrza0j4xv80jy8zyn29p7": .exact(.invalidSegwit(.wrongVariant(version: 0, expected: .bech32))),
    "mainnet bc1qc0h2knqvncc9hwa7w0aaajgmkr3z42umr8n77rwxcwv4euykswlqkn937y": .exact(.invalidSegwit(.wrongVariant(version: 0, expected: .bech32))),
    "mainnet bc1p5cyxnuxmeuwuvkwfem96lqzszd02n6xdcjrs20cac6yqjjwudpxqr9a0ap": .exact(.invalidSegwit(.wrongVariant(version: 1, expected: .bech32m))),
    "mainnet bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyq": .exact(.checksumMismatch),
    "mainnet bc1qcr8te4qr609gcawutmrza0j4xv80jy8z306fyu": .exact(.checksumMismatch),
    "mainnet bc1p5cyxnuxmeuwuvkwfqm96lqzszd02n6xdcjrs20cac6yqjjwudpxqkedrcr": .exact(.checksumMismatch),
    "mainnet bc1qcr8te4KR609GCAWUTMRZA0J4XV80JY8Z306FYU": .exact(.mixedCase),
    "mainnet bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyb": .exact(.invalidCharacter("b", offset: 41)),
    "mainnet bcqcr8te4kr609gcawutmrza0j4xv80jy8z306fyu": .exact(.invalidSegwit(.missingSeparator)),
    "mainnet bc1qcr8te4kr609gcawutmrza0j4xv80jy8zqqvv79qy": .exact(.invalidSegwit(.invalidProgramLength(version: 0, length: 21))),
    "mainnet bc1qcr8te4kr609gcawutmrza0j4xv80jyqtkvwy7": .exact(.invalidSegwit(.invalidProgramLength(version: 0, length: 19))),
    "mainnet bc1pqystr2wj": .exact(.invalidSegwit(.invalidProgramLength(version: 1, length: 1))),
    "mainnet bc1pqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqepcyyg": .exact(
        .invalidSegwit(.invalidProgramLength(version: 1, length: 41))
    ),
    "mainnet bc135cyxnuxmeuwuvkwfem96lqzszd02n6xdcjrs20cac6yqjjwudpxq2dhpd0": .exact(.invalidSegwit(.invalidWitnessVersion(17))),
    "mainnet bc1gmk9yu": .exact(.invalidSegwit(.emptyData)),
    "mainnet bc1qcr8te4kr609gcawutmrza0j4xv80jy8zq8d4f4q": .exact(.invalidSegwit(.invalidPadding)),
    "mainnet bc1p5cyxnuxmeuwuvkwfem96lqzszd02n6xdcjrs20cac6yqjjwudpxpt0ek93": .exact(.invalidSegwit(.invalidPadding)),
    "mainnet 1LqBGSKuX5yYUonjxT5qGfpUsXKYYWeab1": .exact(.checksumMismatch),
    "mainnet 3GtVZ1zsKF6Feikdjd4bDyPdAiyeHANY9b": .exact(.checksumMismatch),
    "mainnet 14yyWGyGjHULa3qD9SmkeXVQfNK67Fwaj": .exact(.wrongPayloadLength(expected: 21, got: 20)),
    "mainnet 12LajwU8DZizUPXt4JgX8H6SN2sbqYahLHVr": .exact(.wrongPayloadLength(expected: 21, got: 22)),
    "mainnet 1LqBG0KuX5yYUonjxT5qGfpUsXKYYWeabA": .exact(.invalidCharacter("0", offset: 5)),
    "mainnet 1LqBGOKuX5yYUonjxT5qGfpUsXKYYWeabA": .exact(.invalidCharacter("O", offset: 5)),
    "mainnet 1LqBGIKuX5yYUonjxT5qGfpUsXKYYWeabA": .exact(.invalidCharacter("I", offset: 5)),
    "mainnet 1LqBGlKuX5yYUonjxT5qGfpUsXKYYWeabA": .exact(.invalidCharacter("l", offset: 5)),
    "mainnet 1lqbgskux5yyuonjxt5qgfpusxkyyweaba": .exact(.invalidCharacter("l", offset: 1)),
    "mainnet  1LqBGSKuX5yYUonjxT5qGfpUsXKYYWeabA": .exact(.surroundingWhitespace),
    "mainnet ": .exact(.empty),
    "mainnet 0x9858EfFD232B4033E47d90003D41EC34EcaEda94": .kind("wrongChain"),
    "mainnet TUEZSdKsoDHQMeZwihtdoBiN46zxhGWYdH": .kind("wrongChain"),
]

private let expectedETH: [String: Expected] = [
    "0x9858efFD232B4033E47d90003D41EC34EcaEda94": .exact(.eip55ChecksumMismatch),
    "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD": .exact(.eip55ChecksumMismatch),
    "0x9858EfFD232B4033E47d90003d41ec34ecaeda94": .exact(.eip55ChecksumMismatch),
    "0x9858EfFD232B4033E47d90003D41EC34EcaEda9": .exact(.wrongLength(expected: 42, got: 41)),
    "0x9858EfFD232B4033E47d90003D41EC34EcaEda94a": .exact(.wrongLength(expected: 42, got: 43)),
    "0x0000000000000000000000000000000000000000000000000000000000000000": .exact(.wrongLength(expected: 42, got: 66)),
    "9858EfFD232B4033E47d90003D41EC34EcaEda94": .exact(.missingHexPrefix),
    "0X9858EfFD232B4033E47d90003D41EC34EcaEda94": .exact(.missingHexPrefix),
    "0x9858EfFD232B4033E47d90003D41EC34EcaEda9g": .exact(.invalidCharacter("g", offset: 41)),
    " 0x9858EfFD232B4033E47d90003D41EC34EcaEda94": .exact(.surroundingWhitespace),
    "0x": .exact(.wrongLength(expected: 42, got: 2)),
    "": .exact(.empty),
    "TUEZSdKsoDHQMeZwihtdoBiN46zxhGWYdH": .kind("wrongChain"),
    "41c8599111f29c1e1e061265b4af93ea1f274ad78a": .kind("wrongChain"),
]

private let expectedTRON: [String: Expected] = [
    "TUEZSdKsoDHQMeZwihtdoBiN46zxhGWYd1": .exact(.checksumMismatch),
    "TUEZSdKsoD1QMeZwihtdoBiN46zxhGWYdH": .exact(.checksumMismatch),
    "tuezsdksodhqmezwihtdobin46zxhgwydh": .exact(.checksumMismatch),
    "TUEZSdKsoDHQMeZwihtdoBiN46zxhGWYd": .exact(.wrongLength(expected: 34, got: 33)),
    "TUEZSdKsoDHQMeZwihtdoBiN46zxhGWYdH1": .exact(.wrongLength(expected: 34, got: 35)),
    "27hLryweFFMJe3ppB3ZXus6a6r2UaHRs9kx": .kind("unsupportedPrefix"),
    "1KGMSZx9eVATCUWK8SEvH32E9KFeZFGnGh": .kind("wrongChain"),
    "KGMSZx9eVATCUWK8SEvH32E9KFeZptTSg": .exact(.wrongPayloadLength(expected: 21, got: 20)),
    "31qCrC7LKCyDQ68pQX5UuQrHZvhUpmxe4jgY": .exact(.wrongPayloadLength(expected: 21, got: 22)),
    "TUEZS0KsoDHQMeZwihtdoBiN46zxhGWYdH": .exact(.invalidCharacter("0", offset: 5)),
    "TUEZSlKsoDHQMeZwihtdoBiN46zxhGWYdH": .exact(.invalidCharacter("l", offset: 5)),
    "41c8599111f29c1e1e061265b4af93ea1f274ad78a": .kind("wrongFormat"),
    "0xc8599111f29c1e1e061265b4af93ea1f274ad78a": .kind("wrongChain"),
    " TUEZSdKsoDHQMeZwihtdoBiN46zxhGWYdH": .exact(.surroundingWhitespace),
    "": .exact(.empty),
]

/// The `AddressError` that `body` throws, nil if it succeeds; any other error type is a test failure.
private func rejection(_ body: () throws -> Void) -> AddressError? {
    do {
        try body()
        return nil
    } catch let error as AddressError {
        return error
    } catch {
        Issue.record("unexpected error type: \(error)")
        return nil
    }
}

@Suite("Address validation")
struct AddressValidationTests {
    @Test("BTC: every valid vector parses to its type and hash; every invalid one fails for its reason")
    func bitcoin() throws {
        let file = try AddressFile.load()
        #expect(file.btc.count == 53)
        var invalidSeen = Set<String>()
        for v in file.btc {
            let network = try #require(BitcoinNetwork(rawValue: v.network))
            if v.valid {
                let address = try BitcoinAddress(v.address, network: network)
                #expect(address.kind.rawValue == v.type, "\(v.address)")
                #expect(address.string == (address.kind == .p2pkh || address.kind == .p2sh ? v.address : v.address.lowercased()))
                switch address.payload {
                case .p2pkh(let hash), .p2sh(let hash):
                    #expect(Hex.encode(hash) == v.hash160, "\(v.address)")
                case .witness(let version, let program):
                    #expect(version == v.witness_version, "\(v.address)")
                    #expect(Hex.encode(program) == v.witness_program, "\(v.address)")
                }
                #expect(try AddressValidator.validate(v.address, chain: .bitcoin(network)).canonical == address.string)
            } else {
                let key = "\(v.network) \(v.address)"
                invalidSeen.insert(key)
                let expected = try #require(expectedBTC[key], "no expectation for invalid vector '\(key)' (\(v.reason))")
                let error = rejection { _ = try BitcoinAddress(v.address, network: network) }
                let actual = try #require(error, "accepted invalid address '\(v.address)': \(v.reason)")
                #expect(expected.matches(actual), "'\(v.address)' (\(v.reason)) rejected as \(actual)")
                #expect(!actual.description.isEmpty)
            }
        }
        #expect(invalidSeen == Set(expectedBTC.keys))
    }

    @Test("ETH: valid vectors give their EIP-55 form; invalid ones fail for their reason")
    func ethereum() throws {
        let file = try AddressFile.load()
        #expect(file.eth.count == 23)
        var invalidSeen = Set<String>()
        for v in file.eth {
            if v.valid {
                let address = try EVMAddress(v.address)
                #expect(address.checksummed == v.checksummed_form, "\(v.address)")
                #expect(address.lowercased == v.address.lowercased())
                #expect(try EVMAddress(address.checksummed) == address)
                #expect(try AddressValidator.validate(v.address, chain: .evm).canonical == v.checksummed_form)
            } else {
                invalidSeen.insert(v.address)
                let expected = try #require(expectedETH[v.address], "no expectation for '\(v.address)' (\(v.reason))")
                let actual = try #require(rejection { _ = try EVMAddress(v.address) }, "accepted '\(v.address)': \(v.reason)")
                #expect(expected.matches(actual), "'\(v.address)' (\(v.reason)) rejected as \(actual)")
            }
        }
        #expect(invalidSeen == Set(expectedETH.keys))
        #expect(try EVMAddress("0x0000000000000000000000000000000000000000").isZero)
    }

    @Test("TRON: valid vectors convert to hex and EVM forms; invalid ones fail for their reason")
    func tron() throws {
        let file = try AddressFile.load()
        #expect(file.tron.count == 19)
        var invalidSeen = Set<String>()
        for v in file.tron {
            if v.valid {
                let address = try TronAddress(v.address)
                let hexForm = try #require(v.hex)
                let evmForm = try #require(v.evm_address)
                #expect(address.hex == hexForm)
                #expect(address.base58 == v.address)
                #expect(address.evmAddress.checksummed == evmForm)
                // Conversions in every direction.
                #expect(try TronAddress(hex: hexForm) == address)
                #expect(try TronAddress(hex: "0x" + hexForm.uppercased()) == address)
                #expect(try TronAddress(base58OrHex: hexForm) == address)
                #expect(try TronAddress(base58OrHex: v.address) == address)
                #expect(TronAddress(evmAddress: try EVMAddress(evmForm)) == address)
                #expect(try TronAddress(bytes: hex(hexForm)) == address)
                #expect(try AddressValidator.validate(v.address, chain: .tron).canonical == v.address)
            } else {
                invalidSeen.insert(v.address)
                let expected = try #require(expectedTRON[v.address], "no expectation for '\(v.address)' (\(v.reason))")
                let actual = try #require(rejection { _ = try TronAddress(v.address) }, "accepted '\(v.address)': \(v.reason)")
                #expect(expected.matches(actual), "'\(v.address)' (\(v.reason)) rejected as \(actual)")
            }
        }
        #expect(invalidSeen == Set(expectedTRON.keys))
    }

    @Test("TRON hex and raw forms reject bad input")
    func tronHexInvalid() {
        #expect(throws: AddressError.unsupportedPrefix("byte 0xa0, expected 0x41")) {
            try TronAddress(hex: "a0c8599111f29c1e1e061265b4af93ea1f274ad78a")
        }
        #expect(throws: AddressError.wrongPayloadLength(expected: 21, got: 20)) {
            try TronAddress(hex: "c8599111f29c1e1e061265b4af93ea1f274ad78a")
        }
        #expect(throws: AddressError.invalidCharacter("z", offset: 1)) { try TronAddress(hex: "4z") }
        #expect(throws: AddressError.self) { try TronAddress(base58OrHex: "41c8599111f29c1e1e061265b4af93ea1f274ad7") }
    }

    @Test("oversized input is refused before any quadratic base58 work")
    func oversized() {
        let huge = String(repeating: "1", count: 100_000)
        #expect(throws: AddressError.tooLong(max: 90, got: 100_000)) { try BitcoinAddress(huge, network: .mainnet) }
        #expect(throws: AddressError.wrongLength(expected: 34, got: 100_000)) { try TronAddress(huge) }
        #expect(throws: AddressError.wrongLength(expected: 42, got: 100_002)) { try EVMAddress("0x" + huge) }
        #expect(throws: Base58.DecodingError.tooLong(100_000)) { try Base58.decode(huge) }
        #expect(throws: HDKeyError.invalidEncoding(.tooLong(100_000))) { try ExtendedPublicKey(serialized: huge) }
    }

    @Test("reasons read as a person would write them")
    func descriptions() {
        #expect(AddressError.wrongLength(expected: 34, got: 33).description == "wrong length: expected 34 characters, got 33")
        #expect(AddressError.wrongNetwork(expected: "mainnet", found: "testnet").description == "testnet address not accepted on mainnet")
        #expect(AddressError.eip55ChecksumMismatch.description == "mixed-case address fails EIP-55 checksum")
        #expect(AddressError.checksumMismatch.description == "checksum mismatch")
        let tronInBTC = rejection { _ = try BitcoinAddress("TUEZSdKsoDHQMeZwihtdoBiN46zxhGWYdH", network: .mainnet) }
        #expect(tronInBTC?.description == "this is a TRON address, not a Bitcoin address")
    }

    @Test("addresses derived here encode and re-parse on every network")
    func encodeRoundTrip() throws {
        let key = try Secp256k1.PrivateKey(hex: "4604b4b710fe91f584fff084e1a9159fe4f8408fff380596a604948474ce4fa3").publicKey
        for network in BitcoinNetwork.allCases {
            for address in [
                BitcoinAddress.p2wpkh(publicKey: key, network: network), .p2pkh(publicKey: key, network: network),
                try .p2tr(internalKey: key, network: network),
            ] {
                #expect(try BitcoinAddress(address.string, network: network) == address)
                for other in BitcoinNetwork.allCases where other.bech32HRP != network.bech32HRP && other.p2pkhVersion != network.p2pkhVersion {
                    #expect(throws: AddressError.self) { try BitcoinAddress(address.string, network: other) }
                }
            }
        }
        #expect(BitcoinAddress.p2wpkh(publicKey: key).string == "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu")
        #expect(BitcoinAddress.p2wpkh(publicKey: key, network: .testnet).string == "tb1qcr8te4kr609gcawutmrza0j4xv80jy8zmfp6l0")
        #expect(Hex.encode(BitcoinAddress.p2wpkh(publicKey: key).scriptPubKey) == "0014c0cebcd6c3d3ca8c75dc5ec62ebe55330ef910e2")
        #expect(Hex.encode(BitcoinAddress.p2pkh(publicKey: key).scriptPubKey).hasPrefix("76a914"))
    }
}

@Suite("Base58 and Bech32 encodings")
struct EncodingTests {
    @Test("Base58 leading zeros, round trips and errors")
    func base58() throws {
        #expect(Base58.encode(Data()) == "")
        #expect(Base58.encode(Data([0, 0, 1])) == "112")
        #expect(try Base58.decode("112") == Data([0, 0, 1]))
        #expect(Base58.encode(Data("hello world".utf8)) == "StV1DL6CwTryKyV")
        for length in [1, 20, 21, 25, 78] {
            let data = Data((0..<length).map { UInt8(($0 * 37 + 11) % 256) })
            #expect(try Base58.decode(Base58.encode(data)) == data)
            #expect(try Base58.decodeCheck(Base58.encodeCheck(data)) == data)
        }
        #expect(throws: Base58.DecodingError.empty) { try Base58.decode("") }
        #expect(throws: Base58.DecodingError.invalidCharacter("0", offset: 2)) { try Base58.decode("110") }
        #expect(throws: Base58.DecodingError.tooShort) { try Base58.decodeCheck("111") }
        #expect(throws: Base58.DecodingError.checksumMismatch) { try Base58.decodeCheck("1111") }
    }

    // BIP173 and BIP350 test vectors (re-checked with embit 0.8.0 when written).
    @Test(
        "Bech32 and Bech32m valid checksums (BIP173, BIP350)",
        arguments: [
            ("A12UEL5L", Bech32.Variant.bech32),
            ("a12uel5l", .bech32),
            ("an83characterlonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1tt5tgs", .bech32),
            ("abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw", .bech32),
            ("11" + String(repeating: "q", count: 82) + "c8247j", .bech32),
            ("split1checkupstagehandshakeupstreamerranterredcaperred2y9e3w", .bech32),
            ("A1LQFN3A", .bech32m),
            ("a1lqfn3a", .bech32m),
            ("an83characterlonghumanreadablepartthatcontainsthetheexcludedcharactersbioandnumber11sg7hg6", .bech32m),
            ("abcdef1l7aum6echk45nj3s0wdvt2fg8x9yrzpqzd3ryx", .bech32m),
            ("split1checkupstagehandshakeupstreamerranterredcaperredlc445v", .bech32m),
            ("?1v759aa", .bech32m),
        ]
    )
    func bech32Valid(string: String, variant: Bech32.Variant) throws {
        let decoded = try Bech32.decode(string)
        #expect(decoded.variant == variant)
        #expect(Bech32.encode(hrp: decoded.hrp, values: decoded.values, variant: variant) == string.lowercased())
    }

    @Test(
        "Bech32 invalid strings (BIP173, BIP350)",
        arguments: [
            "\u{20}1nwldj5", "\u{7F}1axkwrx", "an84characterslonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1569pvx",
            "pzry9x0s0muk", "1pzry9x0s0muk", "x1b4n0q5v", "li1dgmt3", "A1G7SGD8", "10a06t8", "1qzzfhee",
            "M1VUXWEZ", "16plkw9", "1p2gdwpf",
        ]
    )
    func bech32Invalid(string: String) {
        #expect(throws: Bech32.DecodingError.self) { try Bech32.decode(string) }
    }

    @Test(
        "segwit addresses from BIP173/BIP350 decode to their scriptPubKey",
        arguments: [
            ("BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4", "bc", "0014751e76e8199196d454941c45d1b3a323f1433bd6"),
            (
                "tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7", "tb",
                "00201863143c14c5166804bd19203356da136c985678cd4d27a1b8c6329604903262"
            ),
            (
                "bc1pw508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7kt5nd6y", "bc",
                "5128751e76e8199196d454941c45d1b3a323f1433bd6751e76e8199196d454941c45d1b3a323f1433bd6"
            ),
            ("BC1SW50QGDZ25J", "bc", "6002751e"),
            ("bc1zw508d6qejxtdg4y5r3zarvaryvaxxpcs", "bc", "5210751e76e8199196d454941c45d1b3a323"),
            (
                "tb1qqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesrxh6hy", "tb",
                "0020000000c4a5cad46221b2a187905e5266362b99d5e91c6ce24d165dab93e86433"
            ),
            (
                "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0", "bc",
                "512079be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"
            ),
        ]
    )
    func segwitValid(address: String, hrp: String, script: String) throws {
        let (version, program) = try Bech32.decodeSegwit(hrp: hrp, address)
        let opcode: UInt8 = version == 0 ? 0 : UInt8(0x50 + version)
        #expect(Hex.encode(Data([opcode, UInt8(program.count)]) + program) == script)
        #expect(Bech32.encodeSegwit(hrp: hrp, version: version, program: program) == address.lowercased())
    }
}
