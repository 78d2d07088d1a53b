import BigInt
import Foundation
import GatewayAPI
import GatewayCore
import GatewayRuntime
import GatewayServices
import GatewayTesting
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import PostgresNIO
import Testing

@Suite struct AdminAPITests {
    @Test func bearerTokensDecisionsAndTheAudit() async throws {
        try await withAPI { f, client in
            let token = try await f.db.transaction { c in try await AdminTokens.create(name: "ops-alice", actor: "test", on: c, logger: log) }
            func call(_ method: HTTPRequest.Method, _ path: String, token: String? = token, body: String? = nil) async throws -> (Int, JSONValue?) {
                var headers: HTTPFields = [:]
                if let token { headers[.authorization] = "Bearer \(token)" }
                return try await client.execute(uri: path, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) }) { r in
                    (Int(r.status.code), try? JSONValue.parse(String(buffer: r.body)))
                }
            }
            #expect(try await call(.get, "/admin/withdrawals", token: nil).0 == 401)
            #expect(try await call(.get, "/admin/withdrawals", token: "gwa_" + String(repeating: "0", count: 64)).0 == 401)
            #expect(try await call(.get, "/admin/withdrawals", token: f.keyA).0 == 401, "a merchant key is not an admin token")

            for id in ["a", "b"] {
                let env = Client.java.envelope(body: Client.java.body([
                    ("merchantId", .int(f.merchantA)), ("mainCoinType", .string("195")), ("coinType", .string(Vectors.usdtTRC20)),
                    ("address", .string(Vectors.foreignTron)), ("amount", .string("3")), ("callUrl", callURL), ("businessId", .string(id)),
                ]), key: f.keyA)
                #expect(try await client.post("/mch/withdraw", env).code == 200)
            }
            let (status, list) = try await call(.get, "/admin/withdrawals?merchant=\(f.merchantA)")
            #expect(status == 200)
            guard case .array(let rows)? = list, rows.count == 2, case .number(let idText)? = rows[1]["id"], let id = Int64(idText) else {
                Issue.record("list: \(String(describing: list))"); return
            }
            #expect(try await call(.get, "/admin/withdrawals/\(id)").1?["businessId"] == .string("a"))
            #expect(try await call(.post, "/admin/withdrawals/\(id)/approve", body: "{}").0 == 409, "people decide only what waits in review")
            // The review worker's part: both go to people (version 2).
            try await f.db.transaction { c in
                for w in [id, id + 1] { _ = try await Withdrawals.sendToReview(w, reason: "test", on: c, logger: log) }
            }
            let viewer = try await f.db.transaction { c in try await AdminTokens.create(name: "viewer", reviewLevel: 0, actor: "test", on: c, logger: log) }
            let (forbidden, why) = try await call(.post, "/admin/withdrawals/\(id)/reject", token: viewer, body: #"{"reason": "x"}"#)
            #expect(forbidden == 403 && "\(String(describing: why))".contains("viewer may decide up to level 0"), "a reviewer decides only up to their level")
            #expect(try await call(.get, "/admin/withdrawals/999999").0 == 404)
            #expect(try await call(.get, "/admin/withdrawals/x").0 == 400)
            #expect(try await call(.post, "/admin/withdrawals/\(id)/reject", body: "{}").0 == 422, "a rejection needs a reason")
            #expect(try await call(.post, "/admin/withdrawals/\(id)/approve", body: #"{"version": 7}"#).0 == 409, "stale version")
            let (short, refusal) = try await call(.post, "/admin/withdrawals/\(id)/approve", body: #"{"version": 2}"#)
            #expect(short == 409 && "\(String(describing: refusal))".contains("overdraw"), "no balance: the approval says so and changes nothing")
            #expect(try await f.count("SELECT count(*) FROM gateway.ledger_entries") == 0)
            // 5 USDT arrive (as a confirmed deposit would credit them); now 3 can be reserved.
            let usdt = try #require(f.coins["tron.USDT"]).id
            try await f.db.transaction { c in
                try await Ledger.post([LedgerTransfer(reason: "deposit", ref: "test", legs: [
                    LedgerLeg(merchantID: nil, coinID: usdt, kind: LedgerAccountKind.chain, amount: -5_000_000),
                    LedgerLeg(merchantID: f.merchantA, coinID: usdt, kind: LedgerAccountKind.available, amount: 5_000_000),
                ])], on: c, logger: log)
            }
            let (ok, approved) = try await call(.post, "/admin/withdrawals/\(id)/approve", body: #"{"version": 2}"#)
            #expect(try await f.count("SELECT balance::int8 FROM gateway.ledger_accounts WHERE merchant_id = \(f.merchantA) AND kind = 'available'") == 2_000_000)
            #expect(try await f.count("SELECT balance::int8 FROM gateway.ledger_accounts WHERE merchant_id = \(f.merchantA) AND kind = 'reserved'") == 3_000_000)
            #expect(try await f.count("SELECT count(*) FROM gateway.jobs WHERE stage = 'autopay' AND ref = \("withdrawal:\(id)")") == 1, "payment enqueued with the approval")
            #expect(try await f.count("SELECT count(*) FROM gateway.callbacks WHERE trade_type = 2 AND trade_id = \(id) AND status = 1") == 1)
            #expect(ok == 200 && approved?["state"] == .string("approved") && approved?["version"] == .number("3"))
            #expect(try await call(.post, "/admin/withdrawals/\(id)/reject", body: #"{"reason": "late"}"#).0 == 409, "already decided")
            #expect(try await call(.post, "/admin/withdrawals/\(id + 1)/reject", body: #"{"reason": "destination on deny list"}"#).1?["state"] == .string("rejected"))
            #expect(try await f.count("SELECT count(*) FROM gateway.callbacks WHERE trade_type = 2 AND trade_id = \(id + 1) AND status = 2") == 1)
            #expect(try await f.count("SELECT count(*) FROM gateway.audit_log WHERE actor = 'admin:ops-alice' AND action LIKE 'withdrawal.%'") == 2)
            #expect(try await call(.get, "/admin/merchants").1.map { if case .array(let a) = $0 { return a.count } else { return 0 } } == 2)

            // Callbacks: list and resend.
            try await f.db.transaction { c in
                try await c.query("""
                    INSERT INTO gateway.callbacks (merchant_id, trade_type, trade_id, status, url, payload, webhook_id, state, attempts, last_error)
                    VALUES (\(f.merchantA), 2, \(id), 3, 'http://127.0.0.1:9999/callback', 'body=x', 'msg_1', 'dead', 30, 'HTTP 500')
                    """, logger: log)
            }
            let (_, callbacks) = try await call(.get, "/admin/callbacks?state=dead")
            guard case .array(let cbs)? = callbacks, case .number(let cbID)? = cbs.first?["id"] else { Issue.record("\(String(describing: callbacks))"); return }
            #expect(try await call(.post, "/admin/callbacks/\(cbID)/resend").0 == 200)
            #expect(try await f.count("SELECT count(*) FROM gateway.callbacks WHERE state = 'pending' AND status = 3") == 1, "the resent one is pending again")
            #expect(try await f.count("SELECT count(*) FROM gateway.jobs WHERE stage = 'callback' AND ref = \("callback:\(cbID)")") == 1)
            #expect(try await f.count("SELECT count(*) FROM gateway.audit_log WHERE action = 'callback.resend'") == 1)

            // Disabled tokens stop working.
            try await f.db.transaction { c in try await AdminTokens.disable(name: "ops-alice", actor: "test", on: c, logger: log) }
            #expect(try await call(.get, "/admin/merchants").0 == 401)
        }
    }

    @Test func theOpenAPIDocumentMatchesTheRoutes() async throws {
        try await withAPI { f, client in
            let doc = try await client.execute(uri: "/openapi.json", method: .get) { r in try JSONValue.parse(String(buffer: r.body)) }
            guard case .object(let paths)? = doc["paths"] else { Issue.record("no paths"); return }
            var documented = Set<String>()
            for (path, item) in paths {
                guard case .object(let ops) = item else { continue }
                for (method, _) in ops { documented.insert("\(method.uppercased()) \(path)") }
            }
            var served = Set(MerchantEndpoint.allCases.map { "POST \($0.rawValue)" })
            for path in ["/admin/merchants", "/admin/withdrawals", "/admin/withdrawals/{id}", "/admin/callbacks"] { served.insert("GET \(path)") }
            for path in ["/admin/withdrawals/{id}/approve", "/admin/withdrawals/{id}/reject", "/admin/callbacks/{id}/resend"] { served.insert("POST \(path)") }
            for path in ["/openapi.json", "/healthz", "/metrics"] { served.insert("GET \(path)") }
            #expect(documented == served, "documented but not served: \(documented.subtracting(served)); served but not documented: \(served.subtracting(documented))")
            // Each documented route answers (not 404) on the router.
            for route in served {
                let parts = route.split(separator: " ")
                let uri = String(parts[1]).replacingOccurrences(of: "{id}", with: "1")
                let status = try await client.execute(uri: uri, method: parts[0] == "GET" ? .get : .post, body: ByteBuffer(string: "{}")) { Int($0.status.code) }
                #expect(status != 404 || uri.hasPrefix("/admin/"), "\(route) answered 404")
            }
        }
    }

    @Test func liveOverRealHTTP() async throws {
        try await TestDatabase.withDatabase { db in
            let f = try await APIFixture.make(db)
            try await f.app.test(.live) { client in
                let r = try await client.post("//mch/address/create", Client.go.envelope(body: Client.go.body([
                    ("merchantId", .string(String(f.merchantA))), ("mainCoinType", .int(195)), ("callUrl", callURL),
                ]), key: f.keyA))
                #expect(r.status == 200 && r.code == 200 && r.data?["address"] == .string(Vectors.tronAddresses[0]), "\(r.raw)")
                let health = try await client.execute(uri: "/healthz", method: .get) { String(buffer: $0.body) }
                #expect(health.hasPrefix("ok\n") && health.contains("database: writing to 127.0.0.1:"), "\(health)")
            }
        }
    }
}
