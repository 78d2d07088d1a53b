import Crypto
import Foundation
import GatewayCore
import GatewayRuntime
import Logging
import PostgresNIO

/// Bearer tokens of the admin API (separate from merchant keys), stored as SHA-256.
public enum AdminTokens {
    static func hash(_ token: String) -> String { SHA256.hash(data: Data(token.utf8)).map { String(format: "%02x", $0) }.joined() }

    /// Creates a token named `name`; returns the token (shown once). Its holder is reviewer `name`,
    /// who may decide withdrawal reviews up to `reviewLevel` (0: none).
    public static func create(name: String, reviewLevel: Int = 1, actor: String, on c: DatabaseConnection, logger: Logger) async throws -> String {
        guard (1...100).contains(name.count) else { throw ServiceError.invalid("token name must be 1 to 100 characters") }
        guard (0...1000).contains(reviewLevel) else { throw ServiceError.invalid("review level must be between 0 and 1000") }
        var rng = SystemRandomNumberGenerator()
        let token = "gwa_" + (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &rng)) }.joined()
        do {
            try await c.query("""
                INSERT INTO gateway.admin_tokens (name, token_hash, review_level) VALUES (\(name), \(hash(token)), \(Int32(reviewLevel)))
                """, logger: logger)
        } catch where DatabaseErrors.sqlState(error) == "23505" {
            throw ServiceError.conflict("a token named \(name) exists")
        }
        try await Audit.record(actor: actor, action: "admin_token.create", target: "admin_token:\(name)", detail: ["review_level": .int(reviewLevel)],
                               on: c, logger: logger)
        return token
    }

    /// Sets the highest review level the token's holder may decide.
    public static func setReviewLevel(name: String, level: Int, actor: String, on c: DatabaseConnection, logger: Logger) async throws {
        guard (0...1000).contains(level) else { throw ServiceError.invalid("review level must be between 0 and 1000") }
        var found = false
        for try await _ in try await c.query(
            "UPDATE gateway.admin_tokens SET review_level = \(Int32(level)) WHERE name = \(name) RETURNING id", logger: logger).decode(Int32.self) { found = true }
        guard found else { throw ServiceError.notFound("admin token \(name)") }
        try await Audit.record(actor: actor, action: "admin_token.review_level", target: "admin_token:\(name)", detail: ["review_level": .int(level)],
                               on: c, logger: logger)
    }

    /// The name of the enabled token, or nil.
    public static func authenticate(_ token: String, on c: DatabaseConnection, logger: Logger) async throws -> String? {
        guard token.hasPrefix("gwa_"), token.count == 68 else { return nil }
        for try await name in try await c.query(
            "SELECT name FROM gateway.admin_tokens WHERE token_hash = \(hash(token)) AND enabled", logger: logger).decode(String.self) {
            return name
        }
        return nil
    }

    public static func disable(name: String, actor: String, on c: DatabaseConnection, logger: Logger) async throws {
        var found = false
        for try await _ in try await c.query(
            "UPDATE gateway.admin_tokens SET enabled = false WHERE name = \(name) RETURNING id", logger: logger).decode(Int32.self) { found = true }
        guard found else { throw ServiceError.notFound("admin token \(name)") }
        try await Audit.record(actor: actor, action: "admin_token.disable", target: "admin_token:\(name)", on: c, logger: logger)
    }
}

/// A callback to a merchant.
public struct CallbackRecord: Sendable, Equatable {
    public var id: Int64
    public var merchantID: Int64
    public var tradeType: Int
    public var tradeID: Int64
    public var status: Int
    public var url: String
    public var state: String
    public var attempts: Int
    public var lastError: String?
    public var createdAt: Date
}

/// Callbacks as operators see them.
public enum Callbacks {
    /// The callback stage's job kind for delivering one callback.
    public static let deliverJobKind = "deliver"

    public static func list(merchantID: Int64?, state: String?, limit: Int, on c: DatabaseConnection, logger: Logger) async throws -> [CallbackRecord] {
        let rows = try await c.query("""
            SELECT id, merchant_id, trade_type, trade_id, status, url, state, attempts, coalesce(last_error, ''), created_at FROM gateway.callbacks
            WHERE (\(merchantID ?? 0)::int8 = 0 OR merchant_id = \(merchantID ?? 0)) AND (\(state ?? "")::text = '' OR state = \(state ?? ""))
            ORDER BY id DESC LIMIT \(Int32(clamping: limit))
            """, logger: logger)
        var out: [CallbackRecord] = []
        for try await (id, m, tt, tid, st, url, state, attempts, err, created) in rows.decode(
            (Int64, Int64, Int16, Int64, Int16, String, String, Int32, String, Date).self)
        {
            out.append(CallbackRecord(id: id, merchantID: m, tradeType: Int(tt), tradeID: tid, status: Int(st), url: url, state: state,
                                      attempts: Int(attempts), lastError: err.isEmpty ? nil : err, createdAt: created))
        }
        return out
    }

    /// Sends a callback again (the same stored bytes): back to pending with a delivery job.
    public static func resend(_ id: Int64, actor: String, on c: DatabaseConnection, logger: Logger) async throws {
        var found = false
        for try await _ in try await c.query(
            "UPDATE gateway.callbacks SET state = 'pending', last_error = NULL WHERE id = \(id) RETURNING id", logger: logger).decode(Int64.self) {
            found = true
        }
        guard found else { throw ServiceError.notFound("callback \(id)") }
        // A dead delivery job would hold the unique key: the resend replaces it.
        try await c.query("DELETE FROM gateway.jobs WHERE stage = 'callback' AND unique_key = \("callback:\(id)") AND state = 'dead'", logger: logger)
        try await JobQueue.enqueue(NewJob(stage: .callback, kind: deliverJobKind, ref: "callback:\(id)", maxAttempts: 1_000_000, uniqueKey: "callback:\(id)"),
                                   on: c, logger: logger)
        try await Audit.record(actor: actor, action: "callback.resend", target: "callback:\(id)", on: c, logger: logger)
    }
}
