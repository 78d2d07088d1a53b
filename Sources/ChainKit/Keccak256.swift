import Foundation

/// Keccak-256 as used by Ethereum and TRON (original Keccak padding `0x01`, not NIST SHA3-256's `0x06`).
public enum Keccak256 {
    /// Size of the digest in bytes.
    public static let digestSize = 32

    private static let rate = 136  // (1600 - 2 * 256) / 8

    private static let roundConstants: [UInt64] = [
        0x0000_0000_0000_0001, 0x0000_0000_0000_8082, 0x8000_0000_0000_808A, 0x8000_0000_8000_8000,
        0x0000_0000_0000_808B, 0x0000_0000_8000_0001, 0x8000_0000_8000_8081, 0x8000_0000_0000_8009,
        0x0000_0000_0000_008A, 0x0000_0000_0000_0088, 0x0000_0000_8000_8009, 0x0000_0000_8000_000A,
        0x0000_0000_8000_808B, 0x8000_0000_0000_008B, 0x8000_0000_0000_8089, 0x8000_0000_0000_8003,
        0x8000_0000_0000_8002, 0x8000_0000_0000_0080, 0x0000_0000_0000_800A, 0x8000_0000_8000_000A,
        0x8000_0000_8000_8081, 0x8000_0000_0000_8080, 0x0000_0000_8000_0001, 0x8000_0000_8000_8008,
    ]

    // Rotation offsets and lane permutation (pi) in the order used by the compact rho-pi loop.
    private static let rotations: [UInt64] = [1, 3, 6, 10, 15, 21, 28, 36, 45, 55, 2, 14, 27, 41, 56, 8, 25, 43, 62, 18, 39, 61, 20, 44]
    private static let piLanes: [Int] = [10, 7, 11, 17, 18, 3, 5, 16, 8, 21, 24, 4, 15, 23, 19, 13, 12, 2, 20, 14, 22, 9, 6, 1]

    /// Returns the 32-byte Keccak-256 digest of `data`.
    public static func hash<Bytes: Sequence>(_ data: Bytes) -> Data where Bytes.Element == UInt8 {
        var message = Array(data)
        // Keccak multi-rate padding: 0x01 ... 0x80 (the two may share one byte: 0x81).
        let padLength = rate - (message.count % rate)
        message.append(contentsOf: repeatElement(0, count: padLength))
        message[message.count - padLength] ^= 0x01
        message[message.count - 1] ^= 0x80

        var state = [UInt64](repeating: 0, count: 25)
        var offset = 0
        while offset < message.count {
            for lane in 0..<(rate / 8) {
                var word: UInt64 = 0
                for byte in 0..<8 {
                    word |= UInt64(message[offset + lane * 8 + byte]) << (8 * UInt64(byte))
                }
                state[lane] ^= word
            }
            permute(&state)
            offset += rate
        }

        var digest = Data(capacity: digestSize)
        for lane in 0..<4 {
            var word = state[lane]
            for _ in 0..<8 {
                digest.append(UInt8(truncatingIfNeeded: word))
                word >>= 8
            }
        }
        return digest
    }

    /// Returns the Keccak-256 digest of the UTF-8 bytes of `string`.
    public static func hash(utf8 string: String) -> Data {
        hash(Array(string.utf8))
    }

    @inline(__always)
    private static func rotl(_ x: UInt64, _ n: UInt64) -> UInt64 {
        (x << n) | (x >> (64 - n))
    }

    private static func permute(_ a: inout [UInt64]) {
        var c = [UInt64](repeating: 0, count: 5)
        for round in 0..<24 {
            // theta
            for x in 0..<5 {
                c[x] = a[x] ^ a[x + 5] ^ a[x + 10] ^ a[x + 15] ^ a[x + 20]
            }
            for x in 0..<5 {
                let d = c[(x + 4) % 5] ^ rotl(c[(x + 1) % 5], 1)
                for y in stride(from: 0, to: 25, by: 5) {
                    a[y + x] ^= d
                }
            }
            // rho and pi
            var current = a[1]
            for i in 0..<24 {
                let j = piLanes[i]
                let temp = a[j]
                a[j] = rotl(current, rotations[i])
                current = temp
            }
            // chi
            for y in stride(from: 0, to: 25, by: 5) {
                let row0 = a[y]
                let row1 = a[y + 1]
                let row2 = a[y + 2]
                let row3 = a[y + 3]
                let row4 = a[y + 4]
                a[y] = row0 ^ (~row1 & row2)
                a[y + 1] = row1 ^ (~row2 & row3)
                a[y + 2] = row2 ^ (~row3 & row4)
                a[y + 3] = row3 ^ (~row4 & row0)
                a[y + 4] = row4 ^ (~row0 & row1)
            }
            // iota
            a[0] ^= roundConstants[round]
        }
    }
}
