import BigInt
import Foundation
import GatewayCore
import Testing

@Suite struct UdunWireTests {
    static let vectors: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("shared/vectors/udun_sign.json")

    @Test func signatureVectors() throws {
        let data = try Data(contentsOf: Self.vectors)
        let root = try JSONValue.parse(Array(data))
        guard case .array(let vectors)? = root["vectors"] else { Issue.record("no vectors"); return }
        #expect(vectors.count > 3)
        for v in vectors {
            guard case .string(let body)? = v["body"], case .string(let key)? = v["key"], case .string(let nonce)? = v["nonce"],
                  case .string(let ts)? = v["timestamp"], case .string(let sign)? = v["sign"] else { Issue.record("bad vector \(v)"); continue }
            #expect(UdunSignature.sign(body: body, key: key, nonce: nonce, timestamp: ts) == sign, "\(v["name"]?.serialized ?? "")")
            let env = UdunEnvelope(timestamp: ts, nonce: nonce, sign: sign, body: body)
            #expect(UdunSignature.verify(env, key: key))
            #expect(!UdunSignature.verify(env, key: key + "x"))
        }
    }

    @Test func formEncodingBothWays() {
        let body = #"{"address":"TX a&b=c/d","amount":"1.5","memo":"é€ 😀","tag":"%41+*-._~"}"#
        let encoded = FormEncoding.encode(body)
        #expect(encoded == "%7B%22address%22%3A%22TX+a%26b%3Dc%2Fd%22%2C%22amount%22%3A%221.5%22%2C%22memo%22%3A%22%C3%A9%E2%82%AC+%F0%9F%98%80%22%2C"
                + "%22tag%22%3A%22%2541%2B*-._%7E%22%7D")
        #expect(FormEncoding.decode(encoded) == body)
        let form = FormEncoding.parse("body=\(encoded)&nonce=ab+c&sign=%zz%4&empty=&flag")
        #expect(form["body"] == body)
        #expect(form["nonce"] == "ab c")
        #expect(form["sign"] == "%zz%4")  // not a percent escape: kept as sent
        #expect(form["empty"] == "" && form["flag"] == "")
    }

    @Test func envelopeKeepsLiteralNumbersAndExactBody() throws {
        let text = #"{"timestamp":1700000000123,"nonce":"a1B2c3","sign":"ABCDEF0123456789abcdef0123456789","body":"[{\"callUrl\":\"http:\\\/\\\/x\\\/y\",\"merchantId\":300001}]"}"#
        let env = try UdunEnvelope.parse(Array(text.utf8))
        #expect(env.timestamp == "1700000000123" && env.nonce == "a1B2c3")
        #expect(env.body == #"[{"callUrl":"http:\/\/x\/y","merchantId":300001}]"#, "PHP's \\/ stays in the signed body")
        #expect(env.timestampSeconds == 1_700_000_000)
        #expect(env.sign == "abcdef0123456789abcdef0123456789")
        let fields = try UdunFields.single(fromBody: env.body)
        #expect(try fields.string("callUrl") == "http://x/y" && fields.string("merchantId") == "300001")
        #expect(throws: UdunError.self) { try UdunEnvelope.parse(Array(#"{"timestamp":1.5,"nonce":1,"sign":"abcdef0123456789abcdef0123456789","body":"[]"}"#.utf8)) }
    }

    @Test func looseFields() throws {
        let f = try UdunFields.single(fromBody: #"{"a":"","b":195,"c":"195","d":10.50,"e":true,"f":[1]}"#)
        #expect(try f.string("a") == nil && f.string("b") == "195" && f.string("c") == "195" && f.string("d") == "10.50")
        #expect(try f.bool("e") && !f.bool("zzz"))
        #expect(throws: UdunError.self) { try f.string("f") }
        #expect(throws: UdunError.self) { try UdunFields.single(fromBody: "[]") }
        #expect(throws: UdunError.self) { try UdunFields.single(fromBody: "[{},{}]") }
        #expect(throws: UdunError.self) { try UdunFields.single(fromBody: "[1]") }
    }

    @Test func jsonParsesAndWritesExactly() throws {
        let text = #"{"x":[1,-2.5e+3,0.000001,true,false,null],"u":"é\u00e9\ud83d\ude80\n","big":123456789012345678901234567890}"#
        let v = try JSONValue.parse(text)
        #expect(v["big"] == .number("123456789012345678901234567890"))
        #expect(v["u"] == .string("éé🚀\n"))
        #expect(v.serialized == #"{"x":[1,-2.5e+3,0.000001,true,false,null],"u":"éé🚀\n","big":123456789012345678901234567890}"#)
        for bad in ["", "{", "[1,]", "01", "1.", "\"\\x\"", "\"\\ud800\"", "{\"a\" 1}", "[1] 2", "nul", "\"\u{1}\""] {
            #expect(throws: JSONValue.ParseError.self, "\(bad)") { try JSONValue.parse(bad) }
        }
        #expect(throws: JSONValue.ParseError.self) { try JSONValue.parse(String(repeating: "[", count: 100) + String(repeating: "]", count: 100)) }
    }

    @Test func amounts() throws {
        #expect(try CoinAmount.parse("10", decimals: 6) == 10_000_000)
        #expect(try CoinAmount.parse("0.11", decimals: 6) == 110_000)
        #expect(try CoinAmount.parse("10.500000", decimals: 6) == 10_500_000)
        #expect(try CoinAmount.parse(".5", decimals: 2) == 50)
        #expect(try CoinAmount.parse("1.000000000000000001", decimals: 18) == BigUInt("1000000000000000001"))
        #expect(throws: CoinAmount.ParseError.tooManyDecimals(6)) { try CoinAmount.parse("0.1234567", decimals: 6) }
        #expect(throws: CoinAmount.ParseError.notPositive) { try CoinAmount.parse("0", decimals: 6) }
        #expect(throws: CoinAmount.ParseError.notPositive) { try CoinAmount.parse("-1", decimals: 6) }
        for bad in ["", "abc", "1e3", "1.", "1.2.3", " 1", "0x10", "١"] {
            #expect(throws: CoinAmount.ParseError.self, "\(bad)") { try CoinAmount.parse(bad, decimals: 6) }
        }
        #expect(CoinAmount.format(12_500_000, decimals: 6) == "12.5")
        #expect(CoinAmount.format(0, decimals: 6) == "0")
        #expect(CoinAmount.format(1, decimals: 6) == "0.000001")
        #expect(CoinAmount.format(BigUInt("1000000000000000001") as BigUInt, decimals: 18) == "1.000000000000000001")
        #expect(CoinAmount.format(7, decimals: 0) == "7")
    }

    @Test func callbackURLPolicy() {
        let strict = CallbackURLPolicy()
        let loopbackOK = CallbackURLPolicy(allowLoopback: true)
        #expect(strict.refusal(for: "https://merchant.example.com/cb") == nil)
        #expect(strict.refusal(for: "http://203.0.113.7:8080/cb") == nil)
        for bad in ["ftp://x.com/", "javascript:alert(1)", "http://127.0.0.1/", "http://localhost:80/", "http://[::1]/", "http://10.0.0.1/",
                    "http://192.168.1.1/", "http://172.20.0.1/", "http://169.254.169.254/", "http://[fe80::1]/", "http://0.0.0.0/",
                    "http://2130706433/", "http://0x7f000001/", "http://[::ffff:127.0.0.1]/", "http://user:pw@example.com/", "not a url", "http:///x"] {
            #expect(strict.refusal(for: bad) != nil, "\(bad)")
        }
        #expect(loopbackOK.refusal(for: "http://127.0.0.1:9999/cb") == nil)
        #expect(loopbackOK.refusal(for: "http://10.0.0.1/") != nil)
        #expect(loopbackOK.refusal(for: "http://169.254.1.1/") != nil, "link-local is never allowed")
    }
}
