import Foundation

/// BIP39 mnemonics: entropy ↔ mnemonic sentence (English wordlist) and mnemonic → 64-byte seed.
public enum BIP39 {
    /// Why a mnemonic or entropy was rejected; descriptions never contain mnemonic words.
    public enum Error: Swift.Error, Equatable, Sendable, CustomStringConvertible {
        /// Entropy must be 16, 20, 24, 28 or 32 bytes.
        case invalidEntropyLength(Int)
        /// A mnemonic must have 12, 15, 18, 21 or 24 words.
        case invalidWordCount(Int)
        /// The word at this 1-based position is not in the English wordlist (the word itself is not kept: it is part of a secret).
        case unknownWord(position: Int)
        /// All words are valid but the checksum bits do not match the entropy (a word is wrong or words are swapped).
        case checksumMismatch

        /// A human-readable reason.
        public var description: String {
            switch self {
            case .invalidEntropyLength(let n): return "entropy must be 16, 20, 24, 28 or 32 bytes, got \(n)"
            case .invalidWordCount(let n): return "a mnemonic has 12, 15, 18, 21 or 24 words, got \(n)"
            case .unknownWord(let position): return "word \(position) is not in the BIP39 English wordlist"
            case .checksumMismatch: return "mnemonic checksum mismatch: a word is wrong or out of order"
            }
        }
    }

    private static let wordIndex: [String: Int] = {
        var index: [String: Int] = [:]
        for (i, word) in englishWordlist.enumerated() { index[word] = i }
        return index
    }()

    /// Encodes 16/20/24/28/32 bytes of entropy as a 12/15/18/21/24-word mnemonic.
    public static func mnemonic(fromEntropy entropy: Data) throws(BIP39.Error) -> String {
        guard [16, 20, 24, 28, 32].contains(entropy.count) else { throw .invalidEntropyLength(entropy.count) }
        let checksumBits = entropy.count / 4
        let checksum = Hashing.sha256(entropy)[0]
        var bits: [Bool] = []
        bits.reserveCapacity(entropy.count * 8 + checksumBits)
        for byte in entropy {
            for i in (0..<8).reversed() { bits.append((byte >> UInt8(i)) & 1 == 1) }
        }
        for i in 0..<checksumBits { bits.append((checksum >> UInt8(7 - i)) & 1 == 1) }
        var words: [String] = []
        for start in stride(from: 0, to: bits.count, by: 11) {
            var index = 0
            for bit in bits[start..<(start + 11)] { index = index << 1 | (bit ? 1 : 0) }
            words.append(englishWordlist[index])
        }
        return words.joined(separator: " ")
    }

    /// Splits a mnemonic on any run of whitespace after Unicode NFKD normalisation.
    static func words(of mnemonic: String) -> [String] {
        mnemonic.decomposedStringWithCompatibilityMapping
            .split(whereSeparator: { $0.isWhitespace })
            .map(String.init)
    }

    /// Decodes a mnemonic back to its entropy, validating word count, every word and the checksum.
    public static func entropy(fromMnemonic mnemonic: String) throws(BIP39.Error) -> Data {
        let words = words(of: mnemonic)
        guard [12, 15, 18, 21, 24].contains(words.count) else { throw .invalidWordCount(words.count) }
        var bits: [Bool] = []
        bits.reserveCapacity(words.count * 11)
        for (position, word) in words.enumerated() {
            guard let index = wordIndex[word] else { throw .unknownWord(position: position + 1) }
            for i in (0..<11).reversed() { bits.append((index >> i) & 1 == 1) }
        }
        let checksumBits = words.count / 3
        let entropyBits = bits.count - checksumBits
        var entropy = Data(capacity: entropyBits / 8)
        for start in stride(from: 0, to: entropyBits, by: 8) {
            var byte: UInt8 = 0
            for bit in bits[start..<(start + 8)] { byte = byte << 1 | (bit ? 1 : 0) }
            entropy.append(byte)
        }
        let checksum = Hashing.sha256(entropy)[0]
        for i in 0..<checksumBits where bits[entropyBits + i] != ((checksum >> UInt8(7 - i)) & 1 == 1) {
            throw .checksumMismatch
        }
        return entropy
    }

    /// Validates a mnemonic (word count, words, checksum) without returning anything.
    public static func validate(mnemonic: String) throws(BIP39.Error) {
        _ = try entropy(fromMnemonic: mnemonic)
    }

    /// The 64-byte seed: PBKDF2-HMAC-SHA512(NFKD(mnemonic), "mnemonic" + NFKD(passphrase), 2048).
    ///
    /// The mnemonic is validated first and its words are re-joined with single spaces, so stray whitespace does not
    /// change the seed.
    public static func seed(fromMnemonic mnemonic: String, passphrase: String = "") throws(BIP39.Error) -> Data {
        try validate(mnemonic: mnemonic)
        let normalized = words(of: mnemonic).joined(separator: " ")
        let salt = "mnemonic" + passphrase.decomposedStringWithCompatibilityMapping
        return Hashing.pbkdf2SHA512(password: Data(normalized.utf8), salt: Data(salt.utf8), iterations: 2048, keyLength: 64)
    }

    /// Generates a new mnemonic from the system's cryptographic random source (`wordCount` of 12, 15, 18, 21 or 24).
    public static func generateMnemonic(wordCount: Int = 24) throws(BIP39.Error) -> String {
        guard [12, 15, 18, 21, 24].contains(wordCount) else { throw .invalidWordCount(wordCount) }
        var rng = SystemRandomNumberGenerator()
        let entropy = Data((0..<(wordCount * 4 / 3)).map { _ in UInt8.random(in: 0...255, using: &rng) })
        return try mnemonic(fromEntropy: entropy)
    }
}
