/// `application/x-www-form-urlencoded` (WHATWG): what callbacks carry. Byte-wise both ways, since a
/// busy callback worker encodes, and a merchant decodes, four fields per callback.
public enum FormEncoding {
    private static let hex = Array("0123456789ABCDEF".utf8)

    /// Unreserved characters (`A–Z a–z 0–9 - . _ *`) as they are, space as `+`, every other byte of
    /// the UTF-8 as `%XX`.
    public static func encode(_ s: String) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(s.utf8.count + s.utf8.count / 2)
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "*"):
                out.append(b)
            case UInt8(ascii: " "): out.append(UInt8(ascii: "+"))
            default: out += [UInt8(ascii: "%"), hex[Int(b >> 4)], hex[Int(b & 0x0F)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// `+` as space and `%XX` as its byte; a `%` not followed by two hex digits stays as it is.
    /// Bytes that are not UTF-8 become U+FFFD.
    public static func decode<S: StringProtocol>(_ s: S) -> String {
        let bytes = Array(s.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            if b == UInt8(ascii: "+") {
                out.append(UInt8(ascii: " "))
            } else if b == UInt8(ascii: "%"), i + 2 < bytes.count, let hi = nibble(bytes[i + 1]), let lo = nibble(bytes[i + 2]) {
                out.append(hi << 4 | lo)
                i += 2
            } else {
                out.append(b)
            }
            i += 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The pairs of a form body, later keys winning.
    public static func parse(_ raw: String) -> [String: String] {
        var out: [String: String] = [:]
        for pair in raw.utf8.split(separator: UInt8(ascii: "&")) {
            let kv = pair.split(separator: UInt8(ascii: "="), maxSplits: 1, omittingEmptySubsequences: false)
            let key = decode(Substring(kv[0]))
            out[key] = kv.count > 1 ? decode(Substring(kv[1])) : ""
        }
        return out
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
