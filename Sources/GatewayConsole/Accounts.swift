import Crypto
import Foundation
import GatewayCore
import GatewayRuntime
import GatewayServices
import HummingbirdBcrypt
import HummingbirdOTP
import Logging
import NIOPosix
import PostgresNIO

/// What a console user may do.
public enum ConsoleRole: String, Sendable, CaseIterable {
    /// Reads the queue, decision pages and the pipeline.
    case viewer
    /// Also decides reviews up to their level.
    case reviewer
    /// Also retries dead jobs and callbacks, reads the audit (and decides up to their level, if any).
    case admin
    /// Reads everything, the audit included; decides nothing.
    case auditor
}

/// A signed-in (or signing-in) console user. Their name is their reviewer name: four eyes compare
/// names across the console, gatewayctl and admin tokens.
public struct ConsoleUser: Sendable, Equatable {
    public var id: Int32
    public var name: String
    public var role: ConsoleRole
    public var reviewLevel: Int

    public var canDecide: Bool { (role == .reviewer || role == .admin) && reviewLevel > 0 }
    public var canRetry: Bool { role == .admin }
    public var canReadAudit: Bool { role == .admin || role == .auditor }
    /// Lists console users and changes them (each change with a fresh TOTP code).
    public var canManageUsers: Bool { role == .admin }
    /// The reviewer this user decides as.
    public var reviewer: Reviewer { Reviewer(name: name, level: canDecide ? reviewLevel : 0) }
}

/// What `ConsoleAccounts.add` and `resetTOTP` hand out once: the TOTP secret and its otpauth URI.
public struct TOTPEnrollment: Sendable {
    /// The secret as authenticator apps take it typed in (base32).
    public var base32Secret: String
    /// `otpauth://totp/…` for a QR code.
    public var uri: String
}

/// Why a sign-in failed. The page says only "wrong name, password or code" (or the rate limit);
/// the reason goes to `gateway.console_sign_ins`.
public enum SignInFailure: Error, Equatable {
    case rateLimited
    case wrong(reason: String)
}

/// Console users, their sign-ins (bcrypt password + TOTP, rate-limited, recorded) and sessions.
public enum ConsoleAccounts {
    /// Names: lower-case letters, digits, `.`, `_`, `-`; the same as the schema's check.
    public static func validName(_ name: String) -> Bool {
        guard (1...63).contains(name.count), let first = name.first, first.isLetter || first.isNumber else { return false }
        return name.allSatisfy { ($0.isASCII && ($0.isLowercase || $0.isNumber)) || ".-_".contains($0) }
    }

    static let base32Alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")

    /// A new TOTP secret: 32 base32 characters (160 bits). HummingbirdOTP keys its HMAC with the
    /// secret's bytes; the authenticator gets those bytes base32-encoded (`enrollment`).
    static func newTOTPSecret() -> String {
        var rng = SystemRandomNumberGenerator()
        return String((0..<32).map { _ in base32Alphabet[Int(rng.next() % 32)] })
    }

    /// The enrollment of a stored secret (issuer "usdt-gateway").
    public static func enrollment(name: String, secret: String) -> TOTPEnrollment {
        let uri = TOTP(secret: secret).createAuthenticatorURL(label: "usdt-gateway:\(name)", issuer: "usdt-gateway")
        let b32 = URLComponents(string: uri)?.queryItems?.first { $0.name == "secret" }?.value ?? ""
        return TOTPEnrollment(base32Secret: b32, uri: uri)
    }

    /// bcrypt off the cooperative pool (it takes ~0.25 s at cost 12).
    static func hash(_ password: String, cost: Int) async throws -> String {
        try await NIOThreadPool.singleton.runIfActive { Bcrypt.hash(password, cost: UInt8(cost)) }
    }

    static func verify(_ password: String, hash: String) async throws -> Bool {
        try await NIOThreadPool.singleton.runIfActive { Bcrypt.verify(password, hash: hash) }
    }

    /// A hash no password matches, verified for unknown names so they take as long as known ones.
    static let decoyHash = Bcrypt.hash(UUID().uuidString, cost: 4)

    /// Checks a new password's length (12 to 200 characters).
    public static func checkPassword(_ password: String) throws {
        guard (12...200).contains(password.count) else { throw ServiceError.invalid("a password must be 12 to 200 characters") }
    }

    /// Adds a user; returns the TOTP enrollment (shown once, never logged).
    public static func add(name: String, role: ConsoleRole, reviewLevel: Int, password: String, bcryptCost: Int, secrets: TOTPSecretBox, actor: String,
                           on c: DatabaseConnection, logger: Logger) async throws -> TOTPEnrollment {
        guard validName(name) else {
            throw ServiceError.invalid("a user name is 1 to 63 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit")
        }
        try checkPassword(password)
        switch role {
        case .reviewer: guard (1...1000).contains(reviewLevel) else { throw ServiceError.invalid("a reviewer needs --level 1 to 1000") }
        case .admin: guard (0...1000).contains(reviewLevel) else { throw ServiceError.invalid("--level must be 0 to 1000") }
        case .viewer, .auditor: guard reviewLevel == 0 else { throw ServiceError.invalid("a \(role.rawValue) decides nothing: no --level") }
        }
        let secret = newTOTPSecret()
        let hashed = try await hash(password, cost: bcryptCost)
        do {
            try await c.query("""
                INSERT INTO gateway.console_users (name, role, review_level, password_hash, totp_secret)
                VALUES (\(name), \(role.rawValue), \(Int32(reviewLevel)), \(hashed), \(try secrets.seal(secret, name: name)))
                """, logger: logger)
        } catch where DatabaseErrors.sqlState(error) == "23505" {
            throw ServiceError.conflict("a console user named \(name) exists")
        }
        try await Audit.record(actor: actor, action: "console_user.add", target: "console_user:\(name)",
                               detail: ["role": .string(role.rawValue), "review_level": .int(reviewLevel)], on: c, logger: logger)
        return enrollment(name: name, secret: secret)
    }

    /// Checks a reviewer level for a role (as `add` does).
    static func checkLevel(_ role: ConsoleRole, _ reviewLevel: Int) throws {
        switch role {
        case .reviewer: guard (1...1000).contains(reviewLevel) else { throw ServiceError.invalid("a reviewer needs a level from 1 to 1000") }
        case .admin: guard (0...1000).contains(reviewLevel) else { throw ServiceError.invalid("an admin's level is 0 (none) to 1000") }
        case .viewer, .auditor: guard reviewLevel == 0 else { throw ServiceError.invalid("a \(role.rawValue) decides nothing: level 0") }
        }
    }

    /// Locks a user's row for a change; with `expectedVersion`, refuses (conflict) when the row moved on
    /// since the page that asked for the change was read.
    static func lockUser(_ name: String, expectedVersion: Int?, on c: DatabaseConnection, logger: Logger) async throws -> Int32 {
        for try await (id, version) in try await c.query("""
            SELECT id, version FROM gateway.console_users WHERE name = \(name) FOR UPDATE
            """, logger: logger).decode((Int32, Int32).self) {
            if let expectedVersion, Int(version) != expectedVersion {
                throw ServiceError.conflict("console user \(name) was changed since you loaded the page; nothing was changed")
            }
            return id
        }
        throw ServiceError.notFound("console user \(name)")
    }

    /// Enables a disabled user again (they sign in with their password and authenticator as before).
    public static func enable(name: String, expectedVersion: Int? = nil, actor: String, detail: [String: JSONValue] = [:], on c: DatabaseConnection,
                              logger: Logger) async throws {
        let id = try await lockUser(name, expectedVersion: expectedVersion, on: c, logger: logger)
        try await c.query("UPDATE gateway.console_users SET disabled = false, version = version + 1, updated_at = now() WHERE id = \(id)", logger: logger)
        try await Audit.record(actor: actor, action: "console_user.enable", target: "console_user:\(name)", detail: detail, on: c, logger: logger)
    }

    /// Changes a user's role and review level (checked as for `add`). Their sessions stay: every
    /// request reads the role afresh.
    public static func setRole(name: String, role: ConsoleRole, reviewLevel: Int, expectedVersion: Int? = nil, actor: String,
                               detail: [String: JSONValue] = [:], on c: DatabaseConnection, logger: Logger) async throws {
        try checkLevel(role, reviewLevel)
        let id = try await lockUser(name, expectedVersion: expectedVersion, on: c, logger: logger)
        var before = ("", Int32(0))
        for try await r in try await c.query("SELECT role, review_level FROM gateway.console_users WHERE id = \(id)", logger: logger)
            .decode((String, Int32).self) { before = r }
        try await c.query("""
            UPDATE gateway.console_users SET role = \(role.rawValue), review_level = \(Int32(reviewLevel)), version = version + 1, updated_at = now()
            WHERE id = \(id)
            """, logger: logger)
        try await Audit.record(actor: actor, action: "console_user.role", target: "console_user:\(name)",
                               detail: ["from": .string("\(before.0) \(before.1)"), "role": .string(role.rawValue), "review_level": .int(reviewLevel)]
                                   .merging(detail) { a, _ in a },
                               on: c, logger: logger)
    }

    /// Disables a user and ends their sessions.
    public static func disable(name: String, expectedVersion: Int? = nil, actor: String, detail: [String: JSONValue] = [:], on c: DatabaseConnection,
                               logger: Logger) async throws {
        let id = try await lockUser(name, expectedVersion: expectedVersion, on: c, logger: logger)
        try await c.query("UPDATE gateway.console_users SET disabled = true, version = version + 1, updated_at = now() WHERE id = \(id)", logger: logger)
        try await c.query("DELETE FROM gateway.console_sessions WHERE user_id = \(id)", logger: logger)
        try await Audit.record(actor: actor, action: "console_user.disable", target: "console_user:\(name)", detail: detail, on: c, logger: logger)
    }

    /// Gives a user a new TOTP secret (their old authenticator stops working) and ends their sessions.
    public static func resetTOTP(name: String, expectedVersion: Int? = nil, secrets: TOTPSecretBox, actor: String, detail: [String: JSONValue] = [:], on c: DatabaseConnection,
                                 logger: Logger) async throws -> TOTPEnrollment {
        let id = try await lockUser(name, expectedVersion: expectedVersion, on: c, logger: logger)
        let secret = newTOTPSecret()
        try await c.query("""
            UPDATE gateway.console_users SET totp_secret = \(try secrets.seal(secret, name: name)), totp_last_step = 0, version = version + 1, updated_at = now() WHERE id = \(id)
            """, logger: logger)
        try await c.query("DELETE FROM gateway.console_sessions WHERE user_id = \(id)", logger: logger)
        try await Audit.record(actor: actor, action: "console_user.reset_totp", target: "console_user:\(name)", detail: detail, on: c, logger: logger)
        return enrollment(name: name, secret: secret)
    }

    /// Sets a new password (and ends the user's sessions).
    public static func setPassword(name: String, password: String, bcryptCost: Int, actor: String, on c: DatabaseConnection, logger: Logger) async throws {
        try checkPassword(password)
        let id = try await userID(name, on: c, logger: logger)
        let hashed = try await hash(password, cost: bcryptCost)
        try await c.query("UPDATE gateway.console_users SET password_hash = \(hashed), version = version + 1, updated_at = now() WHERE id = \(id)", logger: logger)
        try await c.query("DELETE FROM gateway.console_sessions WHERE user_id = \(id)", logger: logger)
        try await Audit.record(actor: actor, action: "console_user.password", target: "console_user:\(name)", on: c, logger: logger)
    }

    static func userID(_ name: String, on c: DatabaseConnection, logger: Logger) async throws -> Int32 {
        for try await id in try await c.query("SELECT id FROM gateway.console_users WHERE name = \(name)", logger: logger).decode(Int32.self) {
            return id
        }
        throw ServiceError.notFound("console user \(name)")
    }

    /// A listed user.
    public struct Listed: Sendable, Equatable {
        public var name: String
        public var role: String
        public var reviewLevel: Int
        public var disabled: Bool
        public var lastSignIn: Date?
        /// The row's version (changes carry it).
        public var version: Int
    }

    public static func list(on c: DatabaseConnection, logger: Logger) async throws -> [Listed] {
        var out: [Listed] = []
        for try await (name, role, level, disabled, last, version) in try await c.query("""
            SELECT u.name, u.role, u.review_level, u.disabled, (SELECT max(at) FROM gateway.console_sign_ins s WHERE s.name = u.name AND s.ok), u.version
            FROM gateway.console_users u ORDER BY u.name
            """, logger: logger).decode((String, String, Int32, Bool, Date?, Int32).self) {
            out.append(Listed(name: name, role: role, reviewLevel: Int(level), disabled: disabled, lastSignIn: last, version: Int(version)))
        }
        return out
    }

    // MARK: TOTP

    /// Byte-wise comparison whose time does not depend on where the inputs differ.
    public static func constantTimeEquals(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        var diff = UInt8(x.count == y.count ? 0 : 1)
        for i in 0..<max(x.count, y.count) { diff |= (i < x.count ? x[i] : 0) ^ (i < y.count ? y[i] : 0) }
        return diff == 0
    }

    /// The time step a code matches (the current one or one either side, for clock drift), or nil.
    static func matchingStep(secret: String, code: String, now: Date) -> Int64? {
        let trimmed = code.filter { !$0.isWhitespace }
        guard trimmed.count == 6, trimmed.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        let totp = TOTP(secret: secret)
        let step = Int64(now.timeIntervalSince1970 / 30)
        var found: Int64?
        for s in [step - 1, step, step + 1] {  // all three compared: no early exit
            let expected = String(format: "%06d", totp.compute(date: Date(timeIntervalSince1970: Double(s) * 30 + 1)))
            if constantTimeEquals(expected, trimmed) && found == nil { found = s }
        }
        return found
    }

    /// Checks a TOTP code of user `id` and uses it up (a code is good once: its step must be after the
    /// last accepted one), in the caller's transaction.
    public static func useTOTP(userID id: Int32, code: String, secrets: TOTPSecretBox, now: Date = Date(), on c: DatabaseConnection,
                               logger: Logger) async throws -> Bool {
        var secret: String?
        for try await (name, stored) in try await c.query("""
            SELECT name, totp_secret FROM gateway.console_users WHERE id = \(id) AND NOT disabled FOR UPDATE
            """, logger: logger).decode((String, String).self) { secret = try secrets.open(stored, name: name) }
        guard let secret, let step = matchingStep(secret: secret, code: code, now: now) else { return false }
        var used = false
        for try await _ in try await c.query("""
            UPDATE gateway.console_users SET totp_last_step = \(step) WHERE id = \(id) AND totp_last_step < \(step) RETURNING id
            """, logger: logger).decode(Int32.self) { used = true }
        return used
    }

    // MARK: Sign-in and sessions

    /// Checks name, password and TOTP code; on success opens a session and returns its token (for the
    /// cookie; only its hash is stored). Every attempt is recorded; failures within the window beyond
    /// the limit (per name, and five times as many per address) refuse further attempts.
    public static func signIn(name: String, password: String, code: String, ip: String, config: ConsoleConfig, secrets: TOTPSecretBox, database: Database,
                              logger: Logger) async throws -> (token: String, user: ConsoleUser) {
        let window = Double(config.signInWindow.components.seconds)
        let (nameFailures, ipFailures, row) = try await database.withConnection { c in
            var nf: Int64 = 0, ipf: Int64 = 0
            for try await (a, b) in try await c.query("""
                SELECT (SELECT count(*) FROM gateway.console_sign_ins WHERE name = \(name) AND NOT ok AND at > now() - make_interval(secs => \(window))),
                       (SELECT count(*) FROM gateway.console_sign_ins WHERE ip = \(ip) AND NOT ok AND at > now() - make_interval(secs => \(window)))
                """, logger: logger).decode((Int64, Int64).self) { (nf, ipf) = (a, b) }
            var row: (Int32, String, String, Int32, String, Bool)?
            for try await r in try await c.query("""
                SELECT id, role, password_hash, review_level, totp_secret, disabled FROM gateway.console_users WHERE name = \(name)
                """, logger: logger).decode((Int32, String, String, Int32, String, Bool).self) { row = r }
            return (nf, ipf, row)
        }
        func record(_ ok: Bool, _ reason: String) async throws {
            try await database.transaction { c in
                try await c.query("""
                    INSERT INTO gateway.console_sign_ins (name, ip, ok, reason) VALUES (\(String(name.prefix(100))), \(ip), \(ok), \(reason))
                    """, logger: logger)
                if ok {
                    try await Audit.record(actor: "console:\(name)", action: "console.sign_in", target: "console_user:\(name)",
                                           detail: ["ip": .string(ip)], on: c, logger: logger)
                }
            }
        }
        if nameFailures >= config.signInFailures || ipFailures >= config.signInFailures * 5 {
            try await record(false, "rate limited")
            throw SignInFailure.rateLimited
        }
        guard let (id, roleText, hash, level, _, disabled) = row, let role = ConsoleRole(rawValue: roleText) else {
            _ = try await verify(password, hash: decoyHash)
            try await record(false, "unknown user")
            throw SignInFailure.wrong(reason: "unknown user")
        }
        guard try await verify(password, hash: hash) else {
            try await record(false, "wrong password")
            throw SignInFailure.wrong(reason: "wrong password")
        }
        guard !disabled else {
            try await record(false, "disabled")
            throw SignInFailure.wrong(reason: "disabled")
        }
        let codeOK: Bool
        do {
            codeOK = try await database.transaction { c in try await useTOTP(userID: id, code: code, secrets: secrets, on: c, logger: logger) }
        } catch let e as TOTPSecretError {
            logger.error("console sign-in: the TOTP secret cannot be opened", metadata: ["user": "\(name)", "error": "\(e.description)"])
            try await record(false, "TOTP secret cannot be opened (console.totp_key_*)")
            throw SignInFailure.wrong(reason: "TOTP secret cannot be opened")
        }
        guard codeOK else {
            try await record(false, "wrong or reused TOTP code")
            throw SignInFailure.wrong(reason: "wrong or reused TOTP code")
        }
        var rng = SystemRandomNumberGenerator()
        let token = (0..<32).map { _ in String(format: "%02x", UInt8(truncatingIfNeeded: rng.next())) }.joined()
        try await database.transaction { c in
            try await c.query("""
                INSERT INTO gateway.console_sessions (token_hash, user_id, ip) VALUES (\(tokenHash(token)), \(id), \(ip))
                """, logger: logger)
        }
        try await record(true, "")
        return (token, ConsoleUser(id: id, name: name, role: role, reviewLevel: Int(level)))
    }

    static func tokenHash(_ token: String) -> String { SHA256.hash(data: Data(token.utf8)).map { String(format: "%02x", $0) }.joined() }

    /// The user of a live session, touching it; nil when the token is unknown, idle too long or its user disabled.
    public static func session(_ token: String, idleTimeout: Duration, database: Database, logger: Logger) async throws -> ConsoleUser? {
        guard token.count == 64, token.allSatisfy({ $0.isHexDigit }) else { return nil }
        let idle = Double(idleTimeout.components.seconds)
        return try await database.transaction { c in
            for try await (id, name, role, level) in try await c.query("""
                UPDATE gateway.console_sessions s SET last_seen = now() FROM gateway.console_users u
                WHERE s.token_hash = \(tokenHash(token)) AND u.id = s.user_id AND NOT u.disabled AND s.last_seen > now() - make_interval(secs => \(idle))
                RETURNING u.id, u.name, u.role, u.review_level
                """, logger: logger).decode((Int32, String, String, Int32).self) {
                guard let role = ConsoleRole(rawValue: role) else { return nil }
                return ConsoleUser(id: id, name: name, role: role, reviewLevel: Int(level))
            }
            // Idle sessions are removed when met.
            try await c.query("DELETE FROM gateway.console_sessions WHERE token_hash = \(tokenHash(token))", logger: logger)
            return nil
        }
    }

    /// Ends a session.
    public static func signOut(_ token: String, user: ConsoleUser, database: Database, logger: Logger) async throws {
        try await database.transaction { c in
            try await c.query("DELETE FROM gateway.console_sessions WHERE token_hash = \(tokenHash(token))", logger: logger)
            try await Audit.record(actor: "console:\(user.name)", action: "console.sign_out", target: "console_user:\(user.name)", on: c, logger: logger)
        }
    }
}
