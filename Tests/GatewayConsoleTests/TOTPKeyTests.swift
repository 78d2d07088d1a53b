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

@Suite struct ConsoleTOTPKeyTests {
    /// A key file with a random key, removed after `body`.
    static func withKeyFile(_ body: (String) async throws -> Void) async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("totp-\(UUID().uuidString).key").path
        let hex = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
        try hex.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        try await body(path)
    }

    @Test func totpSecretsAreSealedWithTheConfiguredKeyAndBoundToTheirUser() async throws {
        try await Self.withKeyFile { path in
            try await withConsole(configure: { $0.console.totpKeyFile = path }) { f, client in
                try await f.user("alice", .reviewer, level: 1)
                try await f.user("bob", .reviewer, level: 1)
                var stored = ""
                for try await s in try await f.db.query("SELECT totp_secret FROM gateway.console_users WHERE name = 'alice'").decode(String.self) { stored = s }
                #expect(stored.hasPrefix("aesgcm:") && stored.count > 60, "sealed at rest: \(stored.prefix(12))…")
                var b = Browser(client)
                #expect(try await b.signIn(f, "alice").status == 303, "the console opens it with the same key")
                // Sealed for alice: copied into bob's row it does not open.
                _ = try await f.db.transaction { c in
                    try await c.query("UPDATE gateway.console_users SET totp_secret = \(stored) WHERE name = 'bob'", logger: log)
                }
                var other = Browser(client)
                let refused = try await other.post("/signin", [("name", "bob"), ("password", ConsoleFixture.password), ("code", "123456")])
                #expect(refused.status == 401 && other.cookie == nil)
                #expect(try await f.count("SELECT count(*) FROM gateway.console_sign_ins WHERE name = 'bob' AND reason LIKE 'TOTP secret cannot be opened%'") == 1)
                // A secret stored before the key was configured still works.
                _ = try await f.db.transaction { c in
                    try await ConsoleAccounts.add(name: "carol", role: .viewer, reviewLevel: 0, password: ConsoleFixture.password, bcryptCost: 4, secrets: .plain,
                                                  actor: "test", on: c, logger: log)
                }
                var carol = Browser(client)
                #expect(try await carol.signIn(f, "carol").status == 303)
            }
        }
    }

    @Test func aNamedKeyThatIsMissingOrMalformedStopsTheConsoleAtStart() async throws {
        var config = GatewayConfig()
        config.console.totpKeyFile = "/nonexistent/console-totp.key"
        #expect(throws: ConfigError.self) { try TOTPSecretBox.load(config.console) }
        config.console.totpKeyEnv = "TEST_TOTP_KEY"
        #expect(try TOTPSecretBox.load(config.console, environment: ["TEST_TOTP_KEY": String(repeating: "ab", count: 32)]).seals, "the variable wins")
        let bad = #expect(throws: ConfigError.self) { try TOTPSecretBox.load(config.console, environment: ["TEST_TOTP_KEY": "not hex"]) }
        #expect(bad?.description.contains("console.totp_key_env") == true && bad?.description.contains("not hex") == false, "names the key, never shows it")
        #expect(try TOTPSecretBox.load(GatewayConfig().console).seals == false, "nothing named: stored as they are")
        let parsed = try GatewayConfig.parse(yaml: "console:\n  totp_key_file: keys/totp.key\n  totp_key_env: GW_TOTP\n").console
        #expect(parsed.totpKeyFile == "keys/totp.key" && parsed.totpKeyEnv == "GW_TOTP")
    }
}
