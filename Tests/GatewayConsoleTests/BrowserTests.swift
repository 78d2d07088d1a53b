import AsyncHTTPClient
import Foundation
import GatewayConsole
import GatewayCore
import GatewayRuntime
import GatewayServices
import GatewayTesting
import Hummingbird
import HummingbirdTesting
import NIOCore
import NIOHTTP1
import PostgresNIO
import Testing

/// A W3C WebDriver session on chromedriver (headless Chromium from Debian's `chromium` and
/// `chromium-driver`, which scripts/test.sh installs), spoken over HTTP with AsyncHTTPClient.
struct WebDriver {
    let http: HTTPClient
    let base: String
    let session: String

    static let elementKey = "element-6066-11e4-a52e-4f735466cecf"

    struct Failure: Error, CustomStringConvertible { var description: String }

    static func call(_ http: HTTPClient, _ method: HTTPMethod, _ url: String, _ body: JSONValue? = nil) async throws -> JSONValue {
        var request = HTTPClientRequest(url: url)
        request.method = method
        request.headers.add(name: "Content-Type", value: "application/json")
        if let body { request.body = .bytes(ByteBuffer(string: body.serialized)) }
        let response = try await http.execute(request, timeout: .seconds(60))
        let bytes = try await response.body.collect(upTo: 64 << 20)
        let value = try JSONValue.parse(Array(bytes.readableBytesView))
        guard response.status == .ok else { throw Failure(description: "WebDriver \(method) \(url): \(response.status) \(String(buffer: bytes).prefix(400))") }
        return value["value"] ?? .null
    }

    static func start(_ http: HTTPClient, port: Int) async throws -> WebDriver {
        let base = "http://127.0.0.1:\(port)"
        let caps = JSONValue.object([("capabilities", .object([("alwaysMatch", .object([
            ("browserName", .string("chrome")),
            ("goog:chromeOptions", .object([
                ("binary", .string("/usr/bin/chromium")),
                ("args", .array(["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1500,1000"].map { .string($0) })),
            ])),
        ]))]))])
        let value = try await call(http, .POST, "\(base)/session", caps)
        guard case .string(let id)? = value["sessionId"] else { throw Failure(description: "no session: \(value.serialized)") }
        return WebDriver(http: http, base: base, session: id)
    }

    func cmd(_ method: HTTPMethod, _ path: String, _ body: JSONValue? = nil) async throws -> JSONValue {
        try await Self.call(http, method, "\(base)/session/\(session)\(path)", body ?? (method == .POST ? .object([]) : nil))
    }

    func go(_ url: String) async throws { _ = try await cmd(.POST, "/url", .object([("url", .string(url))])) }

    func find(_ css: String) async throws -> String {
        let v = try await cmd(.POST, "/element", .object([("using", .string("css selector")), ("value", .string(css))]))
        guard case .string(let id)? = v[Self.elementKey] else { throw Failure(description: "no element \(css)") }
        return id
    }

    func type(_ css: String, _ text: String) async throws {
        _ = try await cmd(.POST, "/element/\(try await find(css))/value", .object([("text", .string(text))]))
    }

    func click(_ css: String) async throws { _ = try await cmd(.POST, "/element/\(try await find(css))/click") }

    /// Keys pressed with the page's body focused (the console's shortcuts).
    func press(_ keys: String) async throws {
        _ = try await script("document.activeElement && document.activeElement.blur && document.activeElement.blur(); return true")
        _ = try await cmd(.POST, "/actions", .object([("actions", .array([.object([
            ("type", .string("key")), ("id", .string("keyboard")),
            ("actions", .array(keys.flatMap { k -> [JSONValue] in
                [.object([("type", .string("keyDown")), ("value", .string(String(k)))]), .object([("type", .string("keyUp")), ("value", .string(String(k)))])]
            })),
        ])]))]))
    }

    func script(_ js: String) async throws -> JSONValue {
        try await cmd(.POST, "/execute/sync", .object([("script", .string(js)), ("args", .array([]))]))
    }

    func text(_ js: String) async throws -> String {
        if case .string(let s) = try await script(js) { return s }
        return ""
    }

    func acceptAlert() async throws { _ = try await cmd(.POST, "/alert/accept") }
    func dismissAlert() async throws { _ = try await cmd(.POST, "/alert/dismiss") }

    /// A click with Shift held (a range of checkboxes).
    func shiftClick(_ css: String) async throws {
        let element = try await find(css)
        let shift = "\u{E008}"
        _ = try await cmd(.POST, "/actions", .object([("actions", .array([
            .object([("type", .string("key")), ("id", .string("keyboard")), ("actions", .array([
                .object([("type", .string("keyDown")), ("value", .string(shift))]), .object([("type", .string("pause")), ("duration", .number("0"))]),
                .object([("type", .string("pause")), ("duration", .number("0"))]), .object([("type", .string("pause")), ("duration", .number("0"))]),
                .object([("type", .string("keyUp")), ("value", .string(shift))]),
            ]))]),
            .object([("type", .string("pointer")), ("id", .string("mouse")), ("parameters", .object([("pointerType", .string("mouse"))])), ("actions", .array([
                .object([("type", .string("pause")), ("duration", .number("0"))]),
                .object([("type", .string("pointerMove")), ("origin", .object([(Self.elementKey, .string(element))])), ("x", .number("0")), ("y", .number("0"))]),
                .object([("type", .string("pointerDown")), ("button", .number("0"))]), .object([("type", .string("pointerUp")), ("button", .number("0"))]),
            ]))]),
        ]))]))
        _ = try await cmd(.DELETE, "/actions")
    }

    /// Waits (up to `timeout`) until `js` returns true.
    func until(_ js: String, timeout: Duration = .seconds(20)) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if case .bool(true) = (try? await script(js)) ?? .null { return true }
            try await Task.sleep(for: .milliseconds(200))
        }
        return false
    }

    func screenshot(_ name: String) async throws -> URL {
        guard case .string(let b64) = try await cmd(.GET, "/screenshot"), let data = Data(base64Encoded: b64) else {
            throw Failure(description: "no screenshot")
        }
        let dir = TestDatabase.repositoryRoot.appendingPathComponent(".local/screenshots")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let url = dir.appendingPathComponent("\(name).png")
        try data.write(to: url)
        return url
    }

    func quit() async { _ = try? await Self.call(http, .DELETE, "\(base)/session/\(session)") }
}

@Suite struct ConsoleBrowserTests {
    static let chromedriver = "/usr/bin/chromedriver"

    /// A free loopback port for chromedriver (which takes no port 0).
    static func freePort() -> Int {
        for _ in 0..<50 {
            let p = Int.random(in: 20_000...60_000)
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(fd) }
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_port = in_port_t(UInt16(p).bigEndian)
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            let bound = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            if bound == 0 { return p }
        }
        return 45_123
    }

    @Test func signInApproveWithTheKeyboardBulkRejectAndSeeTheQueueChange() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.chromedriver),
                     "chromedriver missing: scripts/test.sh installs Debian's chromium and chromium-driver")
        try await TestDatabase.withDatabase { db in
            // Limits, so the decision page's screenshot shows them set against the withdrawal.
            let f = try await ConsoleFixture.make(db) {
                $0.review.rules = ReviewRuleSet(dailyLimitPerMerchant: ["USDT": "100"], dailyLimitPerAddress: ["USDT": "10"], fourEyesAbove: ["USDT": "1000"],
                                                maxPerAddressPerHour: 5)
                $0.review.autoApproveUpTo = ["USDT": "10"]
            }
            try await f.user("alice", .reviewer, level: 1)
            let first = try await f.pending("12.5", remark: "<b>not bold</b>", deadlineIn: 60)
            try await f.db.transaction { c in
                try await OperatorNotifications.enqueue("Withdrawal \(first) entered review: above the automatic approval limit", ref: "withdrawal:\(first)",
                                                        on: c, logger: log)
            }
            let bulk = [try await f.pending("1", deadlineIn: 600), try await f.pending("2", deadlineIn: 700), try await f.pending("3", deadlineIn: 800)]
            let watched = try await f.pending("4", deadlineIn: 900)
            let rejectMe = try await f.pending("5", deadlineIn: 1000)
            let app = try buildConsoleApplication(config: f.config, database: db, logger: log)
            try await app.test(.live) { client in
                let site = "http://127.0.0.1:\(try #require(client.port))"
                let port = Self.freePort()
                let driver = Process()
                driver.executableURL = URL(fileURLWithPath: Self.chromedriver)
                driver.arguments = ["--port=\(port)", "--allowed-ips=127.0.0.1"]
                driver.standardOutput = FileHandle.nullDevice
                driver.standardError = FileHandle.nullDevice
                try driver.run()
                defer {
                    // SIGKILL: chromedriver outlived terminate()'s SIGTERM, one left behind per run.
                    kill(driver.processIdentifier, SIGKILL)
                    driver.waitUntilExit()
                }
                let http = HTTPClient(eventLoopGroupProvider: .singleton)
                do {
                    var up = false
                    for _ in 0..<100 where !up {
                        up = (try? await WebDriver.call(http, .GET, "http://127.0.0.1:\(port)/status")) != nil
                        if !up { try await Task.sleep(for: .milliseconds(100)) }
                    }
                    try #require(up, "chromedriver did not answer on port \(port)")
                    let w = try await WebDriver.start(http, port: port)
                    do {
                        try await run(w, f: f, site: site, first: first, bulk: bulk, watched: watched, rejectMe: rejectMe)
                    } catch {
                        _ = try? await w.screenshot("failure")
                        await w.quit()
                        throw error
                    }
                    await w.quit()
                } catch {
                    try? await http.shutdown()
                    throw error
                }
                try await http.shutdown()
            }
        }
    }

    func run(_ w: WebDriver, f: ConsoleFixture, site: String, first: Int64, bulk: [Int64], watched: Int64, rejectMe: Int64) async throws {
        // Sign in with password and TOTP.
        try await w.go("\(site)/queue")
        #expect(try await w.until("return location.pathname === '/signin'"))
        try await w.type("#name", "alice")
        try await w.type("#password", ConsoleFixture.password)
        try await w.type("#code", try await f.code("alice"))
        try await w.click("#signin")
        #expect(try await w.until("return location.pathname === '/queue' && !!document.getElementById('rows')"), "signed in, on the queue")
        #expect(try await w.text("return document.querySelector('#w-\(first) .remark').textContent") == "<b>not bold</b>", "hostile text shown as text")
        _ = try await w.screenshot("queue")

        // ? shows the keys and hides them again; / puts the cursor in the filters.
        try await w.press("?")
        #expect(try await w.until("return !document.getElementById('help').hidden"), "? shows the help")
        try await w.press("?")
        #expect(try await w.until("return document.getElementById('help').hidden"))
        try await w.press("/")
        #expect(try await w.until("return document.activeElement && document.activeElement.id === 'f-merchant'"), "/ focuses the search")

        // Keyboard: j selects the first row (earliest deadline), a opens its approval; a again asks to confirm.
        try await w.press("j")
        #expect(try await w.until("return document.querySelector('#rows tr.current') && document.querySelector('#rows tr.current').dataset.id === '\(first)'"))
        try await w.press("a")
        #expect(try await w.until("return location.pathname === '/withdrawals/\(first)' && !!document.getElementById('approve')"))
        _ = try await w.screenshot("decision")
        #expect(try await f.state(first).0 == "pending_review", "opening the approval pays nothing")
        try await w.press("a")
        try await w.acceptAlert()
        #expect(try await w.until("return !!document.getElementById('done')"), "approved after the confirm step")
        #expect(try await f.state(first).0 == "approved")

        // Bulk: j, j, k back to the first row, x selects it, a shift-click on the third box selects the range;
        // reject with a reason, confirm, read the per-item result.
        try await w.go("\(site)/queue?tab=pending")
        #expect(try await w.until("return !!document.getElementById('pick-all')"))
        try await w.press("jjk")
        #expect(try await w.until("return document.querySelector('#rows tr.current').dataset.id === '\(bulk[0])'"), "k moved back up")
        try await w.press("x")
        try await w.shiftClick("#w-\(bulk[2]) input.pick")
        let picked = try await w.text("return Array.from(document.querySelectorAll('input.pick:checked')).map(function (b) { return b.value; }).join(',')")
        #expect(picked == bulk.map(String.init).joined(separator: ","), "x, then shift-click: the range of three")
        try await w.click("input[name=action][value=reject]")
        try await w.type("#bulk-reason", "duplicate payout")
        try await w.click("#bulk-preview")
        #expect(try await w.until("return !!document.getElementById('bulk-confirm')"))
        try await w.click("#bulk-confirm")
        #expect(try await w.until("return !!document.getElementById('bulk-results')"))
        #expect(try await w.text("return document.querySelector('h1').textContent").contains("3 done, 0 skipped"))
        for id in bulk { #expect(try await f.state(id).0 == "rejected") }

        // o opens the current row; r there puts the cursor in the reason; the rejection asks to confirm
        // (dismissed: nothing changes; accepted: rejected).
        try await w.go("\(site)/queue?tab=pending")
        #expect(try await w.until("return !!document.getElementById('w-\(rejectMe)')"))
        try await w.press("jj")
        try await w.press("o")
        #expect(try await w.until("return location.pathname === '/withdrawals/\(rejectMe)' && !!document.getElementById('reject')"), "o opened the row")
        try await w.press("r")
        #expect(try await w.until("return document.activeElement && document.activeElement.id === 'reject-reason'"), "r: the reason first")
        try await w.type("#reject-reason", "wrong network")
        try await w.click("#reject")
        try await w.dismissAlert()
        #expect(try await f.state(rejectMe).0 == "pending_review", "the confirm step dismissed: nothing changed")
        try await w.click("#reject")
        try await w.acceptAlert()
        #expect(try await w.until("return !!document.getElementById('done')"))
        #expect(try await f.state(rejectMe).0 == "rejected")

        // The queue refreshes by itself — rows and tab counts — unless paused: a colleague's decision takes
        // the row away without a reload once the refresh runs again.
        try await w.go("\(site)/queue?tab=pending")
        #expect(try await w.until("return !!document.getElementById('w-\(watched)') && !!document.getElementById('pause')"))
        #expect(try await w.text("return document.querySelector('#tab-pending .count').textContent") == "1")
        _ = try await w.script("window.__noReload = 1; return true")
        try await w.click("#pause")
        #expect(try await w.text("return document.getElementById('pause').getAttribute('aria-pressed')") == "true")
        _ = try await f.db.transaction { c in
            try await Reviews.decide(watched, approve: false, reason: "seen elsewhere", expectedVersion: nil, reviewer: Reviewer(name: "bob", level: 1),
                                     channel: "cli", on: c, logger: log)
        }
        try await Task.sleep(for: .seconds(6))
        #expect(try await w.text("return document.getElementById('w-\(watched)') ? 'there' : 'gone'") == "there", "paused: no refresh")
        try await w.click("#pause")
        #expect(try await w.until("return !document.getElementById('w-\(watched)') && window.__noReload === 1", timeout: .seconds(20)),
                "resumed: the refresh replaced the rows in place")
        #expect(try await w.until("return document.querySelector('#tab-pending .count').textContent === '0'"), "and the tab counts")
        _ = try await w.screenshot("queue-after")

        // The pipeline page: charts of the last hour drawn from history (a gap where nobody measured),
        // coloured by the stylesheet (the CSP allows no inline style), refreshed in place.
        try await f.db.transaction { c in
            try await c.query("""
                INSERT INTO gateway.job_stats (stage, minute, worker, completed)
                SELECT s, date_trunc('minute', now()) - make_interval(mins => m), 'w', (30 + 20 * sin(m / 7.0) + m % 5)::int8
                FROM unnest(ARRAY['review', 'autopay', 'callback']) s, generate_series(1, 60) m
                """, logger: log)
            try await c.query("""
                INSERT INTO gateway.pipeline_samples (kind, key, minute, value)
                SELECT 'oldest_ready', s, date_trunc('minute', now()) - make_interval(mins => m),
                       CASE WHEN s = 'callback' AND m BETWEEN 8 AND 16 THEN 40 + 12 * (16 - m) ELSE (m % 6) * 0.4 END
                FROM unnest(ARRAY['review', 'autopay', 'callback', 'chain', 'sweep']) s, generate_series(1, 60) m
                UNION ALL
                SELECT 'chain_lag', 'tron', date_trunc('minute', now()) - make_interval(mins => m), CASE WHEN m BETWEEN 30 AND 34 THEN 25 - m % 3 ELSE m % 3 END
                FROM generate_series(1, 60) m WHERE m NOT BETWEEN 20 AND 24
                """, logger: log)
            try await c.query("""
                INSERT INTO gateway.chain_scanners (chain, scanned_height, node_tip, leader, lease_until, last_scan_at)
                VALUES ('tron', 60241720, 60241722, 'chain-worker-1:4242:7', now() + interval '1 minute', now() - interval '2 seconds')
                """, logger: log)
            // Something to look at: a dead job.
            try await c.query("""
                INSERT INTO gateway.jobs (stage, kind, ref, state, attempt, died_at, last_error)
                VALUES ('sweep', 'plan', 'chain:tron', 'dead', 20, now() - interval '7 minutes', 'node: connection refused')
                """, logger: log)
        }
        try await w.go("\(site)/pipeline")
        #expect(try await w.until("return document.querySelectorAll('#pipeline figure.chart svg').length >= 11"), "5 stages × 2 charts, 1 chain")
        #expect(try await w.text("""
            var s = getComputedStyle(document.querySelector('#chart-throughput-callback path.line'));
            return s.fill + ' ' + s.strokeWidth + ' ' + (s.stroke !== 'none');
            """) == "none 1.4px true", "the stylesheet colours the chart")
        #expect(try await w.text("return String(document.querySelectorAll('#chart-lag-tron path.line')[0].getAttribute('d').split('M').length - 1)") == "2",
                "the minutes without a scanner: a gap (two runs of line)")
        let asOf = try await w.text("return document.querySelector('#pipeline > p.dim').textContent")
        _ = try await w.script("window.__noReload = 1; return true")
        #expect(try await w.until("return document.querySelector('#pipeline > p.dim').textContent !== \(JSONValue.string(asOf).serialized) && window.__noReload === 1",
                                  timeout: .seconds(15)), "the page refreshed in place")
        #expect(try await w.text("return document.querySelector('#pipeline-summary li').textContent") == "sweep: 1 dead")
        _ = try await w.screenshot("pipeline")
        _ = try await w.script("document.getElementById('charts-stages').scrollIntoView(); return true")
        _ = try await w.screenshot("pipeline-charts")
        _ = try await w.script("document.getElementById('monitor-chains').scrollIntoView(); return true")
        _ = try await w.screenshot("pipeline-chains")
    }
}
