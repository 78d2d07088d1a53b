import Foundation
import GatewayCore
import GatewayRuntime
import GatewayTesting
import Logging
import PostgresNIO
import Testing

@Suite struct MigrationTests {
    func migrator(_ config: DatabaseConfig) throws -> Migrator {
        try Migrator(connectionString: config.libpqConnectionString, logger: TestDatabase.logger)
    }

    @Test func requiredVersionMatchesTheNewestFileInSQL() throws {
        let migrations = try GatewaySchema.loadMigrations(directory: TestDatabase.sqlDirectory)
        #expect(!migrations.isEmpty)
        #expect(migrations.map(\.version).max() == GatewaySchema.requiredVersion)
        // Unique and ascending; a gap is fine (work on parallel branches reserves its numbers, e.g. 0007 and 0008).
        #expect(migrations.map(\.version) == Array(Set(migrations.map(\.version))).sorted(), "versions are unique")
    }

    @Test func wholeFilesWithDollarBodiesQuotesAndCommentsApply() async throws {
        let config = try await TestDatabase.createEmpty()
        defer { Task { await TestDatabase.drop(config) } }
        let sql = """
            -- a comment; with a semicolon
            /* a block comment; /* nested; */ still comment; */
            CREATE TABLE t1 (id int, note text DEFAULT 'it''s; fine');
            CREATE FUNCTION f() RETURNS text LANGUAGE plpgsql AS $$ BEGIN RETURN 'a;b'; END; $$;
            CREATE FUNCTION g() RETURNS text LANGUAGE sql AS $fn$ SELECT $$x;y$$ $fn$;
            INSERT INTO t1 VALUES (1, E'semi\\;colon'), (2, $q$dollar ' quote; $q$), (3, DEFAULT);
            """
        let m = try migrator(config)
        #expect(try m.migrate([Migration(version: 1, name: "edge", sql: sql)]) == [1])
        #expect(try m.exec("SELECT f(), g()") == [["a;b", "x;y"]])
        #expect(try m.exec("SELECT note FROM t1 ORDER BY id") == [["semi;colon"], ["dollar ' quote; "], ["it's; fine"]])
        // Re-running is a no-op.
        #expect(try m.migrate([Migration(version: 1, name: "edge", sql: sql)]) == [])
    }

    @Test func aFailingFileRollsBackWhole() async throws {
        let config = try await TestDatabase.createEmpty()
        defer { Task { await TestDatabase.drop(config) } }
        let m = try migrator(config)
        let bad = Migration(version: 1, name: "bad", sql: "CREATE TABLE t2 (id int); INSERT INTO t2 VALUES (1); SELECT 1/0;")
        #expect(throws: MigrationError.self) { try m.migrate([bad]) }
        #expect(try m.exec("SELECT to_regclass('t2') IS NULL") == [["t"]])
        #expect(try m.applied().isEmpty)
        let fixed = Migration(version: 1, name: "fixed", sql: "CREATE TABLE t2 (id int);")
        #expect(try m.migrate([fixed]) == [1])
    }

    @Test func anEditedAppliedMigrationIsRefused() async throws {
        let config = try await TestDatabase.createEmpty()
        defer { Task { await TestDatabase.drop(config) } }
        let m = try migrator(config)
        try m.migrate([Migration(version: 1, name: "a", sql: "CREATE TABLE a (id int);")])
        do {
            try m.migrate([Migration(version: 1, name: "a", sql: "CREATE TABLE a (id bigint);"),
                           Migration(version: 2, name: "b", sql: "CREATE TABLE b (id int);")])
            Issue.record("an edited migration was accepted")
        } catch let e as MigrationError {
            #expect(e.description.contains("changed after it was applied"))
        }
        #expect(try m.exec("SELECT to_regclass('b') IS NULL") == [["t"]])
    }

    @Test func concurrentRunsApplyEachFileOnce() async throws {
        let config = try await TestDatabase.createEmpty()
        defer { Task { await TestDatabase.drop(config) } }
        let migrations = [
            Migration(version: 1, name: "slow", sql: "CREATE TABLE slow (id int); SELECT pg_sleep(0.3);"),
            Migration(version: 2, name: "next", sql: "CREATE TABLE next (id int);"),
        ]
        async let a = TestDatabase.offload { try Migrator(connectionString: config.libpqConnectionString, logger: TestDatabase.logger).migrate(migrations) }
        async let b = TestDatabase.offload { try Migrator(connectionString: config.libpqConnectionString, logger: TestDatabase.logger).migrate(migrations) }
        let (ra, rb) = try await (a, b)
        #expect((ra + rb).sorted() == [1, 2])
    }

    @Test func fileNamesAreChecked() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sql-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try "SELECT 1;".write(to: dir.appendingPathComponent("0001_one.sql"), atomically: true, encoding: .utf8)
        try "SELECT 1;".write(to: dir.appendingPathComponent("2_two.sql"), atomically: true, encoding: .utf8)
        #expect(throws: MigrationError.self) { try GatewaySchema.loadMigrations(directory: dir.path) }
        try FileManager.default.removeItem(at: dir.appendingPathComponent("2_two.sql"))
        try "SELECT 1;".write(to: dir.appendingPathComponent("0001_again.sql"), atomically: true, encoding: .utf8)
        #expect(throws: MigrationError.self) { try GatewaySchema.loadMigrations(directory: dir.path) }
    }

    @Test func processesRefuseAnOlderSchema() async throws {
        try await TestDatabase.withDatabase(migrated: false) { db in
            await #expect(throws: SchemaTooOld.self) { try await db.requireSchema() }
            do {
                try await db.requireSchema()
            } catch let e as SchemaTooOld {
                #expect(e.description.contains("gatewayctl migrate"))
            }
        }
        try await TestDatabase.withDatabase { db in
            try await db.requireSchema()
            #expect(try await db.schemaVersion() == GatewaySchema.requiredVersion)
        }
    }

    /// DESIGN.md §2: a commit-time failure must be reported as a failure by our write path.
    @Test func aDeferredConstraintViolationAtCommitIsAFailure() async throws {
        try await TestDatabase.withDatabase { db in
            try await db.transaction { c in
                try await c.query("CREATE TABLE dtest (id int, UNIQUE (id) DEFERRABLE INITIALLY DEFERRED)", logger: TestDatabase.logger)
                try await c.query("INSERT INTO dtest VALUES (1)", logger: TestDatabase.logger)
            }
            await #expect(throws: (any Error).self) {
                try await db.transaction { c in try await c.query("INSERT INTO dtest VALUES (1)", logger: TestDatabase.logger) }
            }
            var count: Int64 = -1
            for try await n in try await db.query("SELECT count(*) FROM dtest").decode(Int64.self) { count = n }
            #expect(count == 1)
        }
    }
    /// The payment path's busiest updates stay heap-only (0011, 0015): no index of withdrawals may use a
    /// column that signing, broadcasting or settling changes, and none of outgoing_txs one that its
    /// signed → broadcast update changes. (An index on one of them, as 0013's (state, updated_at) was,
    /// makes every such update write into every index of the table.)
    @Test func paymentPathUpdatesTouchNoIndexedColumn() async throws {
        try await TestDatabase.withDatabase { db in
            let changed: [String: Set<String>] = [
                "withdrawals": ["state", "state_reason", "tx_hash", "sent_amount", "version", "updated_at", "block_height", "network_fee", "reserved"],
                "outgoing_txs": ["state", "broadcasts", "broadcast_at", "last_error", "updated_at"],
            ]
            var offending: [String] = []
            for try await (table, index, column) in try await db.query("""
                SELECT t.relname, i.relname, a.attname
                FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
                JOIN pg_namespace n ON n.oid = t.relnamespace
                JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum > 0
                WHERE n.nspname = 'gateway' AND t.relname IN ('withdrawals', 'outgoing_txs')
                  AND (a.attnum = ANY(x.indkey)
                       OR pg_get_expr(x.indexprs, x.indrelid) ~ ('\\m' || a.attname || '\\M')
                       OR pg_get_expr(x.indpred, x.indrelid) ~ ('\\m' || a.attname || '\\M'))
                """).decode((String, String, String).self) where changed[table]?.contains(column) == true {
                offending.append("\(table).\(index) uses \(column)")
            }
            #expect(offending.isEmpty, "indexes that stop the payment path's updates from being heap-only: \(offending)")
            // The check itself sees indexes: the open-transactions index names block_height (which only mining changes).
            var seen: Int64 = 0
            for try await n in try await db.query("""
                SELECT count(*) FROM pg_indexes WHERE schemaname = 'gateway' AND indexname = 'outgoing_txs_unmined' AND indexdef LIKE '%block_height IS NULL%'
                """).decode(Int64.self) { seen = n }
            #expect(seen == 1)
        }
    }
}
