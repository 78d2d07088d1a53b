import Crypto
import Foundation

/// Hash functions and MACs used across chains (SHA-256 and HMAC come from swift-crypto).
public enum Hashing {
    /// SHA-256 of `data`.
    public static func sha256<D: DataProtocol>(_ data: D) -> Data {
        Data(SHA256.hash(data: data))
    }

    /// Double SHA-256 (`sha256(sha256(data))`), used by Base58Check and Bitcoin.
    public static func sha256d<D: DataProtocol>(_ data: D) -> Data {
        sha256(sha256(data))
    }

    /// BIP340 tagged hash: `sha256(sha256(tag) || sha256(tag) || data)`.
    public static func taggedHash<D: DataProtocol>(tag: String, _ data: D) -> Data {
        let tagHash = sha256(Data(tag.utf8))
        var hasher = SHA256()
        hasher.update(data: tagHash)
        hasher.update(data: tagHash)
        hasher.update(data: data)
        return Data(hasher.finalize())
    }

    /// HASH160 = `ripemd160(sha256(data))`, the Bitcoin public-key and script hash.
    public static func hash160<D: DataProtocol>(_ data: D) -> Data {
        RIPEMD160.hash(sha256(data))
    }

    /// Keccak-256 (Ethereum flavour) of `data`.
    public static func keccak256<D: DataProtocol>(_ data: D) -> Data {
        Keccak256.hash(Array(data))
    }

    /// HMAC-SHA512 of `data` under `key`.
    public static func hmacSHA512<K: DataProtocol, D: DataProtocol>(key: K, data: D) -> Data {
        let mac = HMAC<SHA512>.authenticationCode(for: data, using: SymmetricKey(data: Data(key)))
        return Data(mac)
    }

    /// PBKDF2 with HMAC-SHA512 as the PRF (RFC 8018), as used by BIP39 to stretch a mnemonic into a seed.
    ///
    /// - Precondition: `iterations >= 1` and `keyLength >= 1`.
    public static func pbkdf2SHA512<P: DataProtocol, S: DataProtocol>(
        password: P,
        salt: S,
        iterations: Int,
        keyLength: Int
    ) -> Data {
        precondition(iterations >= 1, "PBKDF2 needs at least one iteration")
        precondition(keyLength >= 1, "PBKDF2 key length must be positive")
        // The keyed HMAC state is built once and copied for every block and iteration.
        let keyed = HMAC<SHA512>(key: SymmetricKey(data: Data(password)))
        let saltBytes = Data(salt)
        var derived = Data(capacity: keyLength)
        var blockIndex: UInt32 = 1
        while derived.count < keyLength {
            var first = keyed
            first.update(data: saltBytes)
            first.update(data: withUnsafeBytes(of: blockIndex.bigEndian) { Data($0) })
            var u = Array(first.finalize())
            var t = u
            if iterations > 1 {
                for _ in 1..<iterations {
                    var mac = keyed
                    mac.update(data: u)
                    u = Array(mac.finalize())
                    for i in 0..<t.count { t[i] ^= u[i] }
                }
            }
            derived.append(contentsOf: t.prefix(keyLength - derived.count))
            blockIndex += 1
        }
        return derived
    }
}
