import BigInt
import ChainKit
import Foundation
import Testing

private let curveOrder = BigUInt("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141", radix: 16)!

@Suite("secp256k1")
struct Secp256k1Tests {
    @Test("private keys outside 1..<n are rejected")
    func privateKeyRange() throws {
        #expect(throws: Secp256k1.Error.invalidPrivateKey) { try Secp256k1.PrivateKey(Data(count: 32)) }
        #expect(throws: Secp256k1.Error.invalidPrivateKey) { try Secp256k1.PrivateKey(ABI.word(curveOrder)) }
        #expect(throws: Secp256k1.Error.invalidPrivateKey) { try Secp256k1.PrivateKey(Data(repeating: 1, count: 31)) }
        #expect(throws: Secp256k1.Error.invalidPrivateKey) { try Secp256k1.PrivateKey(hex: "zz") }
        #expect(throws: Never.self) { try Secp256k1.PrivateKey(ABI.word(curveOrder - 1)) }
        // The generator point: 1·G.
        let one = try Secp256k1.PrivateKey(hex: "0000000000000000000000000000000000000000000000000000000000000001")
        #expect(Hex.encode(one.publicKey.compressed) == "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798")
    }

    @Test("public keys parse from both SEC1 forms and reject points off the curve")
    func publicKeyParsing() throws {
        let key = try Secp256k1.PrivateKey(hex: "b5a4cea271ff424d7c31dc12a3e43e401df7a40d7412a15750f3f0b6b5449a28").publicKey
        #expect(try Secp256k1.PublicKey(key.compressed) == key)
        #expect(try Secp256k1.PublicKey(key.uncompressed) == key)
        #expect(key.rawXY.count == 64)
        #expect(throws: Secp256k1.Error.invalidPublicKey) { try Secp256k1.PublicKey(Data([0x02]) + Data(repeating: 0xff, count: 32)) }
        #expect(throws: Secp256k1.Error.invalidPublicKey) { try Secp256k1.PublicKey(key.compressed.dropLast()) }
        var broken = key.uncompressed
        broken[64] ^= 1  // y no longer on the curve
        #expect(throws: Secp256k1.Error.invalidPublicKey) { try Secp256k1.PublicKey(broken) }
    }

    @Test("sign → verify → recover, for many keys and hashes; low-s always")
    func signVerifyRecover() throws {
        for i in 1...24 {
            let key = try Secp256k1.PrivateKey(Hashing.sha256(Data("key \(i)".utf8)))
            let hash = Hashing.sha256(Data("message \(i)".utf8))
            let signature = try key.sign(hash: hash)
            #expect(signature.isLowS)
            #expect(key.publicKey.isValidSignature(signature, hash: hash))
            #expect(try signature.recoverPublicKey(hash: hash) == key.publicKey)
            // Deterministic (RFC 6979): same key and hash, same signature.
            #expect(try key.sign(hash: hash) == signature)
            // Wrong hash or wrong key fails.
            let other = Hashing.sha256(hash)
            #expect(!key.publicKey.isValidSignature(signature, hash: other))
            #expect(try signature.recoverPublicKey(hash: other) != key.publicKey)
            let stranger = try Secp256k1.PrivateKey(Hashing.sha256(Data("other \(i)".utf8))).publicKey
            #expect(!stranger.isValidSignature(signature, hash: hash))
            // The other recovery id yields a different key.
            let flipped = Secp256k1.RecoverableSignature(r: signature.r, s: signature.s, recoveryID: signature.recoveryID ^ 1)
            #expect((try? flipped.recoverPublicKey(hash: hash)) != key.publicKey)
        }
    }

    @Test("high-s twin of a valid signature is refused by verify")
    func highS() throws {
        let key = try Secp256k1.PrivateKey(hex: "4646464646464646464646464646464646464646464646464646464646464646")
        let hash = Hashing.sha256(Data("x".utf8))
        let signature = try key.sign(hash: hash)
        let high = Secp256k1.RecoverableSignature(
            r: signature.r,
            s: ABI.word(curveOrder - BigUInt(signature.s)),
            recoveryID: signature.recoveryID ^ 1
        )
        #expect(!high.isLowS)
        #expect(!key.publicKey.isValidSignature(high, hash: hash))
    }

    @Test("65-byte r‖s‖v parsing accepts v 0–3 and 27–30 only")
    func rsvParsing() throws {
        let key = try Secp256k1.PrivateKey(hex: "4646464646464646464646464646464646464646464646464646464646464646")
        let signature = try key.sign(hash: Data(repeating: 7, count: 32))
        #expect(try Secp256k1.RecoverableSignature(rsv: signature.rsv) == signature)
        #expect(try Secp256k1.RecoverableSignature(rsv: signature.rsvOffset27) == signature)
        var bad = signature.rsv
        bad[64] = 31
        #expect(throws: Secp256k1.Error.invalidRecoveryID(4)) { try Secp256k1.RecoverableSignature(rsv: bad) }
        #expect(throws: Secp256k1.Error.invalidSignature) { try Secp256k1.RecoverableSignature(rsv: signature.compact) }
        #expect(throws: Secp256k1.Error.invalidHashLength(31)) { try key.sign(hash: Data(count: 31)) }
        #expect(throws: Secp256k1.Error.invalidHashLength(33)) { try signature.recoverPublicKey(hash: Data(count: 33)) }
        // r = 0 cannot be parsed into a recoverable signature.
        let zeroR = Secp256k1.RecoverableSignature(r: Data(count: 32), s: signature.s, recoveryID: 0)
        #expect(throws: Secp256k1.Error.self) { try zeroR.recoverPublicKey(hash: Data(repeating: 7, count: 32)) }
    }

    @Test("tweak-add: (k + t)·G = k·G + t·G, and out-of-range tweaks fail")
    func tweaks() throws {
        let k = try Secp256k1.PrivateKey(hex: "e284129cc0922579a535bbf4d1a3b25773090d28c909bc0fed73b5e0222cc372")
        let t = Hashing.sha256(Data("tweak".utf8))
        let sum = try k.adding(tweak: t)
        #expect(BigUInt(sum.bytes) == (BigUInt(k.bytes) + BigUInt(t)) % curveOrder)
        #expect(try k.publicKey.adding(tweak: t) == sum.publicKey)
        #expect(throws: Secp256k1.Error.invalidTweak) { try k.adding(tweak: ABI.word(curveOrder)) }
        #expect(throws: Secp256k1.Error.invalidTweak) { try k.publicKey.adding(tweak: ABI.word(curveOrder)) }
        // t = n - k makes the private key zero and the public key the point at infinity.
        let negation = ABI.word(curveOrder - BigUInt(k.bytes))
        #expect(throws: Secp256k1.Error.invalidTweak) { try k.adding(tweak: negation) }
        #expect(throws: Secp256k1.Error.invalidTweak) { try k.publicKey.adding(tweak: negation) }
        #expect(throws: Secp256k1.Error.invalidTweak) { try k.adding(tweak: Data(count: 31)) }
    }

    @Test("the shared context signs correctly from many concurrent tasks")
    func concurrentUse() async throws {
        let results = try await withThrowingTaskGroup(of: Bool.self) { group in
            for i in 0..<64 {
                group.addTask {
                    let key = try Secp256k1.PrivateKey(Hashing.sha256(Data("concurrent \(i)".utf8)))
                    let hash = Hashing.sha256(Data([UInt8(i)]))
                    let signature = try key.sign(hash: hash)
                    return try signature.recoverPublicKey(hash: hash) == key.publicKey
                }
            }
            var all: [Bool] = []
            for try await ok in group { all.append(ok) }
            return all
        }
        #expect(results.count == 64)
        #expect(results.allSatisfy { $0 })
    }

    @Test("WIF round trip and rejection")
    func wif() throws {
        let key = try Secp256k1.PrivateKey(hex: "0c28fca386c7a227600b2fe50b7cae11ec86d3bf1fbe471be89827e19d72aa1d")
        #expect(key.wif() == "KwdMAjGmerYanjeui5SHS7JkmpZvVipYvB2LJGU1ZxJwYvP98617")
        #expect(try Secp256k1.PrivateKey(wif: "5HueCGU8rMjxEXxiPuD5BDku4MkFqeZyd4dZ1jvhTVqvbTLvyTJ") == key)  // uncompressed form
        #expect(try Secp256k1.PrivateKey(wif: key.wif(network: .testnet)) == key)
        #expect(throws: Secp256k1.Error.invalidPrivateKey) { try Secp256k1.PrivateKey(wif: "KwdMAjGmerYanjeui5SHS7JkmpZvVipYvB2LJGU1ZxJwYvP98618") }
    }
}
