import CSecp256k1
import Foundation

/// One libsecp256k1 context for the whole process, created and randomised on first use.
///
/// libsecp256k1 documents every API call that takes a `const secp256k1_context*` (all calls made here) as safe to
/// use concurrently from several threads; the context is never mutated or destroyed after creation, which is why
/// this immutable global may be shared without isolation.
nonisolated(unsafe) private let secp256k1Context: OpaquePointer = {
    guard let context = secp256k1_context_create(UInt32(SECP256K1_CONTEXT_NONE)) else {
        fatalError("secp256k1_context_create failed")
    }
    // Blinding against side channels; a failure here leaves the context usable, only unblinded.
    var seed = [UInt8](repeating: 0, count: 32)
    var rng = SystemRandomNumberGenerator()
    for i in seed.indices { seed[i] = rng.next() }
    _ = secp256k1_context_randomize(context, seed)
    return context
}()

/// secp256k1 keys, recoverable ECDSA signatures and BIP32 tweaks, backed by the system libsecp256k1.
public enum Secp256k1 {
    /// Errors thrown by secp256k1 operations.
    public enum Error: Swift.Error, Equatable, Sendable, CustomStringConvertible {
        /// Not 32 bytes, zero, or not below the curve order.
        case invalidPrivateKey
        /// Not a valid SEC1 encoding of a curve point.
        case invalidPublicKey
        /// The message hash is not 32 bytes.
        case invalidHashLength(Int)
        /// r or s out of range, or the encoding is not 64/65 bytes.
        case invalidSignature
        /// A recovery id outside 0...3 (or 27...30 in the offset form).
        case invalidRecoveryID(Int)
        /// A tweak not below the curve order, or one that produces the point at infinity / a zero key.
        case invalidTweak
        /// No public key could be recovered from the signature and hash.
        case recoveryFailed

        /// A human-readable reason.
        public var description: String {
            switch self {
            case .invalidPrivateKey: return "invalid secp256k1 private key"
            case .invalidPublicKey: return "invalid secp256k1 public key"
            case .invalidHashLength(let n): return "message hash must be 32 bytes, got \(n)"
            case .invalidSignature: return "invalid ECDSA signature"
            case .invalidRecoveryID(let v): return "invalid recovery id \(v)"
            case .invalidTweak: return "tweak out of range"
            case .recoveryFailed: return "public key recovery failed"
            }
        }
    }

    /// Half the curve order: the largest `s` accepted as low-s (BIP62 / EIP-2).
    static let halfOrder: [UInt8] = Array(try! Hex.decode("7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0"))

    /// A secp256k1 private key (32 bytes, in 1..<n). Its description never shows the key.
    public struct PrivateKey: Sendable, Hashable, CustomStringConvertible, CustomReflectable {
        /// The 32 big-endian key bytes.
        public let bytes: Data

        /// Validates and wraps 32 key bytes.
        public init<D: DataProtocol>(_ bytes: D) throws(Secp256k1.Error) {
            let data = Data(bytes)
            guard data.count == 32 else { throw .invalidPrivateKey }
            let ok = data.withUnsafeBytes { secp256k1_ec_seckey_verify(secp256k1Context, $0.bindMemory(to: UInt8.self).baseAddress!) }
            guard ok == 1 else { throw .invalidPrivateKey }
            self.bytes = data
        }

        /// Parses a 64-digit hex private key (optional `0x`).
        public init(hex: String) throws(Secp256k1.Error) {
            guard let data = try? Hex.decode(hex) else { throw .invalidPrivateKey }
            try self.init(data)
        }

        /// The matching public key.
        public var publicKey: PublicKey {
            var pubkey = secp256k1_pubkey()
            let ok = bytes.withUnsafeBytes { secp256k1_ec_pubkey_create(secp256k1Context, &pubkey, $0.bindMemory(to: UInt8.self).baseAddress!) }
            precondition(ok == 1, "a validated private key always has a public key")
            return PublicKey(pubkey)
        }

        /// `(self + tweak) mod n`, as BIP32 private derivation needs; throws if the tweak is ≥ n or the sum is zero.
        public func adding(tweak: Data) throws(Secp256k1.Error) -> PrivateKey {
            guard tweak.count == 32 else { throw .invalidTweak }
            var key = Array(bytes)
            let tweakBytes = Array(tweak)
            guard secp256k1_ec_seckey_tweak_add(secp256k1Context, &key, tweakBytes) == 1 else { throw .invalidTweak }
            return try PrivateKey(key)
        }

        /// Signs a 32-byte hash with RFC 6979 deterministic nonces; the result is always low-s.
        public func sign(hash: Data) throws(Secp256k1.Error) -> RecoverableSignature {
            guard hash.count == 32 else { throw .invalidHashLength(hash.count) }
            var signature = secp256k1_ecdsa_recoverable_signature()
            let message = Array(hash)
            let key = Array(bytes)
            guard secp256k1_ecdsa_sign_recoverable(secp256k1Context, &signature, message, key, nil, nil) == 1 else {
                throw .invalidPrivateKey
            }
            var compact = [UInt8](repeating: 0, count: 64)
            var recid: Int32 = 0
            _ = secp256k1_ecdsa_recoverable_signature_serialize_compact(secp256k1Context, &compact, &recid, &signature)
            return RecoverableSignature(r: Data(compact[0..<32]), s: Data(compact[32..<64]), recoveryID: UInt8(recid))
        }

        /// Redacted: private keys are never printed.
        public var description: String { "Secp256k1.PrivateKey(<redacted>)" }

        /// Empty mirror so that `dump` does not print the key either.
        public var customMirror: Mirror { Mirror(self, children: []) }
    }

    /// A secp256k1 public key, kept in both SEC1 forms.
    public struct PublicKey: Sendable, Hashable, CustomStringConvertible {
        /// 33-byte compressed SEC1 encoding (`02`/`03` || X).
        public let compressed: Data
        /// 65-byte uncompressed SEC1 encoding (`04` || X || Y).
        public let uncompressed: Data

        fileprivate init(_ pubkey: secp256k1_pubkey) {
            var key = pubkey
            var short = [UInt8](repeating: 0, count: 33)
            var shortLength = 33
            _ = secp256k1_ec_pubkey_serialize(secp256k1Context, &short, &shortLength, &key, UInt32(SECP256K1_EC_COMPRESSED))
            var long = [UInt8](repeating: 0, count: 65)
            var longLength = 65
            _ = secp256k1_ec_pubkey_serialize(secp256k1Context, &long, &longLength, &key, UInt32(SECP256K1_EC_UNCOMPRESSED))
            compressed = Data(short)
            uncompressed = Data(long)
        }

        /// Parses a 33-byte compressed or 65-byte uncompressed SEC1 public key.
        public init<D: DataProtocol>(_ bytes: D) throws(Secp256k1.Error) {
            let input = Array(bytes)
            guard input.count == 33 || input.count == 65 else { throw .invalidPublicKey }
            var pubkey = secp256k1_pubkey()
            guard secp256k1_ec_pubkey_parse(secp256k1Context, &pubkey, input, input.count) == 1 else { throw .invalidPublicKey }
            self.init(pubkey)
        }

        /// Parses a hex SEC1 public key (optional `0x`).
        public init(hex: String) throws(Secp256k1.Error) {
            guard let data = try? Hex.decode(hex) else { throw .invalidPublicKey }
            try self.init(data)
        }

        /// The 64 bytes X || Y (the uncompressed form without `04`), hashed by Ethereum and TRON.
        public var rawXY: Data { uncompressed.dropFirst() }

        /// `self + tweak·G`, as BIP32 public derivation needs; throws if the tweak is ≥ n or the result is infinity.
        public func adding(tweak: Data) throws(Secp256k1.Error) -> PublicKey {
            guard tweak.count == 32 else { throw .invalidTweak }
            var pubkey = secp256k1_pubkey()
            let input = Array(compressed)
            guard secp256k1_ec_pubkey_parse(secp256k1Context, &pubkey, input, input.count) == 1 else { throw .invalidPublicKey }
            guard secp256k1_ec_pubkey_tweak_add(secp256k1Context, &pubkey, Array(tweak)) == 1 else { throw .invalidTweak }
            return PublicKey(pubkey)
        }

        /// Verifies a low-s ECDSA signature over a 32-byte hash (high-s signatures are rejected, as Ethereum and Bitcoin policy do).
        public func isValidSignature(_ signature: RecoverableSignature, hash: Data) -> Bool {
            guard hash.count == 32 else { return false }
            var sig = secp256k1_ecdsa_signature()
            let compact = Array(signature.compact)
            guard secp256k1_ecdsa_signature_parse_compact(secp256k1Context, &sig, compact) == 1 else { return false }
            var pubkey = secp256k1_pubkey()
            let input = Array(compressed)
            guard secp256k1_ec_pubkey_parse(secp256k1Context, &pubkey, input, input.count) == 1 else { return false }
            return secp256k1_ecdsa_verify(secp256k1Context, &sig, Array(hash), &pubkey) == 1
        }

        /// The compressed key in hex.
        public var description: String { Hex.encode(compressed) }
    }

    /// An ECDSA signature with its recovery id (which of up to four candidate keys signed).
    public struct RecoverableSignature: Sendable, Hashable {
        /// 32-byte big-endian r.
        public let r: Data
        /// 32-byte big-endian s.
        public let s: Data
        /// Recovery id 0...3 (the parity of R's y coordinate, plus 2 if R.x overflowed the order).
        public let recoveryID: UInt8

        /// Builds a signature from 32-byte r and s and a recovery id in 0...3.
        public init(r: Data, s: Data, recoveryID: UInt8) {
            precondition(r.count == 32 && s.count == 32, "r and s are 32 bytes")
            precondition(recoveryID <= 3, "recovery id is 0...3")
            self.r = Data(r)
            self.s = Data(s)
            self.recoveryID = recoveryID
        }

        /// Parses a 64-byte r || s with a separate recovery id (0...3).
        public init(compact: Data, recoveryID: Int) throws(Secp256k1.Error) {
            guard compact.count == 64 else { throw .invalidSignature }
            guard (0...3).contains(recoveryID) else { throw .invalidRecoveryID(recoveryID) }
            let bytes = Array(compact)
            self.init(r: Data(bytes[0..<32]), s: Data(bytes[32..<64]), recoveryID: UInt8(recoveryID))
        }

        /// Parses TRON's 65-byte r || s || v, accepting v in 0...3 (java-tron, tronpy) or 27...30 (tronweb).
        public init(rsv: Data) throws(Secp256k1.Error) {
            guard rsv.count == 65 else { throw .invalidSignature }
            let bytes = Array(rsv)
            var v = Int(bytes[64])
            if v >= 27 { v -= 27 }
            try self.init(compact: Data(bytes[0..<64]), recoveryID: v)
        }

        /// r || s (64 bytes).
        public var compact: Data { r + s }

        /// r || s || v with v = recovery id (0/1), as java-tron and tronpy emit.
        public var rsv: Data { compact + Data([recoveryID]) }

        /// r || s || (recovery id + 27), the tronweb / Bitcoin-message convention.
        public var rsvOffset27: Data { compact + Data([recoveryID + 27]) }

        /// True when s ≤ n/2 (the canonical form every signer here emits).
        public var isLowS: Bool { Array(s).lexicographicallyPrecedes(Secp256k1.halfOrder) || Array(s) == Secp256k1.halfOrder }

        /// Recovers the signing public key for a 32-byte hash.
        public func recoverPublicKey(hash: Data) throws(Secp256k1.Error) -> PublicKey {
            guard hash.count == 32 else { throw .invalidHashLength(hash.count) }
            var sig = secp256k1_ecdsa_recoverable_signature()
            let compact = Array(self.compact)
            guard secp256k1_ecdsa_recoverable_signature_parse_compact(secp256k1Context, &sig, compact, Int32(recoveryID)) == 1 else {
                throw .invalidSignature
            }
            var pubkey = secp256k1_pubkey()
            guard secp256k1_ecdsa_recover(secp256k1Context, &pubkey, &sig, Array(hash)) == 1 else { throw .recoveryFailed }
            return PublicKey(pubkey)
        }
    }
}
