import BigInt
import Foundation
import GatewayConsole
import GatewayCore
import GatewayRuntime
import GatewayServices
import GatewayTesting
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import PostgresNIO
import Testing

@Suite struct ConsoleSignInTests {
    @Test func passwordAndTOTPMakeASessionCookieThatIsHttpOnlyAndStrict() async throws {
        try await withConsole { f, client in
            try await f.user("alice", .reviewer, level: 1)
            var b = Browser(client)
            let before = try await b.get("/queue")
            #expect(before.status == 303 && before.location?.hasPrefix("/signin?next=") == true, "signed out: to the sign-in page")
            let page = try await b.signIn(f, "alice")
            #expect(page.status == 303 && page.location == "/queue")
            let setCookie = try #require(page.headers[.setCookie])
            #expect(setCookie.contains("HttpOnly") && setCookie.contains("SameSite=Strict") && !setCookie.contains("Secure"), "\(setCookie)")
            let queue = try await b.get("/queue")
            #expect(queue.status == 200 && queue.body.contains("Review queue") && queue.body.contains("alice · reviewer, level 1"))
            #expect(try await f.count("SELECT count(*) FROM gateway.console_sessions") == 1)
            #expect(try await f.count("SELECT count(*) FROM gateway.console_sessions WHERE token_hash = \(b.cookie ?? "")") == 0, "only the token's hash is stored")
            #expect(try await f.count("SELECT count(*) FROM gateway.audit_log WHERE action = 'console.sign_in' AND actor = 'console:alice'") == 1)

            // Sign-out ends the session: the same cookie no longer works.
            let out = try await b.post("/signout", [])
            #expect(out.status == 303 && out.location == "/signin")
            #expect(try await b.get("/queue").status == 303)
        }
    }

    @Test func secureCookieBehindTLS() async throws {
        try await withConsole(configure: { $0.console.secureCookies = true }) { f, client in
            try await f.user("alice", .viewer)
            var b = Browser(client)
            let page = try await b.signIn(f, "alice")
            #expect(page.headers[.setCookie]?.contains("Secure") == true)
        }
    }

    @Test func wrongPasswordWrongOrReusedCodeAndDisabledUsersAreRefusedAndRecorded() async throws {
        try await withConsole { f, client in
            try await f.user("bob", .reviewer, level: 1)
            var b = Browser(client)
            let wrong = try await b.signIn(f, "bob", password: "not the password")
            #expect(wrong.status == 401 && wrong.body.contains("Wrong name, password or code.") && b.cookie == nil)
            #expect(try await b.signIn(f, "bob", code: "000000").status == 401)
            let unknown = try await b.post("/signin", [("name", "nobody"), ("password", ConsoleFixture.password), ("code", "123456")])
            #expect(unknown.status == 401 && unknown.body.contains("Wrong name, password or code."), "an unknown name reads as any other failure")
            // A good code works once.
            let code = try await f.code("bob")
            #expect(try await b.signIn(f, "bob", code: code).status == 303)
            var other = Browser(client)
            #expect(try await other.signIn(f, "bob", code: code).status == 401, "a TOTP code is good once")
            let reasons = try await f.db.withConnection { c in
                var out: [String] = []
                for try await r in try await c.query("SELECT reason FROM gateway.console_sign_ins WHERE NOT ok ORDER BY id", logger: log).decode(String.self) {
                    out.append(r)
                }
                return out
            }
            #expect(reasons.contains("wrong password") && reasons.contains("unknown user") && reasons.contains("wrong or reused TOTP code"), "\(reasons)")

            // Disabling ends the sessions and refuses sign-in.
            try await f.db.transaction { c in try await ConsoleAccounts.disable(name: "bob", actor: "test", on: c, logger: log) }
            #expect(try await b.get("/queue").status == 303, "the session died with the user")
            var again = Browser(client)
            #expect(try await again.signIn(f, "bob").status == 401)
        }
    }

    @Test func failedSignInsAreRateLimited() async throws {
        try await withConsole(configure: { $0.console.signInFailures = 3 }) { f, client in
            try await f.user("carol", .viewer)
            var b = Browser(client)
            for _ in 0..<3 { #expect(try await b.signIn(f, "carol", password: "guess guess guess").status == 401) }
            let limited = try await b.signIn(f, "carol")
            #expect(limited.status == 429 && limited.body.contains("Too many failed sign-ins") && b.cookie == nil,
                    "the right password is refused too while the limit holds")
            #expect(try await f.count("SELECT count(*) FROM gateway.console_sign_ins WHERE name = 'carol' AND reason = 'rate limited'") == 1)
        }
    }

    @Test func idleSessionsEnd() async throws {
        try await withConsole { f, client in
            try await f.user("dave", .viewer)
            var b = Browser(client)
            try await b.signIn(f, "dave")
            #expect(try await b.get("/queue").status == 200)
            _ = try await f.db.transaction { c in
                try await c.query("UPDATE gateway.console_sessions SET last_seen = now() - interval '31 minutes'", logger: log)
            }
            #expect(try await b.get("/queue").status == 303, "idle past console.idle_timeout (30m)")
            #expect(try await f.count("SELECT count(*) FROM gateway.console_sessions") == 0)
        }
    }
}

@Suite struct ConsoleSecurityTests {
    @Test func crossSiteAndHeaderlessPostsAreRefusedAndNothingChanges() async throws {
        try await withConsole { f, client in
            try await f.user("alice", .reviewer, level: 2)
            let id = try await f.pending("5")
            var b = Browser(client)
            try await b.signIn(f, "alice")
            let (_, version) = try await f.state(id)
            let form = [("version", "\(version)"), ("comment", "")]
            let crossSite = try await b.post("/withdrawals/\(id)/approve", form, site: "cross-site")
            #expect(crossSite.status == 403 && crossSite.body.contains("cross-site"))
            #expect(try await b.post("/withdrawals/\(id)/approve", form, site: "same-site").status == 403, "a sibling subdomain is not us")
            #expect(try await b.post("/withdrawals/\(id)/approve", form, site: nil).status == 403, "neither Sec-Fetch-Site nor Origin")
            #expect(try await b.post("/withdrawals/\(id)/approve", form, site: nil, origin: "http://evil.example").status == 403)
            #expect(try await f.state(id).0 == "pending_review", "nothing changed")
            #expect(try await f.state(id).0 == "pending_review", "nothing changed")
            // Without Sec-Fetch-Site, an Origin equal to our own is accepted (browsers that do not send it).
            let ok = try await b.post("/withdrawals/\(id)/approve", form, site: nil, origin: "http://localhost")
            #expect(ok.status == 303)
            #expect(try await f.state(id).0 == "approved")
        }
    }

    @Test func pagesCarryACSPWithoutInlineScript() async throws {
        try await withConsole { f, client in
            try await f.user("alice", .reviewer, level: 1)
            let id = try await f.pending("5")
            var b = Browser(client)
            #expect(try await b.get("/signin").headers[.contentSecurityPolicy]?.contains("script-src 'self'") == true)
            try await b.signIn(f, "alice")
            for path in ["/queue", "/withdrawals/\(id)", "/pipeline"] {
                let page = try await b.get(path)
                #expect(page.status == 200, "\(path)")
                let csp = page.headers[.contentSecurityPolicy] ?? ""
                #expect(csp.contains("default-src 'none'") && csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "\(path): \(csp)")
                #expect(page.headers[.xFrameOptions] == "DENY" && page.headers[.cacheControl] == "no-store")
                // Every <script> loads a file; no inline handlers.
                let scripts = page.body.components(separatedBy: "<script").dropFirst()
                #expect(scripts.allSatisfy { $0.hasPrefix(" src=\"/static/console.js\"") }, "\(path)")
                #expect(!page.body.contains("onclick=") && !page.body.contains("onerror="), "\(path)")
            }
            let js = try await b.get("/static/console.js")
            #expect(js.status == 200 && js.headers[.contentType]?.hasPrefix("text/javascript") == true && js.body.contains("requestSubmit"))
            #expect(js.body.split(separator: "\n").count <= 300, "the script stays small")
        }
    }

    @Test func hostileMerchantTextIsEscapedInPagesAndDefusedInCSV() async throws {
        try await withConsole { f, client in
            try await f.user("alice", .reviewer, level: 1)
            let remark = #"<script>alert("r")</script><img src=x onerror=alert(1)>"#
            let bid = #""><svg onload=alert(2)>=cmd|' /C calc'!A0"#
            let id = try await f.pending("7", businessID: bid, remark: remark)
            var b = Browser(client)
            try await b.signIn(f, "alice")
            for path in ["/queue", "/withdrawals/\(id)", "/queue/rows?tab=needs_me", "/queue?businessId=\(Browser.enc(bid))&address=%3Cb%3E"] {
                let page = try await b.get(path)
                #expect(page.status == 200, "\(path)")
                #expect(!page.body.contains("<script>alert") && !page.body.contains("<img src=x") && !page.body.contains("<svg") && !page.body.contains("<b>"),
                        "\(path) must not carry the text as markup")
            }
            let queue = try await b.get("/queue")
            #expect(queue.body.contains("&lt;script&gt;alert(&quot;r&quot;)&lt;/script&gt;"), "shown, escaped")
            #expect(queue.body.contains("&quot;&gt;&lt;svg onload=alert(2)&gt;"))
            let csv = try await b.get("/queue.csv?tab=pending")
            #expect(csv.status == 200 && csv.headers[.contentType]?.hasPrefix("text/csv") == true)
            #expect(csv.body.contains(#""""><svg onload=alert(2)>=cmd|' /C calc'!A0""#), "quotes doubled")
            // A cell starting with = is defused with a leading quote.
            let evil = try await f.pending("8", businessID: "=HYPERLINK(\"http://x\")")
            _ = evil
            let csv2 = try await b.get("/queue.csv?tab=pending")
            #expect(csv2.body.contains(#""'=HYPERLINK(""http://x"")""#), "\(csv2.body)")
        }
    }
}

@Suite struct ConsoleQueueTests {
    @Test func needsMeFirstThenBySLADeadline() async throws {
        try await withConsole { f, client in
            try await f.user("alice", .reviewer, level: 1)
            try await f.user("bob", .reviewer, level: 2)
            let late = try await f.pending("10", deadlineIn: 3000)
            let soon = try await f.pending("11", deadlineIn: 60)
            let overdue = try await f.pending("12", deadlineIn: -120)
            let high = try await f.pending("13", level: 2, deadlineIn: 30)  // level 2: not alice's
            let mine = try await f.pending("14", fourEyes: true, deadlineIn: 10)  // alice gives its first approval: not hers any more
            var a = Browser(client)
            try await a.signIn(f, "alice")
            let (_, v) = try await f.state(mine)
            #expect(try await a.post("/withdrawals/\(mine)/approve", [("version", "\(v)"), ("code", try await f.code("alice"))]).location
                    == "/withdrawals/\(mine)?done=first_approval")

            let page = try await a.get("/queue")
            let order = [overdue, soon, late].map { page.body.offset(of: "id=\"w-\($0)\"") }
            #expect(order == order.sorted() && order.allSatisfy { $0 < Int.max }, "needs me: by deadline, overdue first")
            #expect(page.body.offset(of: "id=\"w-\(high)\"") == Int.max && page.body.offset(of: "id=\"w-\(mine)\"") == Int.max, "not alice's to decide")
            #expect(page.body.contains("overdue 2m"))
            #expect(page.body.contains(#"id="tab-needs_me" class="tab active">Needs me <span class="count">3</span>"#))
            #expect(page.body.contains(#"id="tab-pending" class="tab">All waiting <span class="count">5</span>"#))
            #expect(page.body.contains(#"id="tab-second" class="tab">2nd approval <span class="count">1</span>"#))
            #expect(page.body.contains(#"id="tab-level-2" class="tab">L2 finance <span class="count">1</span>"#))

            // All waiting: needs-me rows first, then the others by deadline.
            let all = try await a.get("/queue?tab=pending")
            let allOrder = [overdue, soon, late, mine, high].map { all.body.offset(of: "id=\"w-\($0)\"") }
            #expect(allOrder == allOrder.sorted(), "\(allOrder)")
            #expect(all.body.contains("1 of 2 — alice"), "four eyes shown on the row")

            // Bob (level 2) needs: the level-2 one and the four-eyes second approval too.
            var bb = Browser(client)
            try await bb.signIn(f, "bob")
            let bobs = try await bb.get("/queue")
            let bobOrder = [overdue, mine, high, soon, late].map { bobs.body.offset(of: "id=\"w-\($0)\"") }
            #expect(bobOrder == bobOrder.sorted(), "\(bobOrder)")
        }
    }

    @Test func longListsArePagedWithTheFilterKept() async throws {
        try await withConsole(configure: { $0.console.pageSize = 10 }) { f, client in
            try await f.user("alice", .reviewer, level: 1)
            var ids: [Int64] = []
            for i in 0..<12 { ids.append(try await f.pending("\(i + 1)", deadlineIn: 600 + i * 10)) }
            var b = Browser(client)
            try await b.signIn(f, "alice")
            let first = try await b.get("/queue?tab=pending&min=1")
            #expect(first.body.contains("1–10 of 12") && first.body.contains("href=\"/queue?tab=pending&amp;min=1&amp;page=2\" id=\"next\""))
            #expect(first.body.contains("id=\"w-\(ids[9])\"") && !first.body.contains("id=\"w-\(ids[10])\""))
            let second = try await b.get("/queue?tab=pending&min=1&page=2")
            #expect(second.body.contains("11–12 of 12") && second.body.contains("id=\"previous\"") && !second.body.contains("id=\"next\""))
            #expect(second.body.contains("data-refresh=\"/queue/rows?tab=pending&amp;min=1&amp;page=2\""), "the refresh stays on the page")
            let fragment = try await b.get("/queue/rows?tab=pending&min=1&page=2")
            #expect(fragment.body.contains("id=\"w-\(ids[11])\"") && !fragment.body.contains("id=\"w-\(ids[0])\""))
            #expect(second.body.contains("id=\"w-\(ids[10])\"") && second.body.contains("id=\"w-\(ids[11])\"") && !second.body.contains("id=\"w-\(ids[0])\""))
        }
    }

    @Test func filtersAreKeptInTheURLAndNarrowTheList() async throws {
        try await withConsole { f, client in
            try await f.user("alice", .reviewer, level: 2)
            let small = try await f.pending("5", businessID: "order-small")
            let big = try await f.pending("5000", to: Vectors.tronDestinations[1], businessID: "order-big", rule: "daily_limit_per_merchant")
            let beta = try await f.pending("50", merchant: f.beta, businessID: "beta-1")
            let eth = try await f.pending("60", coin: f.usdtEth, to: Vectors.ethDestination, businessID: "eth-1")
            let l2 = try await f.pending("70", businessID: "l2", level: 2)
            var b = Browser(client)
            try await b.signIn(f, "alice")
            func ids(_ query: String) async throws -> Set<Int64> {
                let page = try await b.get("/queue?\(query)")
                #expect(page.status == 200, "\(query)")
                return Set([small, big, beta, eth, l2].filter { page.body.contains("id=\"w-\($0)\"") })
            }
            #expect(try await ids("tab=pending") == [small, big, beta, eth, l2])
            #expect(try await ids("tab=pending&merchant=\(f.beta)") == [beta])
            #expect(try await ids("tab=pending&coin=ethereum.USDT") == [eth])
            #expect(try await ids("tab=pending&min=50&max=70") == [beta, eth, l2])
            #expect(try await ids("tab=pending&min=1000") == [big])
            #expect(try await ids("tab=pending&address=\(Vectors.tronDestinations[1].lowercased())") == [big], "addresses compare without case")
            #expect(try await ids("tab=pending&businessId=order-small") == [small])
            #expect(try await ids("tab=pending&level=2") == [l2])
            #expect(try await ids("tab=pending&rule=daily_limit_per_merchant") == [big])
            #expect(try await ids("tab=pending&state=approved").isEmpty)
            #expect(try await ids("tab=pending&flag=new_destination").count == 5)
            let bad = try await b.get("/queue?tab=pending&min=1e9&merchant=x")
            #expect(bad.status == 200 && bad.body.contains("min amount must be a number") && bad.body.contains("merchant must be a merchant id"))
            // The filter stays in the links: tabs, CSV and the refresh fragment carry it.
            let page = try await b.get("/queue?tab=pending&merchant=\(f.beta)&min=10")
            #expect(page.body.contains("href=\"/queue.csv?tab=pending&amp;merchant=\(f.beta)&amp;min=10\""))
            #expect(page.body.contains("data-refresh=\"/queue/rows?tab=pending&amp;merchant=\(f.beta)&amp;min=10\""))
            #expect(page.body.contains("href=\"/queue?tab=done&amp;merchant=\(f.beta)&amp;min=10\""))
            let csv = try await b.get("/queue.csv?tab=pending&merchant=\(f.beta)")
            #expect(csv.body.split(separator: "\r\n").count == 2 && csv.body.contains("\"beta-1\""))

            // After approval: paying tab, then txid search finds it.
            let (_, v) = try await f.state(small)
            #expect(try await b.post("/withdrawals/\(small)/approve", [("version", "\(v)")]).status == 303)
            let header = try await b.get("/queue").body
            #expect(header.contains("id=\"hotbar\"") && header.contains("tron USDT 0 · approved, unpaid 5") && header.contains("<strong>short</strong>"),
                    "the hot wallet against approved-unpaid, in the queue's header")
            _ = try await f.db.transaction { c in
                try await c.query("UPDATE gateway.withdrawals SET state = 'broadcast', tx_hash = 'abc123' WHERE id = \(small)", logger: log)
            }
            #expect(try await ids("tab=paying") == [small])
            #expect(try await ids("tab=paying&txid=abc123") == [small])
            #expect(try await ids("tab=stuck").isEmpty)
            _ = try await f.db.transaction { c in
                try await c.query("UPDATE gateway.withdrawals SET updated_at = now() - interval '1 hour' WHERE id = \(small)", logger: log)
            }
            #expect(try await ids("tab=stuck") == [small], "unchanged past console.stuck_after")
        }
    }
}

@Suite struct ConsoleDecisionTests {
    @Test func decisionPageShowsWhatIsNeededToDecide() async throws {
        try await withConsole(configure: { $0.console.usdRates = ["USDT": "1.25"] }) { f, client in
            try await f.user("alice", .reviewer, level: 1)
            // The destination was paid before by another merchant.
            let earlier = try await f.pending("3", merchant: f.beta)
            _ = try await f.db.transaction { c in
                try await c.query("UPDATE gateway.withdrawals SET state = 'confirmed', tx_hash = 'feed' WHERE id = \(earlier)", logger: log)
            }
            let id = try await f.pending("1234.5", remark: "payout for June", rule: "new_destination")
            var b = Browser(client)
            try await b.signIn(f, "alice")
            let page = try await b.get("/withdrawals/\(id)")
            #expect(page.status == 200)
            #expect(page.body.contains("1234.5 USDT") && page.body.contains("1234500000 base units"))
            #expect(page.body.contains("≈ 1,543.12 USD"), "the configured rate beside the amount, rounded down to the cent")
            #expect(try await b.get("/queue").body.contains("≈ 1,543.12 USD"))
            #expect(page.body.contains("new_destination: rule said so"), "the rule and its words")
            #expect(page.body.contains("first payout of this merchant there"))
            #expect(page.body.contains("confirmed payouts there: 1") && page.body.contains("other merchants paying it: Beta Games"))
            #expect(page.body.contains("Level 1 (ops)") && page.body.contains("left"))
            #expect(page.body.contains("approved, unpaid 0 USDT"))
            #expect(page.body.contains("id=\"approve-form\"") && page.body.contains("id=\"reject-form\"") && !page.body.contains("id=\"approve-code\""))
            #expect(page.body.contains("name=\"version\" value=\"2\""))
            #expect(page.body.contains("callback status 0"), "timeline: callbacks")
        }
    }

    @Test func afterApprovalThePaymentIsShownWithItsReplacementsAndNoManualSend() async throws {
        try await withConsole { f, client in
            try await f.user("alice", .reviewer, level: 1)
            let id = try await f.pending("25")
            var b = Browser(client)
            try await b.signIn(f, "alice")
            #expect(try await b.post("/withdrawals/\(id)/approve", [("version", "2")]).status == 303)
            // As autopay and chain-worker would leave it: signed, replaced once on its nonce, the replacement mined at 100.
            _ = try await f.db.transaction { c in
                try await c.query("""
                    INSERT INTO gateway.outgoing_txs (chain, purpose, ref_id, coin_id, from_address, to_address, amount, nonce, tx_hash, raw, state)
                    VALUES ('tron', 'withdrawal', \(id), \(f.usdtTron.id), 'Thot', 'Tdest', 25000000, 7, 'aaa111', '\\x00'::bytea, 'replaced')
                    """, logger: log)
                try await c.query("""
                    INSERT INTO gateway.outgoing_txs (chain, purpose, ref_id, coin_id, from_address, to_address, amount, nonce, tx_hash, raw, state, replaces,
                                                      block_height)
                    SELECT 'tron', 'withdrawal', \(id), \(f.usdtTron.id), 'Thot', 'Tdest', 25000000, 7, 'bbb222', '\\x00'::bytea, 'mined', max(id), 100
                    FROM gateway.outgoing_txs
                    """, logger: log)
                try await c.query("INSERT INTO gateway.chain_scanners (chain, scanned_height) VALUES ('tron', 101)", logger: log)
                try await c.query("UPDATE gateway.withdrawals SET state = 'broadcast', tx_hash = 'bbb222' WHERE id = \(id)", logger: log)
            }
            let page = try await b.get("/withdrawals/\(id)")
            #expect(page.body.contains("id=\"payment\"") && page.body.contains("<code id=\"txhash\">bbb222</code>"))
            #expect(page.body.contains("<li class=\"reached\">broadcast</li>") && page.body.contains("<li class=\"reached\">confirming"), "2 blocks deep")
            #expect(page.body.contains("<li class=\"\">confirmed</li>"), "not confirmed yet")
            #expect(page.body.contains("aaa111") && page.body.contains("replaced") && page.body.contains("signed (replacement)"), "replacement history")
            #expect(!page.body.contains("approve-form") && !page.body.contains("reject-form"), "nothing to decide, and no manual send or mark-paid")
            #expect(!page.body.lowercased().contains("mark as paid") && !page.body.lowercased().contains("send now"))
        }
    }

    @Test func aStaleFormSaysWhoDecidedAndChangesNothing() async throws {
        try await withConsole { f, client in
            try await f.user("alice", .reviewer, level: 1)
            try await f.user("bob", .reviewer, level: 1)
            let id = try await f.pending("20")
            let (_, version) = try await f.state(id)
            var a = Browser(client), b = Browser(client)
            try await a.signIn(f, "alice")
            try await b.signIn(f, "bob")
            // Both loaded the page at `version`; alice approves first.
            #expect(try await a.post("/withdrawals/\(id)/approve", [("version", "\(version)")]).location == "/withdrawals/\(id)?done=approved")
            let late = try await b.post("/withdrawals/\(id)/reject", [("version", "\(version)"), ("reason", "looks odd")])
            #expect(late.status == 409 && late.body.contains("Already decided by alice at ") && late.body.contains("(approved; now approved)"), "\(late.body)")
            #expect(try await f.state(id).0 == "approved")
            #expect(try await f.count("SELECT count(*) FROM gateway.withdrawal_decisions WHERE withdrawal_id = \(id) AND actor LIKE 'console:%'") == 1)
            // A second click of alice's own: the same answer.
            let twice = try await a.post("/withdrawals/\(id)/approve", [("version", "\(version)")])
            #expect(twice.status == 409 && twice.body.contains("Already decided by alice"))
            #expect(try await f.count("SELECT count(*) FROM gateway.jobs WHERE stage = 'autopay' AND ref = \("withdrawal:\(id)")") == 1, "paid once")
            // A rejection needs a reason.
            let other = try await f.pending("21")
            let noReason = try await a.post("/withdrawals/\(other)/reject", [("version", "2"), ("reason", "  ")])
            #expect(noReason.status == 422 && noReason.body.contains("A rejection needs a reason"))
            #expect(try await a.post("/withdrawals/\(other)/reject", [("version", "2"), ("reason", "denied")]).location == "/withdrawals/\(other)?done=rejected")
            #expect(try await f.state(other).0 == "rejected")
        }
    }

    @Test func fourEyesNeedTwoPeopleAndATOTPStepUp() async throws {
        try await withConsole { f, client in
            try await f.user("alice", .reviewer, level: 1)
            try await f.user("bob", .reviewer, level: 1)
            let id = try await f.pending("9000", fourEyes: true)
            var a = Browser(client), b = Browser(client)
            try await a.signIn(f, "alice")
            try await b.signIn(f, "bob")
            let page = try await a.get("/withdrawals/\(id)")
            #expect(page.body.contains("0 of 2 — four eyes") && page.body.contains("id=\"approve-code\""), "the step-up field is shown")
            // No code, or a wrong one: refused, nothing changed.
            let noCode = try await a.post("/withdrawals/\(id)/approve", [("version", "2")])
            #expect(noCode.status == 403 && noCode.body.contains("needs four eyes: enter a current code"))
            #expect(try await a.post("/withdrawals/\(id)/approve", [("version", "2"), ("code", "000000")]).status == 403)
            #expect(try await f.state(id) == ("pending_review", 2))
            // Alice's first approval.
            #expect(try await a.post("/withdrawals/\(id)/approve", [("version", "2"), ("code", try await f.code("alice"))]).location
                    == "/withdrawals/\(id)?done=first_approval")
            #expect(try await f.state(id) == ("pending_review", 3))
            let shown = try await a.get("/withdrawals/\(id)")
            #expect(shown.body.range(of: #"1 of 2 — alice \d\d:\d\d; you cannot be the second"#, options: .regularExpression) != nil, "four eyes shown")
            #expect(!shown.body.contains("id=\"approve-form\"") && shown.body.contains("id=\"cannot-approve\"") && shown.body.contains("id=\"reject-form\""),
                    "the first approver may reject, not approve again")
            // Alice again: four eyes enforced.
            let again = try await a.post("/withdrawals/\(id)/approve", [("version", "3"), ("code", try await f.code("alice"))])
            #expect(again.status == 409 && again.body.contains("a second, different reviewer must approve it"))
            #expect(try await f.state(id) == ("pending_review", 3))
            // Bob sees "1 of 2 — alice" without the "you" part and approves with his code.
            let bobs = try await b.get("/withdrawals/\(id)")
            #expect(bobs.body.contains("1 of 2 — alice") && !bobs.body.contains("you cannot be the second") && bobs.body.contains("Give second approval"))
            #expect(try await b.post("/withdrawals/\(id)/approve", [("version", "3")]).status == 403, "the second approval needs a code too")
            #expect(try await b.post("/withdrawals/\(id)/approve", [("version", "3"), ("code", try await f.code("bob"))]).location
                    == "/withdrawals/\(id)?done=approved")
            #expect(try await f.state(id).0 == "approved")
            #expect(try await f.count("SELECT count(*) FROM gateway.audit_log WHERE target = \("withdrawal:\(id)") AND actor IN ('console:alice', 'console:bob')") == 2)
        }
    }

    @Test func fourEyesAreByPersonAcrossTheConsoleAndGatewayctl() async throws {
        try await withConsole { f, client in
            try await f.user("alice", .reviewer, level: 1)
            let id = try await f.pending("9000", fourEyes: true)
            // alice gives the first approval through gatewayctl (cli:alice) …
            _ = try await f.db.transaction { c in
                try await Reviews.decide(id, approve: true, reason: nil, expectedVersion: nil, reviewer: Reviewer(name: "alice", level: 1), channel: "cli",
                                         on: c, logger: log)
            }
            // … and cannot give the second through the console.
            var a = Browser(client)
            try await a.signIn(f, "alice")
            let second = try await a.post("/withdrawals/\(id)/approve", [("version", "3"), ("code", try await f.code("alice"))])
            #expect(second.status == 409 && second.body.contains("a second, different reviewer"))
            #expect(try await f.state(id).0 == "pending_review")
        }
    }
}

@Suite struct ConsolePermissionTests {
    @Test func rolesDecideWhatEachUserMayDo() async throws {
        try await withConsole { f, client in
            try await f.user("vera", .viewer)
            try await f.user("otto", .auditor)
            try await f.user("lev1", .reviewer, level: 1)
            try await f.user("root", .admin)
            let l2 = try await f.pending("30", level: 2)
            let l1 = try await f.pending("31")
            var v = Browser(client), o = Browser(client), r = Browser(client), ad = Browser(client)
            try await v.signIn(f, "vera")
            try await o.signIn(f, "otto")
            try await r.signIn(f, "lev1")
            try await ad.signIn(f, "root")

            // Everyone reads the queue and the decision page; only deciders get the forms.
            for browser in [v, o, r, ad] { #expect(try await browser.get("/queue?tab=pending").status == 200) }
            let viewerPage = try await v.get("/withdrawals/\(l1)").body
            #expect(!viewerPage.contains("approve-form") && viewerPage.contains("decide no reviews"))
            #expect(try await r.get("/withdrawals/\(l1)").body.contains("approve-form"))
            #expect(try await r.get("/withdrawals/\(l2)").body.contains("This waits at level 2; you decide up to level 1."))
            // Posting anyway: refused, nothing changed.
            #expect(try await v.post("/withdrawals/\(l1)/approve", [("version", "2")]).status == 403)
            #expect(try await o.post("/withdrawals/\(l1)/reject", [("version", "2"), ("reason", "x")]).status == 403)
            #expect(try await ad.post("/withdrawals/\(l1)/approve", [("version", "2")]).status == 403, "an admin without a level decides nothing")
            let above = try await r.post("/withdrawals/\(l2)/approve", [("version", "2")])
            #expect(above.status == 403 && above.body.contains("lev1 may decide up to level 1"))
            #expect(try await v.post("/bulk", [("step", "run"), ("action", "approve"), ("item", "\(l1):2")]).status == 403)
            #expect(try await f.state(l1).0 == "pending_review")
            #expect(try await f.state(l2).0 == "pending_review")

            // The audit: auditors and admins.
            #expect(try await v.get("/audit").status == 403)
            #expect(try await r.get("/audit").status == 403)
            #expect(try await o.get("/audit").status == 200)
            #expect(try await ad.get("/audit").status == 200)
            let csv = try await o.get("/audit.csv?action=console.sign_in")
            #expect(csv.status == 200 && csv.body.contains("console:vera") && csv.body.hasPrefix("\"id\",\"at\",\"actor\""))

            // Retrying dead jobs: admins only, audited.
            let job = try await f.db.transaction { c -> Int64 in
                var id: Int64 = 0
                for try await j in try await c.query("""
                    INSERT INTO gateway.jobs (stage, kind, ref, state, died_at, last_error) VALUES ('callback', 'notify', 'x', 'dead', now(), 'boom') RETURNING id
                    """, logger: log).decode(Int64.self) { id = j }
                return id
            }
            let pipeline = try await ad.get("/pipeline")
            #expect(pipeline.body.contains("action=\"/jobs/\(job)/retry\""), "admins get the retry button")
            let viewerPipeline = try await v.get("/pipeline").body
            #expect(!viewerPipeline.contains("/retry\""))
            #expect(try await r.post("/jobs/\(job)/retry", []).status == 403)
            #expect(try await ad.post("/jobs/\(job)/retry", [("back", "/pipeline")]).location == "/pipeline?done=retried")
            #expect(try await f.count("SELECT count(*) FROM gateway.jobs WHERE id = \(job) AND state = 'ready'") == 1)
            #expect(try await f.count("SELECT count(*) FROM gateway.audit_log WHERE action = 'job.retry' AND actor = 'console:root'") == 1)
            #expect(try await ad.post("/jobs/\(job)/retry", []).status == 409, "no longer dead: nothing to retry")
        }
    }
}

@Suite struct ConsoleBulkTests {
    @Test func bulkDecidesEachItemAloneAndReportsWhatItSkipped() async throws {
        try await withConsole { f, client in
            try await f.user("alice", .reviewer, level: 1)
            try await f.user("bob", .reviewer, level: 1)
            let a = try await f.pending("1", businessID: "b-1")
            let b = try await f.pending("2", businessID: "b-2")
            let c = try await f.pending("3", businessID: "b-3")
            let eyes = try await f.pending("4", businessID: "b-4", fourEyes: true)
            var alice = Browser(client), bob = Browser(client)
            try await alice.signIn(f, "alice")
            try await bob.signIn(f, "bob")
            // Preview of the ticked rows: asks to confirm, changes nothing.
            let preview = try await alice.post("/bulk", [("step", "preview"), ("action", "approve"), ("f_tab", "pending"),
                                                          ("id", "\(a)"), ("id", "\(b)"), ("id", "\(c)"), ("id", "\(eyes)")])
            #expect(preview.status == 200 && preview.body.contains("Approve 4 withdrawal(s)?") && preview.body.contains("four eyes: will be skipped"))
            #expect(try await f.state(a).0 == "pending_review")
            // Meanwhile bob rejects c.
            #expect(try await bob.post("/withdrawals/\(c)/reject", [("version", "2"), ("reason", "no")]).status == 303)
            let run = try await alice.post("/bulk", [("step", "run"), ("action", "approve"), ("reason", ""),
                                                      ("item", "\(a):2"), ("item", "\(b):2"), ("item", "\(c):2"), ("item", "\(eyes):2")])
            #expect(run.status == 200 && run.body.contains("Bulk approve: 2 done, 2 skipped"))
            #expect(run.body.contains("already decided by bob at") && run.body.contains("four eyes: approve it on its own page"))
            #expect(try await f.state(a).0 == "approved")
            #expect(try await f.state(b).0 == "approved")
            #expect(try await f.state(c).0 == "rejected")
            #expect(try await f.state(eyes).0 == "pending_review")
            #expect(try await f.count("SELECT count(*) FROM gateway.audit_log WHERE action = 'console.bulk_approve'") == 1)

            // Bulk reject of everything matching a filter, with a reason.
            let x = try await f.pending("5", merchant: f.beta), y = try await f.pending("6", merchant: f.beta)
            let all = try await alice.post("/bulk", [("step", "preview"), ("action", "reject"), ("reason", "merchant frozen"), ("all", "1"),
                                                      ("f_tab", "pending"), ("f_merchant", "\(f.beta)")])
            #expect(all.body.contains("Reject 2 withdrawal(s)?") && all.body.contains("value=\"\(x):2\"") && all.body.contains("value=\"\(y):2\""))
            let done = try await alice.post("/bulk", [("step", "run"), ("action", "reject"), ("reason", "merchant frozen"), ("item", "\(x):2"), ("item", "\(y):2")])
            #expect(done.body.contains("Bulk reject: 2 done, 0 skipped"))
            #expect(try await alice.post("/bulk", [("step", "run"), ("action", "reject"), ("reason", ""), ("item", "\(eyes):2")]).status == 422,
                    "a bulk rejection needs a reason")
        }
    }
}

@Suite struct ConsoleConfigTests {
    @Test func theConsoleSectionIsReadAndChecked() throws {
        let c = try GatewayConfig.parse(yaml: "console:\n  listen: 127.0.0.1:9999\n  secure_cookies: true\n  idle_timeout: 10m\n")
        #expect(c.console.listen == ListenAddress(host: "127.0.0.1", port: 9999) && c.console.secureCookies && c.console.idleTimeout == .seconds(600))
        #expect(GatewayConfig().console.listen.host == "127.0.0.1", "loopback by default")
        #expect(throws: ConfigError.self) { try GatewayConfig.parse(yaml: "console:\n  idle_timeout: 2d\n") }
        #expect(throws: ConfigError.self) { try GatewayConfig.parse(yaml: "console:\n  listen: nowhere\n") }
        #expect(throws: ConfigError.self) { try GatewayConfig.parse(yaml: "console:\n  colour: blue\n") }
        #expect(try GatewayConfig.parse(yaml: "console:\n  usd_rates: { usdt: \"0.999\" }\n").console.usdRates == ["USDT": "0.999"])
        #expect(throws: ConfigError.self) { try GatewayConfig.parse(yaml: "console:\n  usd_rates: { USDT: \"0.123456789\" }\n") }
        #expect(throws: ConfigError.self) { try GatewayConfig.parse(yaml: "console:\n  usd_rates: { USDT: \"-1\" }\n") }
    }

    @Test func theCommittedWorkersYmlHasAValidConsoleSection() throws {
        let config = try GatewayConfig.load(path: TestDatabase.repositoryRoot.appendingPathComponent("workers.yml").path, environment: [:])
        #expect(config.console.listen.port == 8090 && config.console.listen.host == "127.0.0.1")
    }
}
