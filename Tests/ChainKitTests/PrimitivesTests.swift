import ChainKit
import Foundation
import Testing

private struct KeccakFile: Decodable {
    struct Vector: Decodable {
        let label: String
        let length: Int
        let input_hex: String
        let keccak256: String
    }
    struct NIST: Decodable {
        let input_hex: String
        let sha3_256_NIST: String
    }
    let vectors: [Vector]
    let function_selectors: [String: String]
    let event_topics: [String: String]
    let sha3_256_do_not_confuse: [NIST]
}

@Suite("Hash primitives")
struct HashPrimitivesTests {
    @Test("Keccak-256 matches every vector, including rate-block boundaries")
    func keccakVectors() throws {
        let file = try Vectors.load(KeccakFile.self, from: "keccak256.json")
        #expect(file.vectors.count == 14)
        for vector in file.vectors {
            let input = try hex(vector.input_hex)
            #expect(input.count == vector.length, "\(vector.label)")
            #expect(Hex.encode(Keccak256.hash(input)) == vector.keccak256, "\(vector.label)")
        }
    }

    @Test("Keccak-256 function selectors and event topics")
    func selectorsAndTopics() throws {
        let file = try Vectors.load(KeccakFile.self, from: "keccak256.json")
        #expect(file.function_selectors.count == 10)
        for (signature, selector) in file.function_selectors {
            #expect("0x" + Hex.encode(Keccak256.hash(utf8: signature).prefix(4)) == selector, "\(signature)")
            #expect("0x" + Hex.encode(ABI.selector(signature)) == selector, "\(signature)")
        }
        for (signature, topic) in file.event_topics {
            #expect("0x" + Hex.encode(Keccak256.hash(utf8: signature)) == topic, "\(signature)")
        }
    }

    @Test("Keccak-256 is not NIST SHA3-256")
    func notSHA3() throws {
        let file = try Vectors.load(KeccakFile.self, from: "keccak256.json")
        #expect(file.sha3_256_do_not_confuse.count == 2)
        for vector in file.sha3_256_do_not_confuse {
            #expect(Hex.encode(Keccak256.hash(try hex(vector.input_hex))) != vector.sha3_256_NIST)
        }
    }

    @Test(
        "RIPEMD-160 reference vectors (Dobbertin, Bosselaers, Preneel)",
        arguments: [
            ("", "9c1185a5c5e9fc54612808977ee8f548b2258d31"),
            ("a", "0bdc9d2d256b3ee9daae347be6f4dc835a467ffe"),
            ("abc", "8eb208f7e05d987a9b044a8e98c6b087f15a0bfc"),
            ("message digest", "5d0689ef49d2fae572b881b123a85ffa21595f36"),
            ("abcdefghijklmnopqrstuvwxyz", "f71c27109c692c1b56bbdceb5b9d2865b3708dbc"),
            ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", "12a053384a9c0c88e405a06c27dcf49ada62eb2b"),
            ("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", "b0e20b6e3116640286ed3a87a5713079b21f5189"),
            (String(repeating: "1234567890", count: 8), "9b752e45573d4b39f4dbd3323cab82bf63326bfb"),
        ]
    )
    func ripemd160(input: String, expected: String) {
        #expect(Hex.encode(RIPEMD160.hash(Array(input.utf8))) == expected)
    }

    @Test("RIPEMD-160 of one million 'a' (multi-block)")
    func ripemd160Million() {
        let input = [UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)
        #expect(Hex.encode(RIPEMD160.hash(input)) == "52783243c1697bdbe16d37f97f68f08325dc1528")
    }

    @Test("SHA-256, double SHA-256 and HASH160")
    func sha256Family() throws {
        #expect(Hex.encode(Hashing.sha256(Data("abc".utf8))) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(Hex.encode(Hashing.sha256d(Data())) == "5df6e0e2761359d30a8275058e299fcc0381534545f55cf43e41983f5d4c9456")
        // HASH160 of the BIP84 m/84'/0'/0'/0/0 key is the P2WPKH program in the address vectors.
        let pub = try hex("0330d54fd0dd420a6e5f8d3624f5f3482cae350f79d5f0753bf5beef9c2d91af3c")
        #expect(Hex.encode(Hashing.hash160(pub)) == "c0cebcd6c3d3ca8c75dc5ec62ebe55330ef910e2")
    }

    @Test("HMAC-SHA512 (RFC 4231 test case 2)")
    func hmacSHA512() {
        let mac = Hashing.hmacSHA512(key: Data("Jefe".utf8), data: Data("what do ya want for nothing?".utf8))
        #expect(
            Hex.encode(mac)
                == "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"
        )
    }

    @Test(
        "PBKDF2-HMAC-SHA512 (published vectors for password/salt)",
        arguments: [
            (1, "867f70cf1ade02cff3752599a3a53dc4af34c7a669815ae5d513554e1c8cf252c02d470a285a0501bad999bfe943c08f050235d7d68b1da55e63f73b60a57fce"),
            (2, "e1d9c16aa681708a45f5c7c4e215ceb66e011a2e9f0040713f18aefdb866d53cf76cab2868a39b9f7840edce4fef5a82be67335c77a6068e04112754f27ccf4e"),
            (
                4096,
                "d197b1b33db0143e018b12f3d1d1479e6cdebdcc97c5c0f87f6902e072f457b5143f30602641b3d55cd335988cb36b84376060ecd532e039b742a239434af2d5"
            ),
        ]
    )
    func pbkdf2(iterations: Int, expected: String) {
        let key = Hashing.pbkdf2SHA512(password: Data("password".utf8), salt: Data("salt".utf8), iterations: iterations, keyLength: 64)
        #expect(Hex.encode(key) == expected)
    }

    @Test("PBKDF2 output shorter and longer than one HMAC block")
    func pbkdf2Lengths() {
        let long = Hashing.pbkdf2SHA512(password: Data("password".utf8), salt: Data("salt".utf8), iterations: 2, keyLength: 100)
        let short = Hashing.pbkdf2SHA512(password: Data("password".utf8), salt: Data("salt".utf8), iterations: 2, keyLength: 20)
        #expect(long.count == 100)
        #expect(short == long.prefix(20))
        #expect(
            Hex.encode(long.prefix(64))
                == "e1d9c16aa681708a45f5c7c4e215ceb66e011a2e9f0040713f18aefdb866d53cf76cab2868a39b9f7840edce4fef5a82be67335c77a6068e04112754f27ccf4e"
        )
    }
}

@Suite("Hex")
struct HexTests {
    @Test("round trip and strict decoding")
    func roundTrip() throws {
        let bytes = Data((0...255).map { UInt8($0) })
        #expect(try Hex.decode(Hex.encode(bytes)) == bytes)
        #expect(try Hex.decode("0xDEADbeef") == Data([0xde, 0xad, 0xbe, 0xef]))
        #expect(throws: Hex.DecodingError.oddLength(3)) { try Hex.decode("abc") }
        #expect(throws: Hex.DecodingError.invalidCharacter("g", offset: 1)) { try Hex.decode("0g") }
        #expect(throws: Hex.DecodingError.self) { try Hex.decode("0xab", allowPrefix: false) }
    }
}
