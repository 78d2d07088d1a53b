import BigInt
import Foundation
@testable import GatewayAPI
import GatewayCore
import GatewayRuntime
import GatewayServices
import GatewayTesting
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import PostgresNIO
import Testing

func withAPI(api: APIConfig = APIConfig(callbackURLs: .init(allowLoopback: true), cacheTTL: .zero),
             _ body: @escaping @Sendable (APIFixture, any TestClientProtocol) async throws -> Void) async throws {
    try await TestDatabase.withDatabase { db in
        let f = try await APIFixture.make(db, api: api)
        try await f.app.test(.router) { client in try await body(f, client) }
    }
}

let callURL = JSONValue.string("http://127.0.0.1:9999/callback")

@Suite struct MerchantAPITests {
    /// Two unique rules can refuse a wallet; the error names the one that did, and nothing is written.
    @Test func attachingAWalletTwiceSaysWhichRuleRefusedIt() async throws {
        try await TestDatabase.withDatabase { db in
            let f = try await APIFixture.make(db)
            let attach = { @Sendable (merchant: Int64, xpub: String) async -> String in
                do {
                    _ = try await db.transaction { c in
                        try await Wallets.attach(merchantID: merchant, chain: "tron", xpub: xpub, accountIndex: nil, coldAddress: nil,
                                                 directory: .standard, actor: "test", on: c, logger: log)
                    }
                    return "attached"
                } catch {
                    return "\(error)"
                }
            }
            let shared = await attach(f.merchantB, Vectors.tronXpub)
            #expect(shared.contains("already attached to another merchant's wallet on tron"), "\(shared)")
            let second = await attach(f.merchantA, Vectors.ethXpub)
            #expect(second.contains("merchant \(f.merchantA) already has a wallet on tron"), "\(second)")
            #expect(try await f.count("SELECT count(*) FROM gateway.wallets") == 2)
        }
    }

    @Test func createAddressAsEachSDKDoes() async throws {
        try await withAPI { f, client in
            // PHP 2020: coinType (not mainCoinType), numeric merchantId, seconds, numeric nonce, \/ escapes.
            let php = Client.php
            var r = try await client.post("/mch/address/create", php.envelope(
                body: php.body([("merchantId", .int(f.merchantA)), ("coinType", .int(195)), ("callUrl", callURL)]), key: f.keyA))
            #expect(r.code == 200 && r.message == "SUCCESS", "\(r.raw)")
            #expect(r.data == .object([("coinType", .number("195")), ("address", .string(Vectors.tronAddresses[0]))]))
            #expect(r.raw.contains("\"coinType\":195"), "coinType is a JSON number")
            // Go: mainCoinType a number on create, merchantId a string, empty optionals, constant nonce 1000.
            let go = Client.go
            r = try await client.post("//mch/address/create", go.envelope(body: go.body([
                ("merchantId", .string(String(f.merchantA))), ("mainCoinType", .int(60)), ("callUrl", .string("http://127.0.0.1:9999/cb?a=1&b=2")),
                ("walletId", .string("")), ("alias", .string("")),
            ]), key: f.keyA))
            #expect(r.code == 200, "\(r.raw)")
            #expect(r.data?["address"] == .string(Vectors.ethAddresses[0]))
            // Java: millisecond string timestamps, 6-char nonces, codes as strings, alias with unicode.
            let java = Client.java
            r = try await client.post("/mch/address/create", java.envelope(body: java.body([
                ("merchantId", .string(String(f.merchantA))), ("mainCoinType", .string("195")), ("callUrl", callURL),
                ("alias", .string("用户 42 — ünïcødé 🚀")), ("walletId", .string("")),
            ]), key: f.keyA))
            #expect(r.code == 200, "\(r.raw)")
            #expect(r.data?["address"] == .string(Vectors.tronAddresses[1]))
            var alias = ""
            for try await a in try await f.db.query("SELECT alias FROM gateway.addresses WHERE address = \(Vectors.tronAddresses[1])").decode(String.self) { alias = a }
            #expect(alias == "用户 42 — ünïcødé 🚀")
            var url = ""
            for try await u in try await f.db.query("SELECT call_url FROM gateway.addresses WHERE address = \(Vectors.ethAddresses[0])").decode(String.self) { url = u }
            #expect(url == "http://127.0.0.1:9999/cb?a=1&b=2", "Go's \\u0026 escapes decode to &")
        }
    }

    @Test func concurrentAddressCreationNeverSharesAnIndex() async throws {
        try await withAPI { f, client in
            let addresses = try await withThrowingTaskGroup(of: String?.self) { group in
                for _ in 0..<20 {
                    group.addTask {
                        let r = try await client.post("/mch/address/create", Client.java.envelope(
                            body: Client.java.body([("merchantId", .int(f.merchantA)), ("mainCoinType", .string("195")), ("callUrl", callURL)]), key: f.keyA))
                        if case .string(let a)? = r.data?["address"] { return a }
                        return nil
                    }
                }
                return try await group.reduce(into: [String?]()) { $0.append($1) }
            }
            #expect(addresses.compactMap { $0 }.count == 20)
            #expect(Set(addresses.compactMap { $0 }).count == 20)
            #expect(try await f.count("SELECT count(DISTINCT derivation_index) FROM gateway.addresses WHERE chain = 'tron'") == 20)
            #expect(try await f.count("SELECT max(derivation_index)::int8 FROM gateway.addresses WHERE chain = 'tron'") == 19)
            #expect(try await f.count("SELECT next_index::int8 FROM gateway.wallets WHERE chain = 'tron'") == 20)
        }
    }

    func withdrawBody(_ client: Client, _ f: APIFixture, businessId: String, amount: JSONValue = .string("12.5"),
                      address: String = Vectors.foreignTron, coinType: JSONValue = .string(Vectors.usdtTRC20),
                      remark: String = "") -> String {
        client.body([
            ("merchantId", .string(String(f.merchantA))), ("mainCoinType", .string("195")), ("coinType", coinType), ("address", .string(address)),
            ("amount", amount), ("callUrl", callURL), ("businessId", .string(businessId)), ("memo", .string("")), ("walletId", .string("")),
            ("remark", .string(remark)),
        ])
    }

    @Test func withdrawAsEachSDKDoesWritesTheRowAndItsReviewJobTogether() async throws {
        try await withAPI { f, client in
            for (n, sdk) in [Client.php, .java, .go].enumerated() {
                let r = try await client.post("/mch/withdraw", sdk.envelope(body: withdrawBody(sdk, f, businessId: "wd-\(n)", remark: "提现 ✓"), key: f.keyA))
                #expect(r.code == 200 && r.message == "SUCCESS" && r.data == nil, "\(r.raw)")
                #expect(!r.raw.contains("\"data\""), "withdraw answers without a data key")
            }
            #expect(try await f.count("SELECT count(*) FROM gateway.withdrawals WHERE amount = 12500000 AND remark = '提现 ✓'") == 3)
            #expect(try await f.count("""
                SELECT count(*) FROM gateway.withdrawals w JOIN gateway.jobs j ON j.ref = 'withdrawal:' || w.id
                WHERE j.stage = 'review' AND j.kind = 'review' AND w.state = 'received'
                """) == 3)
            #expect(try await f.count("SELECT fee::int8 FROM gateway.withdrawals LIMIT 1") == 1_000_000, "the coin's withdrawal fee is recorded")
            // Proxypay: same shape.
            let r = try await client.post("/mch/withdraw/proxypay", Client.go.envelope(body: withdrawBody(.go, f, businessId: "pp-1"), key: f.keyA))
            #expect(r.code == 200)
            #expect(try await f.count("SELECT count(*) FROM gateway.withdrawals WHERE proxypay") == 1)
        }
    }

    /// The benchmark's peer (pgbench) runs the API's own statement with one request's values in place of the array
    /// parameters: it stores the withdrawal, its review job and its replay record, as a request does.
    @Test func theBenchPeerStatementIsTheAPIStatementWithValuesInPlace() async throws {
        try await withAPI { f, _ in
            let coin = try #require(f.coins["tron.USDT"])
            let sql = Withdrawals.insertSQL(replacingParametersWith: [
                "ARRAY[\(f.merchantA)]", "ARRAY['peer-1']", "ARRAY[\(coin.id)]", "ARRAY['tron']", "ARRAY['TLng7RobC5jcNtw1XPxoyMiiifEksYEosp']",
                "ARRAY['1500000']", "ARRAY['1000000']", "ARRAY['http://127.0.0.1:9/cb']", "ARRAY['']", "ARRAY['']", "ARRAY['']", "ARRAY[false]",
                "ARRAY['sig-peer-1']",
            ])
            #expect(sql.range(of: #"\$[0-9]"#, options: .regularExpression) == nil, "every parameter is replaced")
            // Twice: the second is a replay of the first (same signature) and stores nothing more.
            var answers: [(Int64, Int64?, Bool)] = []
            for _ in 0..<2 {
                for try await row in try await f.db.query(PostgresQuery(unsafeSQL: sql)).decode((Int64, Int64?, Bool).self) { answers.append(row) }
            }
            #expect(answers.count == 2 && answers[0].1 != nil && answers[1].1 == nil && answers[1].2, "stored, then a replay: \(answers)")
            #expect(try await f.count("SELECT count(*) FROM gateway.withdrawals WHERE business_id = 'peer-1'") == 1)
            #expect(try await f.count("""
                SELECT count(*) FROM gateway.withdrawals w JOIN gateway.jobs j ON j.ref = 'withdrawal:' || w.id
                WHERE w.business_id = 'peer-1' AND j.stage = 'review'
                """) == 1)
            #expect(try await f.count("SELECT count(*) FROM gateway.request_signatures WHERE sign = 'sig-peer-1'") == 1)
        }
    }

    /// The connection dies while COMMIT runs (here: the backend is terminated during a slow deferred trigger, as a
    /// failover terminates it): the outcome is unknown, so the API reads the withdrawal back by its businessId — it is
    /// not there, so the answer is HTTP 503 "retry" — and the merchant's retry stores it once.
    @Test func aWithdrawalWhoseCommitOutcomeIsUnknownIsReadBackByItsBusinessId() async throws {
        try await withAPI { f, client in
            try await f.db.transaction { c in
                try await c.query("""
                    CREATE FUNCTION public.slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(5); RETURN NULL; END $$
                    """, logger: log)
                try await c.query("""
                    CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON gateway.withdrawals DEFERRABLE INITIALLY DEFERRED
                    FOR EACH ROW EXECUTE FUNCTION public.slow_commit()
                    """, logger: log)
            }
            let envelope = Client.go.envelope(body: withdrawBody(.go, f, businessId: "unknown-1"), key: f.keyA)
            async let answer = client.post("/mch/withdraw", envelope)
            // Terminate the backend that is committing (inside the deferred trigger's sleep).
            let killed = try await eventually(timeout: .seconds(10), every: .milliseconds(20)) {
                try await f.count("""
                    SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                    WHERE datname = current_database() AND pid <> pg_backend_pid() AND wait_event = 'PgSleep'
                    """) > 0
            }
            #expect(killed)
            let r = try await answer
            #expect(r.status == 503 && r.code == -1, "unknown, and not stored: retry (\(r.raw))")
            #expect(try await f.count("SELECT count(*) FROM gateway.withdrawals WHERE business_id = 'unknown-1'") == 0)
            try await f.db.transaction { c in try await c.query("DROP TRIGGER slow_commit ON gateway.withdrawals", logger: log) }
            let retry = try await client.post("/mch/withdraw", envelope)
            #expect(retry.code == 200, "\(retry.raw)")
            // A different amount: the same body within the same second would be a replay (4902), not a new request.
            let again = try await client.post("/mch/withdraw", Client.go.envelope(body: withdrawBody(.go, f, businessId: "unknown-1", amount: .string("13")), key: f.keyA))
            #expect(again.code == UdunCode.duplicateBusinessId.rawValue, "a second retry is 571, never a second withdrawal")
            #expect(try await f.count("SELECT count(*) FROM gateway.withdrawals WHERE business_id = 'unknown-1'") == 1)
        }
    }

    /// The other direction of an unknown commit: the rows are there, so the requests are answered as stored (and a
    /// different request that took the businessId is a duplicate); read through each withdrawal's own key.
    @Test func anUnknownCommitWhoseWithdrawalsAreStoredIsAnsweredAsStored() async throws {
        try await withAPI { f, client in
            let r = try await client.post("/mch/withdraw", Client.go.envelope(body: withdrawBody(.go, f, businessId: "stored-1"), key: f.keyA))
            #expect(r.code == 200)
            let coin = try #require(f.coins["tron.USDT"])
            func item(_ business: String, amount: String) -> Withdrawals.Validated {
                .init(merchantID: f.merchantA, businessID: business, coinID: coin.id, chain: "tron", address: "TLng7RobC5jcNtw1XPxoyMiiifEksYEosp",
                      amount: amount, fee: "1000000", callURL: "http://127.0.0.1:9999/callback", memo: "", remark: "", walletRef: "", proxypay: false,
                      sign: "")
            }
            var stored: (id: Int64, address: String, amount: String) = (0, "", "")
            for try await row in try await f.db.query(
                "SELECT id, address, amount::text FROM gateway.withdrawals WHERE business_id = 'stored-1'"
            ).decode((Int64, String, String).self) { stored = row }
            var same = item("stored-1", amount: stored.amount)
            same.address = stored.address
            let results = await WithdrawalWriter.resolve(
                [same, item("stored-1", amount: "1"), item("never-sent", amount: "5000000")],
                after: CommitOutcomeUnknown(underlying: CancellationError()), database: f.db, logger: log)
            #expect((try? results[0].get()) == .created(stored.id))
            #expect((try? results[1].get()) == .duplicateBusinessID)
            #expect(throws: CommitOutcomeUnknown.self) { try results[2].get() }
        }
    }

    @Test func aDuplicateBusinessIdChangesNothingEvenConcurrently() async throws {
        try await withAPI { f, client in
            let codes = try await withThrowingTaskGroup(of: Int.self) { group in
                for i in 0..<12 {
                    group.addTask {
                        try await client.post("/mch/withdraw", Client.java.envelope(body: withdrawBody(.java, f, businessId: "same", amount: .string("\(i + 1)")), key: f.keyA)).code
                    }
                }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(codes.filter { $0 == 200 }.count == 1)
            #expect(codes.filter { $0 == 571 }.count == 11, "\(codes)")
            #expect(try await f.count("SELECT count(*) FROM gateway.withdrawals") == 1)
            #expect(try await f.count("SELECT count(*) FROM gateway.jobs WHERE stage = 'review'") == 1)
        }
    }

    @Test func goSendsTwoRequestsInOneSecondWithTheSameNonceAndBothAreAccepted() async throws {
        try await withAPI { f, client in
            let ts = JSONValue.int(Int64(Date().timeIntervalSince1970))
            let go = Client.raw(timestamp: ts, nonce: .int(1000))
            let a = try await client.post("/mch/withdraw", go.envelope(body: withdrawBody(.go, f, businessId: "go-1"), key: f.keyA))
            let b = try await client.post("/mch/withdraw", go.envelope(body: withdrawBody(.go, f, businessId: "go-2"), key: f.keyA))
            #expect(a.code == 200 && b.code == 200, "\(a.raw) \(b.raw)")
            // The very same request again is a replay.
            let again = try await client.post("/mch/withdraw", go.envelope(body: withdrawBody(.go, f, businessId: "go-2"), key: f.keyA))
            #expect(again.code == 4902, "\(again.raw)")
            #expect(try await f.count("SELECT count(*) FROM gateway.withdrawals") == 2)
        }
    }

    @Test func checkAndExistAddress() async throws {
        try await withAPI { f, client in
            func call(_ path: String, _ merchant: Int64, _ key: String, _ address: String, main: JSONValue = .string("195")) async throws -> Reply {
                try await client.post(path, Client.java.envelope(body: Client.java.body([("merchantId", .int(merchant)), ("mainCoinType", main), ("address", .string(address))]), key: key))
            }
            var r = try await call("/mch/check/address", f.merchantA, f.keyA, Vectors.foreignTron)
            #expect(r.code == 200 && r.data == .null && r.raw.contains("\"data\":null"))
            r = try await call("/mch/check/address", f.merchantA, f.keyA, "TLng7RobC5jcNtw1XPxoyMiiifEksYEosq")
            #expect(r.code == 4183)
            r = try await call("/mch/check/address", f.merchantA, f.keyA, "0x9858effd232b4033e47d90003d41ec34ecaeda94", main: .int(60))
            #expect(r.code == 200, "all-lowercase EVM addresses are valid")
            r = try await call("/mch/check/address", f.merchantA, f.keyA, "0x9858EFFD232B4033E47d90003D41EC34EcaEda94", main: .int(60))
            #expect(r.code == 4183, "mixed case must pass EIP-55")

            _ = try await client.post("/mch/address/create", Client.java.envelope(
                body: Client.java.body([("merchantId", .int(f.merchantA)), ("mainCoinType", .string("195")), ("callUrl", callURL)]), key: f.keyA))
            r = try await call("/mch/exist/address", f.merchantA, f.keyA, Vectors.tronAddresses[0])
            #expect(r.code == 200 && r.data == .null)
            r = try await call("/mch/exist/address", f.merchantA, f.keyA, Vectors.foreignTron)
            #expect(r.code == 4184)
            r = try await call("/mch/exist/address", f.merchantB, f.keyB, Vectors.tronAddresses[0])
            #expect(r.code == 4184, "another merchant's address is not yours")
            r = try await call("/mch/exist/address", f.merchantA, f.keyA, "not-an-address")
            #expect(r.code == 4183)
        }
    }

    @Test func supportCoinsWithExactBalances() async throws {
        try await withAPI { f, client in
            try await f.db.transaction { c in
                try await c.query("""
                    INSERT INTO gateway.ledger_accounts (merchant_id, coin_id, kind, balance)
                    VALUES (\(f.merchantA), \(f.coins["tron.USDT"]!.id), 'available', 12500000),
                           (\(f.merchantA), \(f.coins["ethereum.ETH"]!.id), 'available', 1000000000000000001)
                    """, logger: log)
            }
            let body = Client.php.body([("merchantId", .int(f.merchantA)), ("showBalance", .bool(true))], array: false)
            let r = try await client.post("/mch/support-coins", Client.php.envelope(body: body, key: f.keyA))
            #expect(r.code == 200, "\(r.raw)")
            guard case .array(let coins)? = r.data else { Issue.record("no coin list: \(r.raw)"); return }
            #expect(coins.count == 4)
            let usdt = coins.first { $0["coinType"] == .string(Vectors.usdtTRC20) }
            #expect(usdt?["balance"] == .number("12.5"))
            #expect(usdt?["tokenStatus"] == .number("1") && usdt?["mainCoinType"] == .string("195") && usdt?["decimals"] == .string("6"))
            #expect(coins.first { $0["coinType"] == .string("60") }?["balance"] == .number("1.000000000000000001"), "no float rounding")
            #expect(coins.first { $0["coinType"] == .string("195") }?["balance"] == .number("0"))
            // Without showBalance every balance is 0; merchant B (no wallets) sees no coins.
            let hidden = try await client.post("/mch/support-coins", Client.go.envelope(
                body: Client.go.body([("merchantId", .string(String(f.merchantA))), ("showBalance", .bool(false))], array: false), key: f.keyA))
            #expect(hidden.raw.contains("\"balance\":0") && !hidden.raw.contains("12.5"))
            let b = try await client.post("/mch/support-coins", Client.go.envelope(
                body: Client.go.body([("merchantId", .int(f.merchantB)), ("showBalance", .bool(true))], array: false), key: f.keyB))
            #expect(b.code == 200 && b.data == .array([]))
        }
    }

    @Test func legacyBatchCreateAndTransactionQuery() async throws {
        try await withAPI { f, client in
            var r = try await client.post("/mch/address/create/batch", Client.java.envelope(body: Client.java.body([
                ("merchantId", .int(f.merchantA)), ("coinType", .string("195")), ("callUrl", callURL), ("count", .int(2)),
            ]), key: f.keyA))
            #expect(r.code == 200)
            #expect(r.data == .array(Vectors.tronAddresses.map { .object([("address", .string($0)), ("coinType", .number("195"))]) }))
            _ = try await client.post("/mch/withdraw", Client.java.envelope(body: withdrawBody(.java, f, businessId: "hist-1"), key: f.keyA))
            r = try await client.post("/mch/transaction", Client.java.envelope(body: Client.java.body([("merchantId", .int(f.merchantA))]), key: f.keyA))
            #expect(r.code == 200)
            guard case .array(let rows)? = r.data else { Issue.record("\(r.raw)"); return }
            #expect(rows.count == 1 && rows[0]["businessId"] == .string("hist-1") && rows[0]["amount"] == .string("12500000"))
            // A confirmed deposit (as chain-worker records it) appears too, as tradeType 1, unless a businessId is asked for.
            let usdt = try #require(f.coins["tron.USDT"]).id
            try await f.db.transaction { c in
                try await c.query("""
                    INSERT INTO gateway.deposits (chain, tx_hash, log_index, merchant_id, address_id, coin_id, from_address, amount, block_height,
                                                  block_hash, status, created_at)
                    SELECT 'tron', 'ab12', 0, merchant_id, id, \(usdt), 'TLng7RobC5jcNtw1XPxoyMiiifEksYEosp', 7000000, 100, 'cd34', 'confirmed',
                           now() + interval '1 second'
                    FROM gateway.addresses WHERE merchant_id = \(f.merchantA) ORDER BY id LIMIT 1
                    """, logger: log)
            }
            r = try await client.post("/mch/transaction", Client.java.envelope(body: Client.java.body([("merchantId", .int(f.merchantA))]), key: f.keyA))
            guard case .array(let both)? = r.data, both.count == 2 else { Issue.record("\(r.raw)"); return }
            #expect(both[0]["tradeType"] == .number("1") && both[0]["amount"] == .string("7000000") && both[0]["txId"] == .string("ab12"),
                    "newest first")
            r = try await client.post("/mch/transaction", Client.java.envelope(body: Client.java.body([
                ("merchantId", .int(f.merchantA)), ("businessId", .string("hist-1"))]), key: f.keyA))
            guard case .array(let one)? = r.data else { Issue.record("\(r.raw)"); return }
            #expect(one.count == 1 && one[0]["tradeType"] == .number("2"))
            r = try await client.post("/mch/transaction", Client.java.envelope(body: Client.java.body([("merchantId", .int(f.merchantB))]), key: f.keyB))
            #expect(r.data == .array([]), "merchant isolation")
        }
    }
}
