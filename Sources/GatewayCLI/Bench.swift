import ArgumentParser
import Foundation
import GatewayCore
import GatewayRuntime
import Logging
import PostgresNIO
import ServiceLifecycle
import Synchronization

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmarks (run them from a release build).",
        subcommands: [QueueBench.self, APIBench.self, BenchWorker.self, AddressBench.self, ValidateBench.self, ScanBench.self, DepositBench.self, PayoutBench.self, SweepBench.self])
}

/// `gatewayctl bench queue`: enqueue N no-op jobs, drain them with W workers claiming B at a time.
struct QueueBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "queue",
        abstract: "Enqueue N no-op jobs, then drain them with W workers claiming B at a time; print jobs per second.",
        discussion: """
            Runs in a scratch database (<database>_bench on the configured cluster, created and \
            migrated when missing), never in the gateway's own. Commits are durable: nothing here \
            changes synchronous_commit. Prints `enqueue_single_jobs_per_s`, `enqueue_jobs_per_s` and \
            `drain_jobs_per_s` on lines of their own. Compare only with a peer run back to back on \
            the same cluster (README: Benchmarks).
            """)

    @OptionGroup var options: ProcessOptions
    @Option(help: "Jobs to enqueue and drain.") var jobs = 50_000
    @Option(help: "Of those, how many are enqueued one per transaction (the rest in batches of 1,000).") var single = 5_000
    @Option(help: "Concurrent workers, each with its own connections.") var workers = 5
    @Option(help: "Jobs claimed per statement (also each worker's slots).") var batch = 10
    @Option(help: "Scratch database name (default: <configured database>_bench).") var database: String?

    func validate() throws {
        guard jobs > 0, workers > 0, batch > 0 else { throw ValidationError("--jobs, --workers and --batch must be positive") }
        guard (0...jobs).contains(single) else { throw ValidationError("--single must be between 0 and --jobs") }
    }

    func run() async throws {
        var config = try options.loadConfig()
        Observability.bootstrapLogging(level: .warning)
        Observability.bootstrapMetrics()
        var logger = Logger(label: "gateway.bench")
        logger.logLevel = .warning
        config.database.database = database ?? config.database.database + "_bench"
        try ScratchDatabase.prepare(config.database, logger: logger)
        let stage = "bench"

        let db = Database(config: config.database, logger: logger)
        let (jobs, single, workers, batch) = (self.jobs, self.single, self.workers, self.batch)
        let cpu = Shared<[(String, String)]>([])
        let result = try await withThrowingTaskGroup(of: Void.self) { group -> (Double, Double, Double) in
            group.addTask { try? await db.run() }
            defer { group.cancelAll() }
            try await db.query("DELETE FROM gateway.jobs WHERE stage = \(stage)")
            try await db.query("VACUUM ANALYZE gateway.jobs")

            let job = NewJob(stage: stage, kind: "noop")
            var t0 = ContinuousClock.now
            for _ in 0..<single {
                try await db.transaction { conn in _ = try await JobQueue.enqueue(job, on: conn, logger: logger) }
            }
            let singleRate = single == 0 ? 0 : Double(single) / seconds(ContinuousClock.now - t0)
            t0 = ContinuousClock.now
            var left = jobs - single
            while left > 0 {
                let n = min(1000, left)
                try await db.transaction { conn in _ = try await JobQueue.enqueue(Array(repeating: job, count: n), on: conn, logger: logger) }
                left -= n
            }
            let batchedRate = jobs - single == 0 ? 0 : Double(jobs - single) / seconds(ContinuousClock.now - t0)
            try await db.query("ANALYZE gateway.jobs")

            let meter = await CPUMeter(db: db)
            let cpu0 = meter.read()
            let drained = try await Self.drain(config: config, stage: stage, jobs: jobs, workers: workers, batch: batch, logger: logger)
            let cpu1 = meter.read()
            cpu.withLock { $0 = CPUMeter.figures(from: cpu0, to: cpu1, count: jobs, unit: "job_drained") }
            var left2: Int64 = -1
            for try await n in try await db.query("SELECT count(*) FROM gateway.jobs WHERE stage = \(stage)").decode(Int64.self) { left2 = n }
            guard left2 == 0 else { throw ValidationError("drain finished with \(left2) jobs still in the queue") }
            return (singleRate, batchedRate, Double(jobs) / drained)
        }
        print("jobs \(jobs) workers \(workers) batch \(batch) database \(config.database.database)")
        print("enqueue_single_jobs_per_s \(Int(result.0))")
        print("enqueue_jobs_per_s \(Int(result.1))")
        print("drain_jobs_per_s \(Int(result.2))")
        for (name, value) in cpu.withLock({ $0 }) { print("\(name) \(value)") }
    }

    /// Drains `jobs` no-op jobs with `workers` in-process workers; returns the seconds it took,
    /// including the final flush of completions.
    static func drain(config: GatewayConfig, stage: String, jobs: Int, workers: Int, batch: Int, logger: Logger) async throws -> Double {
        let counter = Atomic<Int>(0)
        let (doneStream, done) = AsyncStream<Void>.makeStream()
        let handler = ClosureJobHandler { _ in
            if counter.add(1, ordering: .relaxed).newValue == jobs { done.yield() }
            return .completed
        }
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        var workerServices: [ServiceGroupConfiguration.ServiceConfiguration] = []
        for i in 0..<workers {
            var dbConfig = config.database
            dbConfig.poolSize = 3
            let db = Database(config: dbConfig, logger: logger)
            services.append(.init(service: db))
            let wc = WorkerConfig(concurrency: batch, batchSize: batch, pollInterval: .milliseconds(200), lease: .seconds(60),
                                  maxAttempts: 5, shutdownGrace: .seconds(30))
            workerServices.append(.init(service: QueueWorker(
                database: db, settings: .init(stage: stage, config: wc, workerID: "bench-\(i)", handlers: ["noop": handler]), logger: logger)))
        }
        let group = ServiceGroup(configuration: .init(services: services + workerServices, logger: logger))
        let t0 = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            for await _ in doneStream { break }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        return seconds(ContinuousClock.now - t0)
    }
}

/// `gatewayctl bench worker`: a worker process whose jobs record a side effect, used by the
/// multi-process tests (several processes, kill -9) and for load experiments.
struct BenchWorker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Run a worker whose jobs count their runs in public.bench_effects (job_id bigint PRIMARY KEY, runs int, worker text, attempt int).",
        discussion: "The table must exist. With --transactional the effect and the job's completion commit together (exactly once).")

    @OptionGroup var options: ProcessOptions
    @Option(help: "Stage to claim from.") var stage = "bench"
    @Option(help: "Slots.") var concurrency = 8
    @Option(help: "Jobs per claim.") var batch = 10
    @Option(help: "Lease in seconds.") var leaseSeconds = 60
    @Option(help: "Milliseconds each job sleeps before its effect.") var sleepMs = 0
    @Flag(help: "Write the effect and complete the job in one transaction.") var transactional = false

    func run() async throws {
        let config = try options.loadConfig()
        Observability.bootstrapLogging(level: config.logLevel)
        Observability.bootstrapMetrics()
        var logger = Logger(label: "gateway.bench")
        logger.logLevel = config.logLevel
        let database = Database(config: config.database, logger: logger)
        let (sleepMs, transactional) = (self.sleepMs, self.transactional)
        let handler = ClosureJobHandler { ctx in
            if sleepMs > 0 { try await Task.sleep(for: .milliseconds(sleepMs)) }
            let id = ctx.job.id
            let worker = ctx.workerID
            try await ctx.database.transaction { conn in
                try await conn.query("""
                    INSERT INTO public.bench_effects (job_id, runs, worker, attempt) VALUES (\(id), 1, \(worker), \(Int32(ctx.job.attempt)))
                    ON CONFLICT (job_id) DO UPDATE SET runs = public.bench_effects.runs + 1
                    """, logger: ctx.logger)
                if transactional { try await ctx.complete(in: conn) }
            }
            return transactional ? .completedInTransaction : .completed
        }
        let wc = WorkerConfig(concurrency: concurrency, batchSize: batch, pollInterval: .milliseconds(100), lease: .seconds(Int64(leaseSeconds)),
                              maxAttempts: 10, shutdownGrace: .seconds(10))
        let worker = QueueWorker(database: database, settings: .init(stage: stage, config: wc, handlers: ["effect": handler]), logger: logger)
        let summary = "bench worker ready: stage=\(stage) id=\(worker.settings.workerID)"
        try await StageRunner.runServices([
            .init(service: database),
            .init(service: StartupGate(database: database, logger: logger, summary: { summary }, then: worker)),
        ], logger: logger)
    }
}

/// Creates (when missing) and migrates a scratch database next to the configured one, and drops the
/// queue's jobs earlier runs left there: their callbacks to a receiver that is gone, planner and
/// confirmation jobs of another benchmark's chain would compete with this run (a deposit benchmark after
/// sweep benchmarks waited behind 16,000 such callbacks and timed out).
enum ScratchDatabase {
    static func prepare(_ db: DatabaseConfig, logger: Logger) throws {
        var admin = db
        admin.database = "postgres"
        let m = try Migrator(connectionString: admin.libpqConnectionString, logger: logger)
        let exists = try m.exec("SELECT 1 FROM pg_database WHERE datname = '\(db.database.replacingOccurrences(of: "'", with: "''"))'")
        if exists.isEmpty { try m.exec("CREATE DATABASE \"\(db.database.replacingOccurrences(of: "\"", with: "\"\""))\"") }
        guard let dir = GatewaySchema.locateSQLDirectory() else { throw ValidationError("cannot find the sql/ folder; set GATEWAY_SQL_DIR") }
        let scratch = try Migrator(connectionString: db.libpqConnectionString, logger: logger)
        try scratch.migrate(try GatewaySchema.loadMigrations(directory: dir))
        try scratch.exec("DELETE FROM gateway.jobs")
    }
}

func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }

/// CPU time spent during a benchmark's timed window, so that a change can be judged by the work it
/// saves, not only by a throughput that moves ±25 % with whatever else shares the machine. `process`
/// is this process (getrusage: the gateway's stages, and whatever the bench runs in-process: devchain,
/// the merchant's receiver); `postgres` is the bench database's server (its postmaster and every
/// process it started: backends, WAL writer, checkpointer, autovacuum), found through
/// `pg_backend_pid()`, when that server runs on this machine (/proc); nil otherwise.
struct CPUMeter {
    struct Reading { var process: Double; var postgres: Double? }
    /// The postmaster's pid: the parent of one of the bench's backends.
    let postmaster: Int32?

    init(db: Database) async {
        var backend: Int32?
        do {
            for try await pid in try await db.query("SELECT pg_backend_pid()").decode(Int32.self) { backend = pid }
        } catch {}
        postmaster = backend.flatMap { Self.stat($0)?.ppid }
    }

    func read() -> Reading {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        func secs(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
        return Reading(process: secs(usage.ru_utime) + secs(usage.ru_stime), postgres: postmaster.flatMap(Self.serverSeconds))
    }

    /// utime + stime, in seconds, of the postmaster and its children: those running, and those it has reaped (its
    /// cutime + cstime: backends whose connections closed within the window, as a benchmark's workers' do at its end).
    static func serverSeconds(_ postmaster: Int32) -> Double? {
        guard let pids = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return nil }
        var total = 0.0, found = false
        for name in pids {
            guard let pid = Int32(name), let s = stat(pid), pid == postmaster || s.ppid == postmaster else { continue }
            total += s.cpu + (pid == postmaster ? s.reapedChildren : 0)
            found = true
        }
        return found ? total : nil
    }

    /// /proc/<pid>/stat: parent pid, utime + stime, and cutime + cstime (children reaped), in seconds.
    static func stat(_ pid: Int32) -> (ppid: Int32, cpu: Double, reapedChildren: Double)? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = text.lastIndex(of: ")") else { return nil }
        // After "(comm) ": state, ppid, … ; utime, stime, cutime, cstime are fields 14 to 17 of the whole line.
        let rest = text[text.index(close, offsetBy: 2)...].split(separator: " ")
        guard rest.count > 14, let ppid = Int32(rest[1]), let u = Double(rest[11]), let s = Double(rest[12]), let cu = Double(rest[13]),
            let cs = Double(rest[14])
        else { return nil }
        let tick = Double(sysconf(Int32(_SC_CLK_TCK)))
        return (ppid, (u + s) / tick, (cu + cs) / tick)
    }

    /// `process_cpu_ms_per_<unit>` and `postgres_cpu_ms_per_<unit>` for the window between two readings.
    static func figures(from a: Reading, to b: Reading, count: Int, unit: String) -> [(String, String)] {
        func ms(_ s: Double) -> String { String(format: "%.2f", s * 1000 / Double(max(count, 1))) }
        var out = [("process_cpu_ms_per_\(unit)", ms(b.process - a.process))]
        if let p0 = a.postgres, let p1 = b.postgres { out.append(("postgres_cpu_ms_per_\(unit)", ms(p1 - p0))) }
        return out
    }
}
