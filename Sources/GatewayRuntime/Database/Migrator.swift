import CLibPQ
import Crypto
import Foundation
import GatewayCore
import Logging

/// One numbered SQL file of `sql/`.
public struct Migration: Sendable, Equatable {
    public var version: Int
    public var name: String
    public var sql: String
    /// SHA-256 of the file, to notice an applied migration that was edited afterwards.
    public var checksum: String

    public init(version: Int, name: String, sql: String) {
        self.version = version
        self.name = name
        self.sql = sql
        self.checksum = SHA256.hash(data: Data(sql.utf8)).map { String(format: "%02x", $0) }.joined()
    }
}

/// Errors of migration loading and application.
public struct MigrationError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The schema version this build needs; processes refuse to start on an older database.
public enum GatewaySchema {
    /// Raise it with every new file in `sql/` (a test checks they agree).
    public static let requiredVersion = 17
    /// The table recording applied migrations.
    public static let migrationsTable = "public.gateway_schema_migrations"

    /// Finds the `sql/` folder: `GATEWAY_SQL_DIR`, `./sql`, or beside the build folder of the executable.
    public static func locateSQLDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        var candidates: [String] = []
        if let d = environment["GATEWAY_SQL_DIR"], !d.isEmpty { candidates.append(d) }
        candidates.append(FileManager.default.currentDirectoryPath + "/sql")
        // .build/<config>/gatewayctl → repository root
        let exe = URL(fileURLWithPath: CommandLine.arguments.first ?? "").resolvingSymlinksInPath()
        var dir = exe.deletingLastPathComponent()
        for _ in 0..<4 {
            candidates.append(dir.appendingPathComponent("sql").path)
            dir = dir.deletingLastPathComponent()
        }
        return candidates.first { path in
            var isDir: ObjCBool = false
            return FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && isDir.boolValue
                && ((try? FileManager.default.contentsOfDirectory(atPath: path))?.contains { $0.hasSuffix(".sql") } ?? false)
        }
    }

    /// Loads `NNNN_name.sql` files in version order; refuses gaps in naming, duplicates and stray files.
    public static func loadMigrations(directory: String) throws -> [Migration] {
        let files: [String]
        do {
            files = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".sql") }.sorted()
        } catch {
            throw MigrationError("cannot list \(directory): \(error.localizedDescription)")
        }
        var migrations: [Migration] = []
        for file in files {
            let stem = file.dropLast(4)
            let parts = stem.split(separator: "_", maxSplits: 1)
            guard parts.count == 2, parts[0].count == 4, let version = Int(parts[0]), version > 0 else {
                throw MigrationError("\(directory)/\(file): migration files are named NNNN_name.sql (e.g. 0002_deposits.sql)")
            }
            if let dup = migrations.first(where: { $0.version == version }) {
                throw MigrationError("\(file) and \(dup.version)_\(dup.name).sql share version \(version)")
            }
            let sql = try String(contentsOfFile: "\(directory)/\(file)", encoding: .utf8)
            migrations.append(Migration(version: version, name: String(parts[1]), sql: sql))
        }
        return migrations
    }
}

/// Applies migrations through libpq's `PQexec`, which runs a whole multi-statement file (with
/// `$$` bodies, quotes and comments parsed by the server itself), one transaction per file, under
/// an advisory lock so that concurrent `migrate` runs apply each file once.
public final class Migrator {
    private let conn: OpaquePointer
    private let logger: Logger
    /// Advisory lock key: "gw-migr" as a number.
    static let lockKey: Int64 = 0x67_77_2d_6d_69_67_72

    /// Connects with a libpq connection string (see `DatabaseConfig.libpqConnectionString`).
    public init(connectionString: String, logger: Logger) throws {
        guard let c = PQconnectdb(connectionString) else { throw MigrationError("libpq could not allocate a connection") }
        guard PQstatus(c) == CONNECTION_OK else {
            let message = String(cString: PQerrorMessage(c)).trimmingCharacters(in: .whitespacesAndNewlines)
            PQfinish(c)
            throw MigrationError("cannot connect to PostgreSQL: \(message)")
        }
        self.conn = c
        self.logger = logger
        _ = try exec("SET client_min_messages = warning")
    }

    deinit { PQfinish(conn) }

    /// Runs SQL (any number of statements) and returns the rows of the last one as text.
    @discardableResult
    public func exec(_ sql: String) throws -> [[String?]] {
        guard let res = PQexec(conn, sql) else { throw MigrationError(String(cString: PQerrorMessage(conn))) }
        defer { PQclear(res) }
        let status = PQresultStatus(res)
        guard status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK else {
            let state = PQresultErrorField(res, Int32(UInt8(ascii: "C"))).map { String(cString: $0) } ?? "?????"
            let message = String(cString: PQresultErrorMessage(res)).trimmingCharacters(in: .whitespacesAndNewlines)
            throw MigrationError("\(state): \(message)")
        }
        var rows: [[String?]] = []
        for r in 0..<PQntuples(res) {
            rows.append((0..<PQnfields(res)).map { c in PQgetisnull(res, r, c) == 1 ? nil : String(cString: PQgetvalue(res, r, c)) })
        }
        return rows
    }

    /// Versions applied so far, with their checksums.
    public func applied() throws -> [Int: String] {
        let exists = try exec("SELECT to_regclass('\(GatewaySchema.migrationsTable)') IS NOT NULL")
        guard exists.first?.first == "t" else { return [:] }
        var result: [Int: String] = [:]
        for row in try exec("SELECT version, checksum FROM \(GatewaySchema.migrationsTable)") {
            if let v = row[0].flatMap(Int.init) { result[v] = row[1] ?? "" }
        }
        return result
    }

    /// Applies every migration not yet applied, in order; returns the versions it applied.
    /// An applied file whose contents changed is an error: migrations are append-only.
    @discardableResult
    public func migrate(_ migrations: [Migration]) throws -> [Int] {
        try exec("SELECT pg_advisory_lock(\(Self.lockKey))")
        defer { _ = try? exec("SELECT pg_advisory_unlock(\(Self.lockKey))") }
        try exec("""
            CREATE TABLE IF NOT EXISTS \(GatewaySchema.migrationsTable) (
                version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now())
            """)
        let done = try applied()
        for m in migrations {
            if let sum = done[m.version], sum != m.checksum {
                throw MigrationError("migration \(m.version)_\(m.name).sql was changed after it was applied; add a new migration instead")
            }
        }
        var newlyApplied: [Int] = []
        for m in migrations.sorted(by: { $0.version < $1.version }) where done[m.version] == nil {
            try exec("BEGIN")
            do {
                try exec(m.sql)
                try exec("""
                    INSERT INTO \(GatewaySchema.migrationsTable) (version, name, checksum)
                    VALUES (\(m.version), '\(m.name.replacingOccurrences(of: "'", with: "''"))', '\(m.checksum)')
                    """)
                try exec("COMMIT")
            } catch {
                _ = try? exec("ROLLBACK")
                throw MigrationError("\(String(format: "%04d", m.version))_\(m.name).sql failed and was rolled back: \(error)")
            }
            logger.info("applied migration", metadata: ["migration.version": "\(m.version)", "migration.name": "\(m.name)"])
            newlyApplied.append(m.version)
        }
        return newlyApplied
    }
}
