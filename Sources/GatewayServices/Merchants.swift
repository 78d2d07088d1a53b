import Foundation
import GatewayCore
import GatewayRuntime
import Logging
import PostgresNIO

/// A merchant as operators see it (never with its keys).
public struct Merchant: Sendable, Equatable {
    public var id: Int64
    public var name: String
    public var active: Bool
    public var autoPayment: Bool
    public var maxAddresses: Int?
    public var rateLimitPerMinute: Int?
    public var createdAt: Date
}

/// What the Open API needs to authenticate a merchant's request.
public struct MerchantAuth: Sendable {
    public var id: Int64
    /// The Open API key; never log it.
    public var apiKey: String
    public var active: Bool
    public var rateLimitPerMinute: Int?
}

/// Secrets shown once, when a merchant is created or its key rotated.
public struct MerchantSecrets: Sendable {
    public var apiKey: String
    public var webhookSecret: String
}

/// Merchant administration.
public enum Merchants {
    static let columns = "id, name, status = 'active', auto_payment, coalesce(max_addresses, 0), coalesce(rate_limit_per_min, 0), created_at"

    static func decode(_ rows: PostgresRowSequence) async throws -> [Merchant] {
        var out: [Merchant] = []
        for try await (id, name, active, auto, maxA, rate, created) in rows.decode((Int64, String, Bool, Bool, Int32, Int32, Date).self) {
            out.append(Merchant(id: id, name: name, active: active, autoPayment: auto, maxAddresses: maxA == 0 ? nil : Int(maxA),
                                rateLimitPerMinute: rate == 0 ? nil : Int(rate), createdAt: created))
        }
        return out
    }

    /// A random API key: 48 letters and digits.
    public static func newAPIKey() -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
        var rng = SystemRandomNumberGenerator()
        return String((0..<48).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &rng)] })
    }

    /// A Standard Webhooks secret: `whsec_` + base64 of 24 random bytes.
    public static func newWebhookSecret() -> String {
        var rng = SystemRandomNumberGenerator()
        return "whsec_" + Data((0..<24).map { _ in UInt8.random(in: 0...255, using: &rng) }).base64EncodedString()
    }

    /// Creates a merchant; returns it with its secrets (shown once).
    public static func create(name: String, autoPayment: Bool = false, maxAddresses: Int? = nil, actor: String,
                              on c: DatabaseConnection, logger: Logger) async throws -> (Merchant, MerchantSecrets) {
        let trimmed = name.trimmingCharacters(in: .whitespacesAndNewlines)
        guard (1...200).contains(trimmed.count) else { throw ServiceError.invalid("merchant name must be 1 to 200 characters") }
        if let m = maxAddresses, m <= 0 { throw ServiceError.invalid("max addresses must be positive") }
        let secrets = MerchantSecrets(apiKey: newAPIKey(), webhookSecret: newWebhookSecret())
        let rows = try await c.query("""
            INSERT INTO gateway.merchants (name, api_key, webhook_secret, auto_payment, max_addresses)
            VALUES (\(trimmed), \(secrets.apiKey), \(secrets.webhookSecret), \(autoPayment), \(maxAddresses.map(Int32.init)))
            RETURNING \(unescaped: columns)
            """, logger: logger)
        guard let m = try await decode(rows).first else { throw ServiceError.invalid("merchant was not created") }
        try await Audit.record(actor: actor, action: "merchant.create", target: "merchant:\(m.id)", detail: ["name": .string(trimmed)], on: c, logger: logger)
        return (m, secrets)
    }

    public static func list(on c: DatabaseConnection, logger: Logger) async throws -> [Merchant] {
        try await decode(try await c.query("SELECT \(unescaped: columns) FROM gateway.merchants ORDER BY id", logger: logger))
    }

    public static func find(_ id: Int64, on c: DatabaseConnection, logger: Logger) async throws -> Merchant? {
        try await decode(try await c.query("SELECT \(unescaped: columns) FROM gateway.merchants WHERE id = \(id)", logger: logger)).first
    }

    /// The merchant's authentication data for the Open API.
    public static func auth(_ id: Int64, on c: DatabaseConnection, logger: Logger) async throws -> MerchantAuth? {
        let rows = try await c.query(
            "SELECT api_key, status = 'active', coalesce(rate_limit_per_min, 0) FROM gateway.merchants WHERE id = \(id)", logger: logger)
        for try await (key, active, rate) in rows.decode((String, Bool, Int32).self) {
            return MerchantAuth(id: id, apiKey: key, active: active, rateLimitPerMinute: rate == 0 ? nil : Int(rate))
        }
        return nil
    }

    /// The merchant's API key and webhook secret, for signing callbacks.
    public static func signingSecrets(_ id: Int64, on c: DatabaseConnection, logger: Logger) async throws -> MerchantSecrets? {
        let rows = try await c.query("SELECT api_key, webhook_secret FROM gateway.merchants WHERE id = \(id)", logger: logger)
        for try await (key, secret) in rows.decode((String, String).self) { return MerchantSecrets(apiKey: key, webhookSecret: secret) }
        return nil
    }

    /// Enables or disables a merchant; a disabled merchant's requests are refused (4169).
    public static func setActive(_ id: Int64, _ active: Bool, actor: String, on c: DatabaseConnection, logger: Logger) async throws -> Merchant {
        let rows = try await c.query("""
            UPDATE gateway.merchants SET status = \(active ? "active" : "disabled"), updated_at = now() WHERE id = \(id)
            RETURNING \(unescaped: columns)
            """, logger: logger)
        guard let m = try await decode(rows).first else { throw ServiceError.notFound("merchant \(id)") }
        try await Audit.record(actor: actor, action: active ? "merchant.enable" : "merchant.disable", target: "merchant:\(id)", on: c, logger: logger)
        return m
    }

    /// Turns automatic payment on or off.
    public static func setAutoPayment(_ id: Int64, _ on: Bool, actor: String, on c: DatabaseConnection, logger: Logger) async throws -> Merchant {
        let rows = try await c.query("""
            UPDATE gateway.merchants SET auto_payment = \(on), updated_at = now() WHERE id = \(id) RETURNING \(unescaped: columns)
            """, logger: logger)
        guard let m = try await decode(rows).first else { throw ServiceError.notFound("merchant \(id)") }
        try await Audit.record(actor: actor, action: "merchant.auto_payment", target: "merchant:\(id)", detail: ["on": .bool(on)], on: c, logger: logger)
        return m
    }

    /// How the coin's withdrawal fee is charged: `deduct` (from the amount sent) or `add` (reserved on top).
    public static func setWithdrawalFeeMode(_ id: Int64, _ mode: String, actor: String, on c: DatabaseConnection, logger: Logger) async throws {
        guard ["deduct", "add"].contains(mode) else { throw ServiceError.invalid("the fee mode is deduct or add") }
        var found = false
        for try await _ in try await c.query("""
            UPDATE gateway.merchants SET withdrawal_fee_mode = \(mode), updated_at = now() WHERE id = \(id) RETURNING id
            """, logger: logger) { found = true }
        guard found else { throw ServiceError.notFound("merchant \(id)") }
        try await Audit.record(actor: actor, action: "merchant.withdrawal_fee_mode", target: "merchant:\(id)", detail: ["mode": .string(mode)],
                               on: c, logger: logger)
    }

    /// Replaces the API key; the old one stops working at once. Returns the new key (shown once).
    public static func rotateKey(_ id: Int64, actor: String, on c: DatabaseConnection, logger: Logger) async throws -> String {
        let key = newAPIKey()
        let rows = try await c.query("UPDATE gateway.merchants SET api_key = \(key), updated_at = now() WHERE id = \(id) RETURNING id", logger: logger)
        var found = false
        for try await _ in rows.decode(Int64.self) { found = true }
        guard found else { throw ServiceError.notFound("merchant \(id)") }
        try await Audit.record(actor: actor, action: "merchant.rotate_key", target: "merchant:\(id)", on: c, logger: logger)
        return key
    }
}

/// Errors of the administration services, in words for operators.
public enum ServiceError: Error, CustomStringConvertible, Equatable {
    case invalid(String)
    case notFound(String)
    case conflict(String)

    public var description: String {
        switch self {
        case .invalid(let s): return s
        case .notFound(let s): return "\(s) not found"
        case .conflict(let s): return s
        }
    }
}

/// The audit trail of administrative actions: who, what, when.
public enum Audit {
    public static func record(actor: String, action: String, target: String, detail: [String: JSONValue] = [:],
                              on c: DatabaseConnection, logger: Logger) async throws {
        let json = JSONValue.object(detail.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }).serialized
        try await c.query("""
            INSERT INTO gateway.audit_log (actor, action, target, detail) VALUES (\(actor), \(action), \(target), \(json)::jsonb)
            """, logger: logger)
    }
}
