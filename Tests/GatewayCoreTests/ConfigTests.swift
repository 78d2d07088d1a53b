import Foundation
import GatewayCore
import Testing

@Suite struct ConfigTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test func committedWorkersYmlLoadsWithEveryStage() throws {
        let c = try GatewayConfig.load(path: Self.root.appendingPathComponent("workers.yml").path, environment: [:])
        #expect(c.database.port == 24329)
        #expect(c.database.host == "127.0.0.1")
        #expect(Set(c.stages.keys) == Set(Stage.allCases))
        #expect(c.worker(.callback).backoff == BackoffPolicy(base: .seconds(15), factor: 2, cap: .seconds(3600)))
        #expect(c.worker(.review).metricsListen == ListenAddress(host: "127.0.0.1", port: 9101))
        #expect(c.review.levels.map(\.name) == ["operations", "finance"])
    }

    func error(_ yaml: String, env: [String: String] = [:]) -> ConfigError? {
        do {
            _ = try GatewayConfig.parse(yaml: yaml, environment: env)
            return nil
        } catch let e as ConfigError {
            return e
        } catch {
            Issue.record("unexpected error \(error)")
            return nil
        }
    }

    @Test func reviewRulesAreRead() throws {
        let c = try GatewayConfig.parse(yaml: """
            review:
              auto_approve_up_to: { usdt: "1000", ETH: 0.5 }
              deny: [TLng7RobC5jcNtw1XPxoyMiiifEksYEosp]
              merchants:
                "300001": { auto_approve_up_to: { USDT: "5000" } }
            """, environment: [:])
        #expect(c.review.limit(symbol: "USDT", merchant: 300002) == "1000")
        #expect(c.review.limit(symbol: "usdt", merchant: 300001) == "5000")
        #expect(c.review.limit(symbol: "ETH", merchant: 300001) == "0.5", "a symbol the merchant does not override falls back")
        #expect(c.review.limit(symbol: "TRX", merchant: 300001) == nil)
        #expect(c.review.deny == ["TLng7RobC5jcNtw1XPxoyMiiifEksYEosp"])
    }

    @Test func reviewLevelsAndRulesAreReadWithPerMerchantOverrides() throws {
        let c = try GatewayConfig.parse(yaml: """
            review:
              four_eyes_above: { USDT: "10000" }
              daily_limit_per_merchant: { USDT: "50000", ETH: "10" }
              daily_limit_per_address: { USDT: "20000" }
              max_per_address_per_hour: 5
              new_destination_to_people: true
              allow: [TUEZSdKsoDHQMeZwihtdoBiN46zxhGWYdH]
              levels:
                - { name: operations, sla: 30m }
                - { name: finance, sla: 2h }
              merchants:
                "300001": { daily_limit_per_merchant: { USDT: "1000" }, max_per_address_per_hour: 0, new_destination_to_people: no }
            """, environment: [:])
        let r = c.review
        #expect(r.levels == [ReviewLevel(name: "operations", sla: .seconds(1800)), ReviewLevel(name: "finance", sla: .seconds(7200))])
        #expect(r.amountRule(\.fourEyesAbove, symbol: "usdt", merchant: 300001) == "10000")
        #expect(r.amountRule(\.dailyLimitPerMerchant, symbol: "USDT", merchant: 300001) == "1000", "the merchant's own limit")
        #expect(r.amountRule(\.dailyLimitPerMerchant, symbol: "ETH", merchant: 300001) == "10", "a coin the merchant does not list falls back")
        #expect(r.amountRule(\.dailyLimitPerMerchant, symbol: "USDT", merchant: 300002) == "50000")
        #expect(r.amountRule(\.dailyLimitPerAddress, symbol: "TRX", merchant: 300002) == nil)
        #expect(r.maxPerAddressPerHour(merchant: 300002) == 5 && r.maxPerAddressPerHour(merchant: 300001) == nil, "0 turns it off")
        #expect(r.newDestinationToPeople(merchant: 300002) && !r.newDestinationToPeople(merchant: 300001))
        #expect(r.allow == ["TUEZSdKsoDHQMeZwihtdoBiN46zxhGWYdH"])
        #expect(try GatewayConfig.parse(yaml: "review: {}\n").review.levels == ReviewRulesConfig.defaultLevels)
    }

    @Test func reviewConfigErrorsNameTheKey() {
        #expect(error("review:\n  levels: []\n")?.key == "review.levels")
        #expect(error("review:\n  levels: [{ name: ops }]\n")?.key == "review.levels[0].sla")
        #expect(error("review:\n  levels: [{ name: ops, sla: 100ms }]\n")?.key == "review.levels[0].sla")
        #expect(error("review:\n  levels: [{ name: ops, sla: 1m }, { name: ops, sla: 2m }]\n")?.key == "review.levels[1].name")
        #expect(error("review:\n  levels: [{ name: ops, sla: 1m, owner: bob }]\n")?.key == "review.levels[0].owner")
        #expect(error("review:\n  four_eyes_above: { USDT: many }\n")?.key == "review.four_eyes_above.USDT")
        #expect(error("review:\n  daily_limit_per_address: 100\n")?.key == "review.daily_limit_per_address")
        #expect(error("review:\n  max_per_address_per_hour: -1\n")?.key == "review.max_per_address_per_hour")
        #expect(error("review:\n  new_destination_to_people: sometimes\n")?.key == "review.new_destination_to_people")
        #expect(error("review:\n  allow: TUEZSdKsoDHQMeZwihtdoBiN46zxhGWYdH\n")?.key == "review.allow")
        #expect(error("review:\n  merchants:\n    \"300001\": { daily_limit_per_merchant: { USDT: x } }\n")?.key
                == "review.merchants.300001.daily_limit_per_merchant.USDT")
        #expect(error("review:\n  merchants:\n    \"300001\": { levels: [] }\n")?.key == "review.merchants.300001.levels")
    }

    @Test func unknownKeysAreNamed() {
        #expect(error("databse:\n  url: postgres://x@h/db\n")?.key == "databse")
        #expect(error("stages:\n  review:\n    lease_time: 5s\n")?.key == "stages.review.lease_time")
        #expect(error("stages:\n  review:\n    backoff: { base: 1s, cap: 1m, jitter: full }\n")?.key == "stages.review.backoff.jitter")
        let e = error("stages:\n  reveiw:\n    lease: 5s\n")
        #expect(e?.key == "stages.reveiw")
        #expect(e?.description.contains("review") == true)
    }

    @Test func wrongTypesAndValuesAreNamed() {
        #expect(error("notifications:\n  webhook_url: ftp://hooks.example.com/x\n")?.key == "notifications.webhook_url")
        #expect(error("notifications:\n  webhok_url: https://hooks.example.com/x\n")?.key == "notifications.webhok_url")
        #expect(error("notifications:\n  entered_review: maybe\n")?.key == "notifications.entered_review")
        #expect((try? GatewayConfig.parse(yaml: "notifications:\n  entered_review: false\n", environment: [:]))?.notifications.enteredReview == false)
        #expect((try? GatewayConfig.parse(yaml: "notifications: {}\n", environment: [:]))?.notifications.enteredReview == true)
        #expect(error("api:\n  cache_ttl: 2m\n")?.key == "api.cache_ttl")
        #expect(error("review:\n  auto_approve_up_to: { USDT: lots }\n")?.key == "review.auto_approve_up_to.USDT")
        #expect(error("review:\n  deny: TLng7RobC5jcNtw1XPxoyMiiifEksYEosp\n")?.key == "review.deny")
        #expect(error("review:\n  merchants:\n    acme: { auto_approve_up_to: { USDT: 1 } }\n")?.key == "review.merchants.acme")
        #expect(error("chains:\n  tron: { kind: tron, node_url: http://n, confirmations: 1, block_time: 3s, scan_from: soon }\n")?.key == "chains.tron.scan_from")
        #expect(error("stages:\n  review:\n    concurrency: many\n")?.key == "stages.review.concurrency")
        #expect(error("stages:\n  review:\n    concurrency: 0\n")?.key == "stages.review.concurrency")
        #expect(error("stages:\n  review:\n    lease: 10\n")?.key == "stages.review.lease")
        #expect(error("stages:\n  review:\n    backoff: { base: 1m, cap: 1s }\n")?.key == "stages.review.backoff.cap")
        #expect(error("stages:\n  review: [1, 2]\n")?.key == "stages.review")
        #expect(error("database:\n  url: mysql://x@h/db\n")?.key == "database.url")
        #expect(error("database:\n  url: postgres://x@h/db?sslmode=maybe\n")?.key == "database.url")
        #expect(error("log_level: loud\n")?.key == "log_level")
        #expect(error("api:\n  listen: localhost\n")?.key == "api.listen")
        #expect(error("api:\n  listen: 127.0.0.1:99999\n")?.key == "api.listen")
        #expect(error("database:\n  pool_size: 1\n  pool_size: 2\n")?.description.contains("pool_size") == true)
        #expect(error("stages:\n  review:\n    lease:\n      - 1s\n")?.key == "stages.review.lease")
    }

    @Test func missingRequiredValueIsNamed() {
        // An empty YAML value for a key whose value must be given reads as absent.
        #expect(error("stages:\n  review:\n    metrics_listen: ''\n")?.key == "stages.review.metrics_listen")
    }

    @Test func environmentOverridesTheDatabase() throws {
        let yaml = "database:\n  url: postgres://file@filehost:1111/filedb\n"
        let c = try GatewayConfig.parse(yaml: yaml, environment: [
            "DATABASE_URL": "postgres://urluser:s3cret@urlhost:2222/urldb?sslmode=require",
            "POSTGRES_PORT": "3333", "POSTGRES_DB": "envdb",
        ])
        #expect(c.database.host == "urlhost")
        #expect(c.database.port == 3333)
        #expect(c.database.user == "urluser")
        #expect(c.database.password == "s3cret")
        #expect(c.database.database == "envdb")
        #expect(c.database.tls == .require)
        #expect(!c.database.redactedDescription.contains("s3cret"))
        #expect(error(yaml, env: ["POSTGRES_PORT": "port"])?.key == "POSTGRES_PORT")
    }

    @Test func emptyFileGivesDefaults() throws {
        let c = try GatewayConfig.parse(yaml: "")
        #expect(c.worker(.sweep) == WorkerConfig())
        #expect(c.api.listen.port == 8080)
    }

    @Test func durations() {
        #expect(DurationText.parse("250ms") == .milliseconds(250))
        #expect(DurationText.parse("30s") == .seconds(30))
        #expect(DurationText.parse("5m") == .seconds(300))
        #expect(DurationText.parse("1h") == .seconds(3600))
        #expect(DurationText.parse("7d") == .seconds(7 * 86400))
        for bad in ["", "s", "10", "1.5s", "-1s", "1 h", "1w", "ms"] { #expect(DurationText.parse(bad) == nil, "\(bad)") }
        #expect(DurationText.format(.seconds(3600)) == "1h")
        #expect(DurationText.format(.milliseconds(1500)) == "1500ms")
    }

    @Test func libpqConnectionStringQuotesValues() {
        let c = DatabaseConfig(host: "h", port: 5, user: "o'brien", password: "p\\w", database: "d b")
        #expect(c.libpqConnectionString.contains("user='o\\'brien'"))
        #expect(c.libpqConnectionString.contains("password='p\\\\w'"))
        #expect(c.libpqConnectionString.contains("dbname='d b'"))
    }
}

@Suite struct BackoffTests {
    @Test func fullJitterStaysWithinBounds() {
        let p = BackoffPolicy(base: .seconds(15), factor: 2, cap: .seconds(3600))
        var rng = SystemRandomNumberGenerator()
        for attempt in 1...40 {
            let ceiling = p.ceiling(attempt: attempt)
            let expected = min(3600.0, 15.0 * pow(2.0, Double(attempt - 1)))
            #expect(ceiling == .milliseconds(Int64(expected * 1000)), "attempt \(attempt)")
            var sawAboveHalf = false
            for _ in 0..<200 {
                let d = p.delay(attempt: attempt, using: &rng)
                #expect(d >= .zero && d <= ceiling)
                if d > ceiling / 2 { sawAboveHalf = true }
            }
            #expect(sawAboveHalf, "jitter should spread over the whole range")
        }
        #expect(p.ceiling(attempt: 10_000) == .seconds(3600))
    }

    @Test func ceilingIsMonotonic() {
        let p = BackoffPolicy(base: .milliseconds(100), factor: 1.5, cap: .seconds(60))
        var last = Duration.zero
        for a in 1...100 {
            let c = p.ceiling(attempt: a)
            #expect(c >= last)
            last = c
        }
    }
}
