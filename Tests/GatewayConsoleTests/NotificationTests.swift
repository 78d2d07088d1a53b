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

@Suite struct ConsoleNotificationTests {
    @Test func publicURLIsReadAndChecked() throws {
        #expect(try GatewayConfig.parse(yaml: "console:\n  public_url: https://console.example/\n").console.publicURL == "https://console.example")
        #expect(try GatewayConfig.parse(yaml: "console:\n  public_url: http://10.0.0.5:8090/ops\n").console.publicURL == "http://10.0.0.5:8090/ops")
        #expect(try GatewayConfig.parse(yaml: "console:\n  listen: 127.0.0.1:8090\n").console.publicURL == nil, "absent: no link")
        for bad in ["ftp://console.example/", "console.example", "https://", "https://console.example/?a=1"] {
            #expect(throws: ConfigError.self, "\(bad)") { try GatewayConfig.parse(yaml: "console:\n  public_url: \"\(bad)\"\n") }
        }
    }

    /// The job payloads of queued operator notifications, oldest first.
    static func notifyPayloads(_ f: ConsoleFixture) async throws -> [String] {
        var out: [String] = []
        for try await p in try await f.db.query("SELECT payload FROM gateway.jobs WHERE kind = 'notify' ORDER BY id").decode(String.self) { out.append(p) }
        return out
    }

    @Test func notificationsCarryALinkThatOpensTheirPage() async throws {
        try await withConsole(configure: { $0.console.publicURL = "https://console.example" }) { f, client in
            try await f.user("alice", .reviewer, level: 1)
            let id = try await f.pending("7")
            try await f.db.transaction { c in
                try await OperatorNotifications.enqueue("Withdrawal \(id) escalated", ref: "withdrawal:\(id)", on: c, logger: log)
                try await OperatorNotifications.enqueue("Hot wallet short", ref: "withdrawal:\(id)", link: "/queue?tab=hot", on: c, logger: log)
                try await OperatorNotifications.enqueue("DEEP REORG on tron", ref: "chain:tron", on: c, logger: log)
            }
            let payloads = try await Self.notifyPayloads(f)
            try #require(payloads.count == 3)
            let texts = payloads.map { OperatorNotifications.deliveryText(payload: $0, consoleURL: f.config.console.publicURL) ?? "" }
            #expect(texts[0] == "Withdrawal \(id) escalated\nConsole: https://console.example/withdrawals/\(id)")
            #expect(texts[1] == "Hot wallet short\nConsole: https://console.example/queue?tab=hot")
            #expect(texts[2] == "DEEP REORG on tron\nConsole: https://console.example/pipeline")
            // Without console.public_url the text is as it was.
            #expect(OperatorNotifications.deliveryText(payload: payloads[0], consoleURL: nil) == "Withdrawal \(id) escalated")

            // Each link opens its page.
            var b = Browser(client)
            try await b.signIn(f, "alice")
            func path(_ text: String) -> String { String(text.split(separator: "\n").last!.dropFirst("Console: https://console.example".count)) }
            let decision = try await b.get(path(texts[0]))
            #expect(decision.status == 200 && decision.body.contains("<h1>Withdrawal \(id) "))
            let hot = try await b.get(path(texts[1]))
            #expect(hot.status == 200 && hot.body.contains("id=\"tab-hot\" class=\"tab active\""), "the hot-wallet-short tab, selected")
            let pipeline = try await b.get(path(texts[2]))
            #expect(pipeline.status == 200 && pipeline.body.contains("id=\"monitor-reorg_alerts\""))
        }
    }

    @Test func notificationsStayInTheTimelineAfterTheirJobIsGone() async throws {
        try await withConsole { f, client in
            try await f.user("alice", .reviewer, level: 1)
            let id = try await f.pending("7")
            try await f.db.transaction { c in
                try await OperatorNotifications.enqueue("Withdrawal \(id) waited past its SLA; escalated", ref: "withdrawal:\(id)", on: c, logger: log)
            }
            var b = Browser(client)
            try await b.signIn(f, "alice")
            let before = try await b.get("/withdrawals/\(id)")
            #expect(before.body.contains("Withdrawal \(id) waited past its SLA; escalated"))
            // Delivered jobs are deleted (and dead ones may be pruned): the record stays.
            _ = try await f.db.transaction { c in try await c.query("DELETE FROM gateway.jobs WHERE kind = 'notify'", logger: log) }
            #expect(try await f.count("SELECT count(*) FROM gateway.jobs WHERE kind = 'notify'") == 0)
            let after = try await b.get("/withdrawals/\(id)")
            #expect(after.body.contains("<tr class=\"notification\">") && after.body.contains("operators notified")
                    && after.body.contains("Withdrawal \(id) waited past its SLA; escalated"), "the notification is still in the timeline")
        }
    }
}
