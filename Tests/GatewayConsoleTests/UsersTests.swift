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

@Suite struct ConsoleUsersTests {
    @Test func onlyAdminsSeeOrChangeUsers() async throws {
        try await withConsole { f, client in
            try await f.user("root", .admin)
            try await f.user("vera", .viewer)
            try await f.user("rita", .reviewer, level: 3)
            try await f.user("aude", .auditor)
            for name in ["vera", "rita", "aude"] {
                var b = Browser(client)
                try await b.signIn(f, name)
                #expect(try await b.get("/users").status == 403, "\(name)")
                #expect(!(try await b.get("/queue").body.contains("id=\"nav-users\"")), "\(name): no Users link")
                let (_, version) = try await userRow(f, "root")
                let refused = try await b.post("/users/root/disable", [("version", "\(version)"), ("code", try await f.code(name))])
                #expect(refused.status == 403, "\(name)")
            }
            #expect(try await userRow(f, "root").disabled == false, "nothing changed")
            var admin = Browser(client)
            try await admin.signIn(f, "root")
            let page = try await admin.get("/users")
            #expect(page.status == 200 && page.body.contains("id=\"nav-users\""))
            let rita = row(page.body, id: "user-rita")
            #expect(rita.contains("<td>reviewer</td><td>3</td><td>enabled</td>") && !rita.contains("never"), "role, level, state, last sign-in")
            #expect(rita.contains("action=\"/users/rita/disable\"") && rita.contains("name=\"version\" value=\"1\"") && rita.contains("name=\"code\""))
            #expect(row(page.body, id: "user-root").contains("you (change your own account"), "no forms for oneself")
            #expect(try await f.count("SELECT count(*) FROM gateway.audit_log WHERE action LIKE 'console_user.%' AND actor LIKE 'console:%'") == 0)
        }
    }

    /// (version, disabled) of a console user.
    func userRow(_ f: ConsoleFixture, _ name: String) async throws -> (version: Int, disabled: Bool) {
        var out = (0, false)
        for try await (v, d) in try await f.db.query("SELECT version, disabled FROM gateway.console_users WHERE name = \(name)").decode((Int32, Bool).self) {
            out = (Int(v), d)
        }
        return out
    }

    @Test func userChangesNeedAFreshTOTPCodeOfTheAdminCarryTheVersionAndAreAudited() async throws {
        try await withConsole { f, client in
            try await f.user("root", .admin)
            try await f.user("bob", .reviewer, level: 1)
            var bob = Browser(client)
            try await bob.signIn(f, "bob")
            var b = Browser(client)
            try await b.signIn(f, "root")
            let audited = "SELECT count(*) FROM gateway.audit_log WHERE actor = 'console:root' AND action LIKE 'console_user.%'"
            let v1 = try await userRow(f, "bob").version

            // Missing, wrong: refused, nothing changed, nothing audited.
            let missing = try await b.post("/users/bob/disable", [("version", "\(v1)")])
            #expect(missing.status == 403 && missing.body.contains("need a current code from your authenticator"))
            #expect(try await b.post("/users/bob/disable", [("version", "\(v1)"), ("code", "000000")]).status == 403)
            let bobsCode = try await f.code("bob")
            #expect(try await b.post("/users/bob/disable", [("version", "\(v1)"), ("code", bobsCode)]).status == 403, "the acting admin's code, not the target's")
            // Cross-site: refused before anything is read.
            let code = try await f.code("root")
            #expect(try await b.post("/users/bob/disable", [("version", "\(v1)"), ("code", code)], site: "cross-site").status == 403)
            let unchanged = try await userRow(f, "bob")
            #expect(unchanged.version == v1 && !unchanged.disabled)
            #expect(try await f.count(PostgresQuery(unsafeSQL: audited)) == 0)
            #expect(try await bob.get("/queue").status == 200, "bob still signed in")

            // A good code: done, audited with the step-up, bob's sessions ended.
            let done = try await b.post("/users/bob/disable", [("version", "\(v1)"), ("code", code)])
            #expect(done.status == 303 && done.location == "/users?done=disabled")
            #expect(try await userRow(f, "bob").version == v1 + 1)
            #expect(try await userRow(f, "bob").disabled)
            #expect(try await f.count("""
                SELECT count(*) FROM gateway.audit_log WHERE actor = 'console:root' AND action = 'console_user.disable' AND target = 'console_user:bob'
                  AND detail->>'step_up' = 'totp'
                """) == 1)
            #expect(try await bob.get("/queue").status == 303, "disabled: signed out")
            // The same code again: refused (a code works once).
            #expect(try await b.post("/users/bob/enable", [("version", "\(v1 + 1)"), ("code", code)]).status == 403)
            // A stale version (the page before the change): refused, nothing changed.
            let stale = try await b.post("/users/bob/enable", [("version", "\(v1)"), ("code", try await f.code("root"))])
            #expect(stale.status == 409 && stale.body.contains("changed since you loaded the page"))
            #expect(try await userRow(f, "bob").version == v1 + 1)
            #expect(try await userRow(f, "bob").disabled)
            // Enable, role change, TOTP reset: each with a fresh code and the current version.
            #expect(try await b.post("/users/bob/enable", [("version", "\(v1 + 1)"), ("code", try await f.code("root"))]).location == "/users?done=enabled")
            let role = try await b.post("/users/bob/role", [("version", "\(v1 + 2)"), ("role", "reviewer"), ("level", "2"), ("code", try await f.code("root"))])
            #expect(role.status == 303)
            #expect(try await f.count("SELECT review_level::int8 FROM gateway.console_users WHERE name = 'bob' AND role = 'reviewer'") == 2)
            let badLevel = try await b.post("/users/bob/role", [("version", "\(v1 + 3)"), ("role", "viewer"), ("level", "2"), ("code", try await f.code("root"))])
            #expect(badLevel.status == 422 && badLevel.body.contains("decides nothing"))
            var secretBefore = ""
            for try await s in try await f.db.query("SELECT totp_secret FROM gateway.console_users WHERE name = 'bob'").decode(String.self) { secretBefore = s }
            let reset = try await b.post("/users/bob/reset-totp", [("version", "\(v1 + 3)"), ("code", try await f.code("root"))])
            #expect(reset.status == 200 && reset.body.contains("id=\"totp-secret\"") && reset.body.contains("otpauth://totp/"))
            var secretAfter = ""
            for try await s in try await f.db.query("SELECT totp_secret FROM gateway.console_users WHERE name = 'bob'").decode(String.self) { secretAfter = s }
            #expect(secretAfter != secretBefore)
            #expect(try await f.count(PostgresQuery(unsafeSQL: audited)) == 4, "disable, enable, role, reset-totp")
            // One's own account is not changed here.
            let me = try await userRow(f, "root")
            let own = try await b.post("/users/root/role", [("version", "\(me.version)"), ("role", "viewer"), ("level", "0"), ("code", try await f.code("root"))])
            let after = try await userRow(f, "root")
            #expect(own.status == 422 && after.version == me.version && !after.disabled)
        }
    }
}
