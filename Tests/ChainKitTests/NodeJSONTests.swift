import BigInt
import ChainKit
import Foundation
import Testing

@Suite struct NodeJSONTests {
    @Test func numbersStayExact() throws {
        let v = try JSONValue.parse(
            #"{"big": 9007199254740993, "neg": -1, "frac": 1.5e3, "wei": 115792089237316195423570985008687907853269984665640564039457584007913129639935}"#
        )
        #expect(v["big"]?.int64Value == 9_007_199_254_740_993, "above 2^53, a Double would lose it")
        #expect(v["neg"]?.int64Value == -1)
        #expect(v["frac"]?.numberText == "1.5e3" && v["frac"]?.int64Value == nil)
        #expect(v["wei"]?.numberText.flatMap { BigUInt($0) } == BigUInt(1) << 256 - 1)
    }

    @Test func stringsAndRoundTrip() throws {
        let text = #"{"a":"x\"y\\z\n\u00e9\ud83d\ude00","b":[true,false,null,{}],"c":[]}"#
        let v = try JSONValue.parse(text)
        #expect(v["a"]?.stringValue == "x\"y\\z\né😀")
        #expect(v["b"]?[3]?.isEmptyObject == true)
        #expect(try JSONValue.parse(v.encoded()) == v)
        #expect(JSONValue.object(["k": .string("\u{1}")]).description == #"{"k":"\u0001"}"#)
    }

    @Test func objectEqualityIgnoresOrder() throws {
        #expect(try JSONValue.parse(#"{"a":1,"b":2}"#) == JSONValue.parse(#"{"b":2,"a":1}"#))
        #expect(try JSONValue.parse(#"{"a":1}"#) != JSONValue.parse(#"{"a":"1"}"#))
    }

    @Test func malformedInputIsRejectedWithAnOffset() {
        for bad in ["", "{", "{\"a\":}", "[1,]", "01", "1.", "\"\\x\"", "\"\u{1}\"", "nul", "{} {}", "<html>", "\"\\ud800\""] {
            #expect(throws: JSONParseError.self, "\(bad)") { try JSONValue.parse(bad) }
        }
        do {
            _ = try JSONValue.parse("<html>")
        } catch {
            #expect(error.description == "invalid JSON at byte 0: unexpected character '<'")
        }
        #expect(throws: JSONParseError.self, "deep nesting is refused") {
            try JSONValue.parse(String(repeating: "[", count: 300) + String(repeating: "]", count: 300))
        }
    }

    @Test func ethereumQuantitiesAreStrict() {
        #expect(EthHex.quantity(0 as UInt64) == "0x0")
        #expect(EthHex.quantity(1024 as UInt64) == "0x400")
        #expect(EthHex.quantity(BigUInt(10).power(18)) == "0xde0b6b3a7640000")
        #expect(EthHex.parseQuantity("0x0") == 0)
        #expect(EthHex.parseQuantity("0xDE0B6B3A7640000") == BigUInt(10).power(18))
        for bad in ["0x", "0x01", "00", "1", "0xg", "", "0x" + String(repeating: "f", count: 65)] {
            #expect(EthHex.parseQuantity(bad) == nil, "\(bad)")
        }
        #expect(EthHex.parseQuantityUInt64("0x10000000000000000") == nil, "above 64 bits")
        #expect(EthHex.parseData("0x") == Data())
        #expect(EthHex.parseData("0xabc") == nil && EthHex.parseData("abcd") == nil)
        #expect(EthHex.parseHash("0x" + String(repeating: "A", count: 64)) == "0x" + String(repeating: "a", count: 64))
        #expect(
            EthHex.parseAddress("0xdAC17F958D2ee523a2206206994597C13D831ec7")
                == AccountID(try! EVMAddress("0xdAC17F958D2ee523a2206206994597C13D831ec7"))
        )
    }

    @Test func accountIDsConvertBetweenChains() throws {
        let usdt = try TronAddress("TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t")
        let id = AccountID(usdt)
        #expect(id.hex == "a614f803b6fd780986a42c78ec9c7f77e6ded13c")
        #expect(id.tronAddress == usdt)
        #expect(AccountID(hexSuffixOf: "000000000000000000000000a614f803b6fd780986a42c78ec9c7f77e6ded13c") == id)
        #expect(AccountID(hexSuffixOf: "41a614f803b6fd780986a42c78ec9c7f77e6ded13c") == id)
        #expect(AccountID(hexSuffixOf: "a614f803") == nil)
        #expect(try ChainKind.tron.parseAddress("41a614f803b6fd780986a42c78ec9c7f77e6ded13c") == id)
        #expect(ChainKind.evm.format(id) == id.evmAddress.checksummed)
        #expect(WatchedAddresses([id]).contains(AccountID(bytes: id.bytes)!))
    }

    @Test func retryDelaysAreJitteredUnderTheCap() {
        let policy = RetryPolicy(maxAttempts: 5, baseDelay: .milliseconds(100), maxDelay: .milliseconds(1000))
        for attempt in 1...8 {
            let ceiling = min(1000, 100 << (attempt - 1))
            for _ in 0..<50 {
                let d = policy.delay(afterAttempt: attempt)
                #expect(d >= .zero && d <= .milliseconds(ceiling))
            }
        }
        #expect(Set((0..<50).map { _ in policy.delay(afterAttempt: 4) }).count > 1, "full jitter, not a fixed delay")
    }
}
