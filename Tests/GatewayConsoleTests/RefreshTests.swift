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

@Suite struct ConsoleRefreshTests {
    @Test func theTabCountsRefreshAndTheHotWalletHeaderIsOnEveryPage() async throws {
        try await withConsole { f, client in
            try await f.user("root", .admin, level: 1)
            let first = try await f.pending("5")
            var b = Browser(client)
            try await b.signIn(f, "root")
            let queue = try await b.get("/queue?tab=pending")
            #expect(queue.body.contains("id=\"tabs\" data-refresh=\"/queue/tabs?tab=pending\""))
            let tabs = try await b.get("/queue/tabs?tab=pending")
            #expect(tabs.status == 200 && !tabs.body.contains("<html")
                    && tabs.body.contains("id=\"tab-pending\" class=\"tab active\">All waiting <span class=\"count\">1</span>"), "\(tabs.body)")
            _ = try await f.pending("6")
            let again = try await b.get("/queue/tabs?tab=pending").body
            #expect(again.contains("id=\"tab-pending\" class=\"tab active\">All waiting <span class=\"count\">2</span>"), "a new review counted: \(again)")

            // Approve one: the hot wallet (empty) is short of it, on every page and in the header's fragment.
            let (_, v) = try await f.state(first)
            #expect(try await b.post("/withdrawals/\(first)/approve", [("version", "\(v)")]).status == 303)
            for path in ["/queue", "/withdrawals/\(first)", "/pipeline", "/audit", "/users"] {
                let page = try await b.get(path).body
                #expect(page.contains("id=\"hotbar\" data-refresh=\"/hotbar\"") && page.contains("tron USDT 0 · approved, unpaid 5") && page.contains("<strong>short</strong>"),
                        "\(path)")
            }
            let fragment = try await b.get("/hotbar")
            #expect(fragment.status == 200 && !fragment.body.contains("<html") && fragment.body.contains("approved, unpaid 5"))
            // Signed out: no header, no fragment.
            var stranger = Browser(client)
            #expect(try await stranger.get("/hotbar").status == 303)
        }
    }
}
