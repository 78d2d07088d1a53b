import Foundation
import GatewayAPI
import GatewayCore
import GatewayRuntime
import GatewayServices
import GatewayTesting
import Hummingbird
import HummingbirdTesting
import NIOCore
import PostgresNIO
import Testing

/// Every result code of udun-protocol.md §4, and that bad input never answers 500 or writes anything.
@Suite struct CodeTests {
    func create(_ f: APIFixture, merchant: Int64? = nil, key: String? = nil, main: JSONValue = .string("195"), callUrl: JSONValue = callURL) -> String {
        Client.java.envelope(body: Client.java.body([("merchantId", .int(merchant ?? f.merchantA)), ("mainCoinType", main), ("callUrl", callUrl)]),
                             key: key ?? f.keyA)
    }

    func withdraw(_ f: APIFixture, _ fields: [(String, JSONValue)] = [], key: String? = nil) -> String {
        var base: [(String, JSONValue)] = [
            ("merchantId", .int(f.merchantA)), ("mainCoinType", .string("195")), ("coinType", .string(Vectors.usdtTRC20)),
            ("address", .string(Vectors.foreignTron)), ("amount", .string("1.5")), ("callUrl", callURL), ("businessId", .string(UUID().uuidString)),
        ]
        for (k, v) in fields {
            if let i = base.firstIndex(where: { $0.0 == k }) { base[i].1 = v } else { base.append((k, v)) }
        }
        return Client.java.envelope(body: Client.java.body(base), key: key ?? f.keyA)
    }

    @Test func everyCode() async throws {
        try await withAPI { f, client in
            func expect(_ path: String, _ envelope: String, _ code: Int, _ note: Comment? = nil, sourceLocation: SourceLocation = #_sourceLocation) async throws {
                let r = try await client.post(path, envelope)
                #expect(r.status == 200, "HTTP status for \(code)", sourceLocation: sourceLocation)
                #expect(r.code == code, "\(note?.rawValue ?? "") → \(r.raw)", sourceLocation: sourceLocation)
            }
            let ts = String(Int64(Date().timeIntervalSince1970))
            // 4001 unknown merchant, 4005 malformed, 4162 uncheckable, 4163 wrong signature.
            try await expect("/mch/address/create", create(f, merchant: 999_999), 4001)
            try await expect("/mch/address/create", Client.java.envelope(body: Client.java.body([("merchantId", .string("abc"))]), key: f.keyA), 4001)
            try await expect("/mch/address/create", "{not json", 4005)
            try await expect("/mch/address/create", "[1,2]", 4005)
            try await expect("/mch/address/create", #"{"timestamp":\#(ts),"nonce":1,"sign":"00000000000000000000000000000000","body":[]}"#, 4005, "body not a string")
            try await expect("/mch/address/create", Client.java.envelope(body: "[]", key: f.keyA), 4005, "empty array")
            try await expect("/mch/address/create", Client.java.envelope(body: "[{\"merchantId\":1},{\"merchantId\":2}]", key: f.keyA), 4005, "two elements")
            try await expect("/mch/address/create", Client.java.envelope(body: "{broken", key: f.keyA), 4005, "body not JSON")
            try await expect("/mch/address/create", Client.java.envelope(body: Client.java.body([("merchantId", .int(f.merchantA)), ("mainCoinType", .string("195"))]), key: f.keyA), 4005, "no callUrl")
            try await expect("/mch/address/create", #"{"timestamp":\#(ts),"nonce":1,"body":"[{\"merchantId\":\#(f.merchantA)}]"}"#, 4162, "no sign")
            try await expect("/mch/address/create", #"{"timestamp":\#(ts),"nonce":1,"sign":"xyz","body":"[{\"merchantId\":\#(f.merchantA)}]"}"#, 4162, "malformed sign")
            try await expect("/mch/address/create", #"{"nonce":1,"sign":"00000000000000000000000000000000","body":"[{\"merchantId\":\#(f.merchantA)}]"}"#, 4162, "no timestamp")
            try await expect("/mch/address/create", create(f, key: f.keyB), 4163, "another merchant's key")
            let good = create(f)
            try await expect("/mch/address/create", good.replacingOccurrences(of: "195", with: "196"), 4163, "tampered body")
            // 4045 unknown coin, 4176 disabled coin, 4017 no wallet, 4168 limit, -1 derivation failed.
            try await expect("/mch/address/create", create(f, main: .string("9999")), 4045)
            try await expect("/mch/address/create", create(f, merchant: f.merchantB, key: f.keyB), 4017)
            try await f.db.transaction { c in try await c.query("UPDATE gateway.merchants SET max_addresses = 1 WHERE id = \(f.merchantA)", logger: log) }
            try await expect("/mch/address/create", create(f), 200)
            try await expect("/mch/address/create", create(f), 4168)
            try await f.db.transaction { c in
                try await c.query("UPDATE gateway.merchants SET max_addresses = NULL WHERE id = \(f.merchantA)", logger: log)
                try await c.query("UPDATE gateway.wallets SET account_xpub = 'xpub-broken' WHERE chain = 'ethereum'", logger: log)
                try await c.query("UPDATE gateway.coins SET enabled = false WHERE coin_type = '195'", logger: log)
            }
            try await expect("/mch/address/create", create(f, main: .string("60")), -1)
            try await expect("/mch/address/create", create(f), 4176)
            try await f.db.transaction { c in try await c.query("UPDATE gateway.coins SET enabled = true", logger: log) }
            // callUrl checks.
            try await expect("/mch/address/create", create(f, callUrl: .string("ftp://example.com/x")), 4005)
            try await expect("/mch/address/create", create(f, callUrl: .string("http://10.1.2.3/cb")), 4005, "private network")
            try await expect("/mch/address/create", create(f, callUrl: .string("http://169.254.169.254/latest")), 4005, "link-local")
            // Withdrawal codes: 4034 decimals, 581 amount, 4183 / 596 address, 554 chain not the merchant's, 4045 unknown token.
            try await expect("/mch/withdraw", withdraw(f, [("amount", .string("1.1234567"))]), 4034)
            try await expect("/mch/withdraw", withdraw(f, [("amount", .string("0"))]), 581)
            try await expect("/mch/withdraw", withdraw(f, [("amount", .string("-5"))]), 581)
            try await expect("/mch/withdraw", withdraw(f, [("amount", .string(""))]), 581)
            try await expect("/mch/withdraw", withdraw(f, [("amount", .string("1e3"))]), 581)
            try await expect("/mch/withdraw", withdraw(f, [("address", .string("TLng7RobC5jcNtw1XPxoyMiiifEksYEos"))]), 4183)
            try await expect("/mch/withdraw/proxypay", withdraw(f, [("address", .string("0x9858EfFD232B4033E47d90003D41EC34EcaEda94"))]), 596)
            try await expect("/mch/withdraw", withdraw(f, [("coinType", .string("TXYZopYRdj2D9XRtbG411XZZ3kM5VkAeBf"))]), 4045)
            try await expect("/mch/withdraw", withdraw(f, [("merchantId", .int(f.merchantB))], key: f.keyB), 554)
            try await expect("/mch/withdraw", withdraw(f, [("amount", .number("10"))]), 200, "numeric amount")
            try await expect("/mch/withdraw", withdraw(f, [("businessId", .string(String(repeating: "x", count: 200)))]), 4005)
            // 4901 stale and future timestamps, in seconds and milliseconds.
            let now = Int64(Date().timeIntervalSince1970)
            for t in [now - 400, now + 400, (now - 400) * 1000, (now + 400) * 1000] {
                try await expect("/mch/withdraw", Client.java.envelope(body: Client.java.body([("merchantId", .int(f.merchantA))]), key: f.keyA,
                                                                    timestampOverride: .int(t)), 4901)
            }
            try await expect("/mch/withdraw", withdraw(f), 200, "a millisecond timestamp within the window")
            // 4169 disabled merchant.
            try await f.db.transaction { c in _ = try await Merchants.setActive(f.merchantB, false, actor: "test", on: c, logger: log) }
            try await expect("/mch/address/create", create(f, merchant: f.merchantB, key: f.keyB), 4169)
            // Nothing was written by any refused request: only the two accepted withdrawals and the one address.
            #expect(try await f.count("SELECT count(*) FROM gateway.withdrawals") == 2)
            #expect(try await f.count("SELECT count(*) FROM gateway.addresses") == 1)
            #expect(try await f.count("SELECT count(*) FROM gateway.jobs") == 2)
        }
    }

    @Test func rateLimitAndReplay() async throws {
        try await withAPI { f, client in
            try await f.db.transaction { c in try await c.query("UPDATE gateway.merchants SET rate_limit_per_min = 3 WHERE id = \(f.merchantA)", logger: log) }
            var codes: [Int] = []
            for _ in 0..<5 { codes.append(try await client.post("/mch/check/address", Client.php.envelope(
                body: Client.php.body([("merchantId", .int(f.merchantA)), ("mainCoinType", .int(195)), ("address", .string(Vectors.foreignTron))]), key: f.keyA)).code) }
            #expect(codes == [200, 200, 200, 4290, 4290])
            let once = Client.java.envelope(body: Client.java.body([("merchantId", .int(f.merchantB)), ("mainCoinType", .int(195)), ("address", .string(Vectors.foreignTron))]), key: f.keyB)
            #expect(try await client.post("/mch/check/address", once).code == 200)
            #expect(try await client.post("/mch/check/address", once).code == 4902)
        }
    }

    @Test func oversizedBodiesAreRefusedWithoutA500() async throws {
        try await withAPI { f, client in
            let big = Client.java.envelope(body: Client.java.body([("merchantId", .int(f.merchantA)), ("alias", .string(String(repeating: "a", count: 70_000)))]), key: f.keyA)
            let r = try await client.post("/mch/address/create", big)
            #expect(r.status == 200 && r.code == 4005 && r.message.contains("65536"))
            for junk in ["", "null", "{}", "{\"body\":\"\"}", String(repeating: "[", count: 10_000), "\u{0}\u{1}", "{\"timestamp\":1,\"nonce\":1,\"sign\":\"00000000000000000000000000000000\",\"body\":\"[{\\\"merchantId\\\":\(f.merchantA)}]\"}"] {
                let r = try await client.post("/mch/withdraw", junk)
                #expect(r.status == 200 && r.code != 200, "\(junk.prefix(40)): \(r.raw)")
            }
        }
    }

    @Test func aDisabledMerchantIsRefusedOnceTheCacheTimeHasPassed() async throws {
        try await withAPI(api: APIConfig(callbackURLs: .init(allowLoopback: true), cacheTTL: .milliseconds(300))) { f, client in
            #expect(try await client.post("/mch/withdraw", withdraw(f)).code == 200)
            try await f.db.transaction { c in _ = try await Merchants.setActive(f.merchantA, false, actor: "test", on: c, logger: log) }
            try await Task.sleep(for: .milliseconds(350))
            let r = try await client.post("/mch/withdraw", withdraw(f))
            #expect(r.code == 4169, "\(r.raw)")
            #expect(try await f.count("SELECT count(*) FROM gateway.withdrawals") == 1)
            // The one-statement withdrawal still refuses a replayed request and a repeated businessId, writing nothing.
            try await f.db.transaction { c in _ = try await Merchants.setActive(f.merchantA, true, actor: "test", on: c, logger: log) }
            try await Task.sleep(for: .milliseconds(350))
            let once = withdraw(f, [("businessId", .string("same-id"))])
            #expect(try await client.post("/mch/withdraw", once).code == 200)
            #expect(try await client.post("/mch/withdraw", once).code == 4902, "the same signed request again is a replay")
            #expect(try await client.post("/mch/withdraw", withdraw(f, [("businessId", .string("same-id"))])).code == 571)
            #expect(try await f.count("SELECT count(*) FROM gateway.withdrawals") == 2)
            #expect(try await f.count("SELECT count(*) FROM gateway.jobs") == 2)
            #expect(try await f.count("SELECT count(*) FROM gateway.request_signatures") == 2, "only accepted requests' signatures are kept")
        }
    }

    @Test func concurrentWithdrawalsCommittedTogetherKeepEachOutcome() async throws {
        try await withAPI { f, client in
            // 40 requests at once, in pairs sharing a businessId: whichever batches they fall into, one of each
            // pair is created and the other refused with 571, and every created one has its review job.
            let envelopes = (0..<40).map { i in withdraw(f, [("businessId", .string("pair-\(i / 2)"))]) }
            let codes = try await withThrowingTaskGroup(of: Int.self) { group in
                for e in envelopes { group.addTask { try await client.post("/mch/withdraw", e).code } }
                var out: [Int] = []
                for try await c in group { out.append(c) }
                return out
            }
            #expect(codes.filter { $0 == 200 }.count == 20 && codes.filter { $0 == 571 }.count == 20, "\(codes)")
            #expect(try await f.count("SELECT count(*) FROM gateway.withdrawals") == 20)
            #expect(try await f.count("SELECT count(*) FROM gateway.jobs WHERE stage = 'review'") == 20)
            #expect(try await f.count("SELECT count(*) FROM gateway.request_signatures") == 20)
            // An amount too large for NUMERIC(78,0) is refused before it reaches the database.
            #expect(try await client.post("/mch/withdraw", withdraw(f, [("amount", .string(String(repeating: "9", count: 80)))])).code == 581)
        }
    }

    @Test func oneInsertOfManyWithdrawalsReportsEachOutcomeInOrder() async throws {
        try await TestDatabase.withDatabase { db in
            let f = try await APIFixture.make(db)
            let coin = try #require(f.coins["tron.USDT"])
            func item(_ business: String, sign: String) throws -> Withdrawals.Validated {
                try Withdrawals.validate(WithdrawalRequest(merchantID: f.merchantA, mainCoinType: "195", coinType: coin.coinType, address: Vectors.foreignTron,
                                                           amount: "2", callURL: "http://127.0.0.1:9999/cb", businessID: business),
                                         coin: coin, merchantChains: ["tron"], replaySignature: sign, directory: .standard,
                                         callbackPolicy: CallbackURLPolicy(allowLoopback: true))
            }
            let first = try await db.transaction { c in
                try await Withdrawals.insert([try item("a", sign: "s1"), try item("a", sign: "s2"), try item("b", sign: "s3")], on: c, logger: log)
            }
            guard case .created = first[0], case .created = first[2] else { Issue.record("\(first)"); return }
            #expect(first[1] == .duplicateBusinessID, "the second of one businessId in one batch is a duplicate")
            let second = try await db.transaction { c in
                try await Withdrawals.insert([try item("c", sign: "s1"), try item("b", sign: "s9"), try item("d", sign: "")], on: c, logger: log)
            }
            #expect(second[0] == .replayed && second[1] == .duplicateBusinessID)
            guard case .created = second[2] else { Issue.record("\(second)"); return }
            #expect(try await f.count("SELECT count(*) FROM gateway.withdrawals") == 3)
            #expect(try await f.count("SELECT count(*) FROM gateway.jobs") == 3)
            #expect(try await f.count("SELECT count(*) FROM gateway.request_signatures") == 2, "signatures of created withdrawals only")
        }
    }
}
