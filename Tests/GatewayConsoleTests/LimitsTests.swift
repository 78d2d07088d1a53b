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

@Suite struct ConsoleLimitsTests {
    @Test func decisionPageSetsTheWithdrawalAgainstEveryLimitTheRulesApply() async throws {
        try await withConsole(configure: {
            $0.review.rules = ReviewRuleSet(dailyLimitPerMerchant: ["USDT": "100"], dailyLimitPerAddress: ["USDT": "50"], fourEyesAbove: ["USDT": "1000"],
                                            maxPerAddressPerHour: 2)
            $0.review.autoApproveUpTo = ["USDT": "20"]
        }) { f, client in
            try await f.user("alice", .reviewer, level: 1)
            let address = Vectors.tronDestinations[1]
            // Alpha: 30 approved to the address, 10 approved elsewhere; Beta: 15 confirmed to it; a rejected 7 to it counts nowhere.
            let a30 = try await f.pending("30", to: address)
            let a10 = try await f.pending("10", to: Vectors.tronDestinations[2])
            let b15 = try await f.pending("15", merchant: f.beta, to: address)
            let r7 = try await f.pending("7", to: address)
            _ = try await f.db.transaction { c in
                try await c.query("UPDATE gateway.withdrawals SET state = 'approved' WHERE id IN (\(a30), \(a10))", logger: log)
                try await c.query("UPDATE gateway.withdrawals SET state = 'confirmed' WHERE id = \(b15)", logger: log)
                try await c.query("UPDATE gateway.withdrawals SET state = 'rejected' WHERE id = \(r7)", logger: log)
            }
            let id = try await f.pending("25", to: address)
            var b = Browser(client)
            try await b.signIn(f, "alice")
            let page = try await b.get("/withdrawals/\(id)").body
            let merchant = row(page, id: "limit-merchant-day")
            #expect(merchant.contains(">65 USDT<") && merchant.contains(">100 USDT<") && !merchant.contains("over"), "40 approved + 25 of 100: \(merchant)")
            let destination = row(page, id: "limit-address-day")
            #expect(destination.contains(">70 USDT<") && destination.contains(">50 USDT<") && destination.contains("<strong>over</strong>"),
                    "30 + 15 (any merchant) + 25 of 50: \(destination)")
            let velocity = row(page, id: "limit-velocity")
            #expect(velocity.contains(">3<") && velocity.contains(">2<") && velocity.contains("<strong>over</strong>"), "3 in the hour (not the rejected one): \(velocity)")
            let auto = row(page, id: "limit-auto-approve")
            #expect(auto.contains(">25 USDT<") && auto.contains(">20 USDT<") && auto.contains("<strong>over</strong>"))
            let fourEyes = row(page, id: "limit-four-eyes")
            #expect(fourEyes.contains(">1000 USDT<") && fourEyes.contains("within: one reviewer"))

            // Another merchant's usage is its own.
            let other = try await f.pending("5", merchant: f.beta, to: Vectors.tronDestinations[2])
            let betaPage = try await b.get("/withdrawals/\(other)").body
            #expect(row(betaPage, id: "limit-merchant-day").contains(">20 USDT<"), "Beta: 15 confirmed + 5")
        }
    }

    @Test func withoutRulesOnlyTheMissingAutomaticApprovalIsShown() async throws {
        try await withConsole { f, client in
            try await f.user("alice", .reviewer, level: 1)
            let id = try await f.pending("25")
            var b = Browser(client)
            try await b.signIn(f, "alice")
            let page = try await b.get("/withdrawals/\(id)").body
            #expect(row(page, id: "limit-auto-approve").contains("no automatic approval of USDT"))
            #expect(!page.contains("id=\"limit-merchant-day\"") && !page.contains("id=\"limit-velocity\"") && !page.contains("id=\"limit-four-eyes\""))
        }
    }
}
