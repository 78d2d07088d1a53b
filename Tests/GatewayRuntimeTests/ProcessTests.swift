import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import GatewayCore
import GatewayRuntime
import GatewayTesting
import Logging
import PostgresNIO
import Testing

/// Real processes: several workers, kill -9, signals, exit codes.
@Suite(.serialized) struct ProcessTests {
    static func createEffects(_ db: Database) async throws {
        try await db.transaction { c in
            try await c.query("CREATE TABLE public.bench_effects (job_id bigint PRIMARY KEY, runs int NOT NULL, worker text, attempt int)", logger: log)
        }
    }

    @Test func fourWorkerProcessesDrain20000JobsExactlyOnce() async throws {
        try await TestDatabase.withDatabase { db in
            try await Self.createEffects(db)
            let total = 20_000
            for chunk in stride(from: 0, to: total, by: 2000) {
                try await enqueue(db, (chunk..<min(total, chunk + 2000)).map { _ in NewJob(stage: "drain", kind: "effect") })
            }
            let config = try TestProcesses.configFile("log_level: warning\n")
            defer { try? FileManager.default.removeItem(atPath: config) }
            let env = TestProcesses.environment(for: db.config)
            let workers = try (0..<4).map { _ in
                try TestProcesses.start("gatewayctl", ["bench", "worker", "--config", config, "--stage", "drain", "--concurrency", "10", "--batch", "10"], environment: env)
            }
            let drained = try await eventually(timeout: .seconds(240), every: .milliseconds(200)) {
                try await count(db, "SELECT count(*) FROM gateway.jobs") == 0
            }
            for w in workers { w.signal(SIGTERM) }
            for w in workers {
                let status = await w.wait(timeout: .seconds(30))
                #expect(status == 0, "worker exit status; output:\n\(w.output.suffix(2000))")
            }
            #expect(drained)
            #expect(try await count(db, "SELECT count(*) FROM public.bench_effects") == Int64(total))
            #expect(try await count(db, "SELECT count(*) FROM public.bench_effects WHERE runs <> 1") == 0, "every side effect happened exactly once")
            #expect(try await count(db, "SELECT count(DISTINCT worker) FROM public.bench_effects") == 4, "all four processes took part")
            #expect(try await count(db, "SELECT sum(completed)::int8 FROM gateway.job_stats WHERE stage = 'drain'") == Int64(total))
        }
    }

    @Test func killNineMidJobRunsItsJobsAgainAfterTheLeaseExactlyOnce() async throws {
        try await TestDatabase.withDatabase { db in
            try await Self.createEffects(db)
            let total = 300
            try await enqueue(db, (0..<total).map { _ in NewJob(stage: "crash", kind: "effect") })
            let config = try TestProcesses.configFile("log_level: warning\n")
            defer { try? FileManager.default.removeItem(atPath: config) }
            let env = TestProcesses.environment(for: db.config)
            let args = ["bench", "worker", "--config", config, "--stage", "crash", "--concurrency", "8", "--batch", "8",
                        "--lease-seconds", "2", "--sleep-ms", "100", "--transactional"]
            let victim = try TestProcesses.start("gatewayctl", args, environment: env)
            let survivor = try TestProcesses.start("gatewayctl", args, environment: env)
            let pid = victim.pid
            // Kill the victim while it holds leases on jobs whose effects have not committed.
            let busy = try await eventually(timeout: .seconds(60)) {
                guard try await count(db, "SELECT count(*) FROM public.bench_effects") >= 40 else { return false }
                return try await count(db, "SELECT count(*) FROM gateway.jobs WHERE state = 'running' AND lease_owner LIKE \("%:\(pid):%")") > 0
            }
            #expect(busy)
            let held = try await count(db, "SELECT count(*) FROM gateway.jobs WHERE state = 'running' AND lease_owner LIKE \("%:\(pid):%")")
            victim.signal(SIGKILL)
            _ = await victim.wait(timeout: .seconds(10))
            #expect(held > 0)
            let drained = try await eventually(timeout: .seconds(120), every: .milliseconds(200)) {
                try await count(db, "SELECT count(*) FROM gateway.jobs") == 0
            }
            survivor.signal(SIGTERM)
            #expect(await survivor.wait(timeout: .seconds(30)) == 0)
            #expect(drained)
            #expect(try await count(db, "SELECT count(*) FROM public.bench_effects") == Int64(total))
            #expect(try await count(db, "SELECT count(*) FROM public.bench_effects WHERE runs <> 1") == 0, "no effect ran twice")
            #expect(try await count(db, "SELECT count(*) FROM public.bench_effects WHERE attempt >= 2") >= 1,
                    "the victim's leased jobs ran again once their leases expired")
        }
    }

    @Test func aStageWorkerStartsClaimsAndStopsCleanlyOnSIGTERM() async throws {
        try await TestDatabase.withDatabase { db in
            try await enqueue(db, [NewJob(stage: .review, kind: "not-yet-implemented", ref: "withdrawal:1")])
            let port = Int.random(in: 20_000...40_000)
            let config = try TestProcesses.configFile("""
                log_level: info
                stages:
                  review:
                    poll_interval: 100ms
                    metrics_listen: 127.0.0.1:\(port)
                """)
            defer { try? FileManager.default.removeItem(atPath: config) }
            let p = try TestProcesses.start("review-worker", ["--config", config], environment: TestProcesses.environment(for: db.config))
            #expect(await p.waitForOutput("review-worker ready: stage=review", timeout: .seconds(20)), "one-line summary; output:\n\(p.output)")
            let dead = try await eventually { try await count(db, "SELECT count(*) FROM gateway.jobs WHERE state = 'dead'") == 1 }
            #expect(dead, "the claimed job of an unknown kind is recorded as dead with its reason")
            var error = ""
            for try await e in try await db.query("SELECT last_error FROM gateway.jobs").decode(String.self) { error = e }
            #expect(error.contains("no handler for job kind 'not-yet-implemented'"))

            let (body, status) = try await Self.get("http://127.0.0.1:\(port)/metrics")
            #expect(status == 200)
            #expect(body.contains("gateway_jobs") && body.contains("stage=\"review\"") && body.contains("status=\"dead\""), "metrics:\n\(body)")

            p.signal(SIGTERM)
            #expect(await p.wait(timeout: .seconds(15)) == 0, "graceful exit; output:\n\(p.output)")
            #expect(p.output.contains("worker stopped"))
        }
    }

    /// A systemd stop or a rolling deploy waits on the process: gateway-api once slept through SIGTERM for up to
    /// 60 s in its signature pruner while every other process had gone. The bound here is far below that minute.
    @Test func theAPIConsoleAndDevchainExitPromptlyOnSIGTERM() async throws {
        try await TestDatabase.withDatabase { db in
            let base = Int.random(in: 20_000...39_000)
            let config = try TestProcesses.configFile("""
                log_level: info
                api:
                  listen: 127.0.0.1:\(base)
                console:
                  listen: 127.0.0.1:\(base + 1)
                """)
            defer { try? FileManager.default.removeItem(atPath: config) }
            let processes: [(name: String, arguments: [String], ready: String)] = [
                ("gateway-api", ["--config", config], "gateway-api ready"),
                ("gateway-console", ["--config", config], "gateway-console ready"),
                ("devchain", ["--listen", "127.0.0.1:\(base + 2)", "--block-time-ms", "100"], "devchain listening"),
            ]
            for (name, arguments, ready) in processes {
                let p = try TestProcesses.start(name, arguments, environment: TestProcesses.environment(for: db.config))
                #expect(await p.waitForOutput(ready, timeout: .seconds(30)), "\(name) output:\n\(p.output)")
                p.signal(SIGTERM)
                let status = await p.wait(timeout: .seconds(10))
                if status == nil { p.signal(SIGKILL) }
                #expect(status == 0, "\(name) exits 0 within 10 s of SIGTERM; output:\n\(p.output)")
            }
        }
    }

    /// What the systemd template gives a signing worker: its seed as a credential, its metrics port as the instance.
    @Test func aSigningWorkerReadsItsSeedCredentialAndNamesAMissingOne() async throws {
        try await TestDatabase.withDatabase { db in
            let port = Int.random(in: 20_000...39_000)
            let config = try TestProcesses.configFile("""
                log_level: info
                wallet:
                  seed_credential: wallet-seed
                stages:
                  autopay:
                    metrics_listen: 127.0.0.1:\(port)
                """)
            let credentials = FileManager.default.temporaryDirectory.appendingPathComponent("credentials-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: credentials, withIntermediateDirectories: true)
            defer {
                try? FileManager.default.removeItem(atPath: config)
                try? FileManager.default.removeItem(at: credentials)
            }
            let env = TestProcesses.environment(for: db.config, extra: ["CREDENTIALS_DIRECTORY": credentials.path])
            let arguments = ["--config", config, "--metrics-port", "\(port + 1)"]
            let missing = try TestProcesses.start("autopay-worker", arguments, environment: env)
            let status = await missing.wait(timeout: .seconds(20))
            #expect(status != nil && status != 0, "no seed, no start")
            #expect(missing.output.contains("credential 'wallet-seed' is missing"), "output:\n\(missing.output)")

            try (String(repeating: "5e", count: 64) + "\n").write(to: credentials.appendingPathComponent("wallet-seed"), atomically: true, encoding: .utf8)
            let p = try TestProcesses.start("autopay-worker", arguments, environment: env)
            #expect(await p.waitForOutput("autopay-worker ready", timeout: .seconds(20)), "output:\n\(p.output)")
            #expect(p.output.contains("metrics=127.0.0.1:\(port + 1)"), "--metrics-port replaces the configured port")
            let (_, metricsStatus) = try await Self.get("http://127.0.0.1:\(port + 1)/metrics")
            #expect(metricsStatus == 200)
            #expect(!p.output.contains(String(repeating: "5e", count: 8)), "the seed is never logged")
            p.signal(SIGTERM)
            #expect(await p.wait(timeout: .seconds(45)) == 0, "output:\n\(p.output)")
        }
    }

    @Test func workersRefuseAnUnmigratedDatabase() async throws {
        try await TestDatabase.withDatabase(migrated: false) { db in
            let config = try TestProcesses.configFile("log_level: info\n")
            defer { try? FileManager.default.removeItem(atPath: config) }
            let p = try TestProcesses.start("callback-worker", ["--config", config], environment: TestProcesses.environment(for: db.config))
            let status = await p.wait(timeout: .seconds(20))
            #expect(status != nil && status != 0)
            #expect(p.output.contains("run `gatewayctl migrate` first"), "output:\n\(p.output)")

            let m = try TestProcesses.start("gatewayctl", ["migrate", "--config", config], environment: TestProcesses.environment(for: db.config))
            #expect(await m.wait(timeout: .seconds(30)) == 0, "output:\n\(m.output)")
            #expect(m.output.contains("schema is at version \(GatewaySchema.requiredVersion)"))
            let s = try TestProcesses.start("gatewayctl", ["status", "--config", config], environment: TestProcesses.environment(for: db.config))
            #expect(await s.wait(timeout: .seconds(30)) == 0)
            #expect(s.output.contains("callback") && s.output.contains("expired"), "output:\n\(s.output)")
        }
    }

    @Test func aConfigurationErrorNamesTheKey() async throws {
        let config = try TestProcesses.configFile("stages:\n  sweep:\n    leese: 30s\n")
        defer { try? FileManager.default.removeItem(atPath: config) }
        let p = try TestProcesses.start("sweep-worker", ["--config", config], environment: ProcessInfo.processInfo.environment)
        let status = await p.wait(timeout: .seconds(20))
        #expect(status != nil && status != 0)
        #expect(p.output.contains("stages.sweep.leese"), "output:\n\(p.output)")
    }

    static func get(_ url: String) async throws -> (String, Int) {
        let (data, response) = try await URLSession.shared.data(from: URL(string: url)!)
        return (String(decoding: data, as: UTF8.self), (response as? HTTPURLResponse)?.statusCode ?? 0)
    }
}
