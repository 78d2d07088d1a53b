import GatewayCore
import PostgresNIO

/// The database schema is older than this build needs.
public struct SchemaTooOld: Error, CustomStringConvertible {
    public var found: Int
    public var required: Int
    public var description: String {
        "the database schema is at version \(found), this build needs \(required): run `gatewayctl migrate` first"
    }
}

extension Database {
    /// The highest applied migration version (0 on an empty database).
    public func schemaVersion() async throws -> Int {
        let rows = try await query("SELECT to_regclass('public.gateway_schema_migrations') IS NOT NULL")
        var exists = false
        for try await e in rows.decode(Bool.self) { exists = e }
        guard exists else { return 0 }
        var version = 0
        for try await v in try await query("SELECT coalesce(max(version), 0)::int4 FROM public.gateway_schema_migrations").decode(Int32.self) {
            version = Int(v)
        }
        return version
    }

    /// Throws `SchemaTooOld` unless the database has at least the version this build needs.
    public func requireSchema(_ required: Int = GatewaySchema.requiredVersion) async throws {
        let found = try await schemaVersion()
        guard found >= required else { throw SchemaTooOld(found: found, required: required) }
    }
}
