import Foundation
import GatewayCore
import GatewayRuntime
import GatewayTesting
import Logging
import PostgresNIO
import ServiceLifecycle
import ServiceLifecycleTestKit
import Synchronization
import Testing

/// Collects values from handlers running in other tasks.
final class Recorder<T: Sendable>: Sendable {
    let values = Mutex<[T]>([])
    func add(_ v: T) { values.withLock { $0.append(v) } }
    var all: [T] { values.withLock { $0 } }
}

func fastConfig(concurrency: Int = 4, batch: Int = 4, poll: Duration = .milliseconds(50), lease: Duration = .seconds(30),
                maxAttempts: Int = 5, grace: Duration = .seconds(5)) -> WorkerConfig {
    WorkerConfig(concurrency: concurrency, batchSize: batch, pollInterval: poll, lease: lease, maxAttempts: maxAttempts,
                 backoff: BackoffPolicy(base: .milliseconds(10), factor: 2, cap: .milliseconds(40)), shutdownGrace: grace)
}

/// Runs a worker until `until` holds, then shuts it down gracefully; fails if it does not hold in time.
func runWorker(_ db: Database, stage: String = "t", config: WorkerConfig = fastConfig(), handlers: [String: any JobHandler],
               timeout: Duration = .seconds(20), until: @escaping @Sendable () async throws -> Bool) async throws {
    let worker = QueueWorker(database: db, settings: .init(stage: stage, config: config, handlers: handlers), logger: log)
    try await testGracefulShutdown { trigger in
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await worker.run() }
            let ok = try await eventually(timeout: timeout, until)
            trigger.triggerGracefulShutdown()
            try await group.waitForAll()
            #expect(ok, "condition not reached in time")
        }
    }
}

func enqueue(_ db: Database, _ jobs: [NewJob]) async throws {
    try await db.transaction { c in _ = try await JobQueue.enqueue(jobs, on: c, logger: log) }
}

@Suite struct WorkerTests {
    /// A failover is nothing the job did: it runs again without spending an attempt, so none goes dead for it.
    @Test func aJobMeetingAnUnavailableDatabaseRunsAgainWithoutSpendingAnAttempt() async throws {
        try await TestDatabase.withDatabase { db in
            try await enqueue(db, [NewJob(stage: "t", kind: "failover")])
            let runs = Recorder<Int>()
            let h = ClosureJobHandler { ctx in
                runs.add(ctx.job.attempt)
                if runs.all.count < 4 { throw NoWritablePrimary(tried: []) }
                return .completed
            }
            try await runWorker(db, config: fastConfig(maxAttempts: 2), handlers: ["failover": h]) {
                try await count(db, "SELECT count(*) FROM gateway.jobs") == 0
            }
            #expect(runs.all == [1, 1, 1, 1], "four runs, never past the first attempt (max_attempts 2)")
            #expect(try await count(db, "SELECT coalesce(sum(dead), 0)::int8 FROM gateway.job_stats") == 0)
        }
    }

    @Test func transientFailuresRetryWithBackoffThenSucceed() async throws {
        try await TestDatabase.withDatabase { db in
            let attempts = Recorder<Int>()
            try await enqueue(db, [NewJob(stage: "t", kind: "flaky")])
            struct Flaky: Error {}
            let h = ClosureJobHandler { ctx in
                attempts.add(ctx.job.attempt)
                if ctx.job.attempt < 3 { throw Flaky() }
                return .completed
            }
            try await runWorker(db, handlers: ["flaky": h]) { try await count(db, "SELECT count(*) FROM gateway.jobs") == 0 }
            #expect(attempts.all == [1, 2, 3])
            #expect(try await count(db, "SELECT sum(retried)::int8 FROM gateway.job_stats") == 2)
        }
    }

    @Test func permanentErrorsAndUnknownKindsGoDeadAtOnce() async throws {
        try await TestDatabase.withDatabase { db in
            let runs = Recorder<Int64>()
            try await enqueue(db, [NewJob(stage: "t", kind: "bad"), NewJob(stage: "t", kind: "mystery")])
            let h = ClosureJobHandler { ctx in
                runs.add(ctx.job.id)
                throw PermanentJobError("destination is not a valid address")
            }
            try await runWorker(db, handlers: ["bad": h]) { try await count(db, "SELECT count(*) FROM gateway.jobs WHERE state = 'dead'") == 2 }
            #expect(runs.all.count == 1)
            var errors: [String: String] = [:]
            for try await (k, e) in try await db.query("SELECT kind, last_error FROM gateway.jobs").decode((String, String).self) { errors[k] = e }
            #expect(errors["bad"] == "destination is not a valid address")
            #expect(errors["mystery"]?.contains("no handler for job kind 'mystery'") == true)
        }
    }

    @Test func aJobThatKeepsFailingDiesAfterMaxAttempts() async throws {
        try await TestDatabase.withDatabase { db in
            let runs = Recorder<Int>()
            try await enqueue(db, [NewJob(stage: "t", kind: "k", maxAttempts: 3)])
            struct Down: Error, CustomStringConvertible { var description: String { "node down" } }
            let h = ClosureJobHandler { ctx in
                runs.add(ctx.job.attempt)
                throw Down()
            }
            try await runWorker(db, handlers: ["k": h]) { try await count(db, "SELECT count(*) FROM gateway.jobs WHERE state = 'dead'") == 1 }
            #expect(runs.all == [1, 2, 3])
            var err = ""
            for try await e in try await db.query("SELECT last_error FROM gateway.jobs").decode(String.self) { err = e }
            #expect(err.contains("node down") && err.contains("gave up after 3 attempts"))
        }
    }

    @Test func snoozeWaitsWithoutSpendingAttempts() async throws {
        try await TestDatabase.withDatabase { db in
            let attempts = Recorder<Int>()
            try await enqueue(db, [NewJob(stage: "t", kind: "k", maxAttempts: 1)])
            let h = ClosureJobHandler { ctx in
                attempts.add(ctx.job.attempt)
                return attempts.all.count < 4 ? .snooze(.milliseconds(20)) : .completed
            }
            try await runWorker(db, handlers: ["k": h]) { try await count(db, "SELECT count(*) FROM gateway.jobs") == 0 }
            #expect(attempts.all == [1, 1, 1, 1], "a snooze gives the attempt back, so max_attempts 1 is never exceeded")
        }
    }

    @Test func notifyWakesAnIdleWorkerLongBeforeItsPoll() async throws {
        try await TestDatabase.withDatabase { db in
            let done = Recorder<String>()
            let h = ClosureJobHandler { ctx in
                done.add(ctx.job.kind)
                return .completed
            }
            try await enqueue(db, [NewJob(stage: "t", kind: "first")])
            try await runWorker(db, config: fastConfig(poll: .seconds(3600)), handlers: ["first": h, "second": h], timeout: .seconds(10)) {
                if done.all == ["first"], try await count(db, "SELECT count(*) FROM gateway.jobs") == 0 {
                    // The worker is idle now and will not poll for an hour: only NOTIFY can wake it.
                    try await enqueue(db, [NewJob(stage: "t", kind: "second")])
                    done.add("enqueued")
                }
                return done.all.contains("second")
            }
            #expect(done.all == ["first", "enqueued", "second"])
        }
    }

    @Test func gracefulShutdownFinishesInFlightJobs() async throws {
        try await TestDatabase.withDatabase { db in
            let started = Recorder<Int64>(), finished = Recorder<Int64>()
            try await enqueue(db, (0..<3).map { _ in NewJob(stage: "t", kind: "slow") })
            let h = ClosureJobHandler { ctx in
                started.add(ctx.job.id)
                try await Task.sleep(for: .milliseconds(400))
                finished.add(ctx.job.id)
                return .completed
            }
            // Shut down as soon as all three are running.
            try await runWorker(db, handlers: ["slow": h]) { started.all.count == 3 }
            #expect(finished.all.count == 3, "in-flight jobs run to the end within the grace period")
            #expect(try await count(db, "SELECT count(*) FROM gateway.jobs") == 0, "and their completions are recorded")
        }
    }

    @Test func aRunWhoseLeaseWasLostIsGivenUpAndItsSlotServesTheNextJob() async throws {
        try await TestDatabase.withDatabase { db in
            let ran = Recorder<String>()
            try await enqueue(db, [NewJob(stage: "t", kind: "stuck")])
            // A handler stuck for good, deaf to cancellation (as one waiting on a connection that died under it).
            let stuck = ClosureJobHandler { _ in
                ran.add("stuck")
                await withCheckedContinuation { (_: CheckedContinuation<Void, Never>) in }
                return .completed
            }
            let next = ClosureJobHandler { _ in
                ran.add("next")
                return .completed
            }
            try await runWorker(db, config: fastConfig(concurrency: 1, batch: 1, lease: .seconds(1), grace: .milliseconds(200)),
                                handlers: ["stuck": stuck, "next": next]) {
                if ran.all == ["stuck"] {
                    // Another owner takes the job (a new lease token, its lease running an hour), and another job waits
                    // behind the only slot.
                    try await db.execute("UPDATE gateway.jobs SET lease_token = gen_random_uuid(), run_at = now() + interval '1 hour' WHERE kind = 'stuck'")
                    try await enqueue(db, [NewJob(stage: "t", kind: "next")])
                    ran.add("stolen")
                }
                return ran.all.contains("next")
            }
            #expect(ran.all == ["stuck", "stolen", "next"], "the lost run was given up and its slot claimed the next job")
        }
    }

    @Test func jobsStillRunningWhenGraceEndsAreReleased() async throws {
        try await TestDatabase.withDatabase { db in
            let started = Recorder<Int64>()
            try await enqueue(db, [NewJob(stage: "t", kind: "stuck")])
            let h = ClosureJobHandler { ctx in
                started.add(ctx.job.id)
                try await Task.sleep(for: .seconds(60))
                return .completed
            }
            let t0 = ContinuousClock.now
            try await runWorker(db, config: fastConfig(grace: .milliseconds(200)), handlers: ["stuck": h]) { started.all.count == 1 }
            #expect(ContinuousClock.now - t0 < .seconds(10))
            var row: (String, Int32, Bool)?
            for try await r in try await db.query("SELECT state, attempt, lease_token IS NULL FROM gateway.jobs").decode((String, Int32, Bool).self) { row = r }
            #expect(row?.0 == "ready" && row?.1 == 0 && row?.2 == true, "released for another worker, attempt given back")
        }
    }

    @Test func heartbeatsKeepALongJobsLease() async throws {
        try await TestDatabase.withDatabase { db in
            try await enqueue(db, [NewJob(stage: "t", kind: "long")])
            let stolen = Recorder<Int64>()
            let finished = Recorder<Bool>()
            let h = ClosureJobHandler { ctx in
                // Outlive the 2 s lease twice over while another claimer keeps trying.
                for _ in 0..<40 {
                    try await Task.sleep(for: .milliseconds(100))
                    let got = try await claim(db, stage: "t", limit: 1, worker: "thief", lease: .seconds(30))
                    for j in got { stolen.add(j.id) }
                }
                finished.add(true)
                return .completed
            }
            try await runWorker(db, config: fastConfig(lease: .seconds(2)), handlers: ["long": h]) {
                guard finished.all.count == 1 else { return false }
                return try await count(db, "SELECT count(*) FROM gateway.jobs") == 0
            }
            #expect(stolen.all.isEmpty, "the lease was renewed, so nobody else could claim the job")
        }
    }

    @Test func completionInsideTheHandlersTransactionIsExactlyOnce() async throws {
        try await TestDatabase.withDatabase { db in
            try await db.transaction { c in try await c.query("CREATE TABLE effects (job_id bigint PRIMARY KEY)", logger: log) }
            try await enqueue(db, (0..<20).map { _ in NewJob(stage: "t", kind: "tx") })
            let h = ClosureJobHandler { ctx in
                try await ctx.database.transaction { c in
                    try await c.query("INSERT INTO effects VALUES (\(ctx.job.id))", logger: log)
                    try await ctx.complete(in: c)
                }
                return .completedInTransaction
            }
            try await runWorker(db, handlers: ["tx": h]) { try await count(db, "SELECT count(*) FROM gateway.jobs") == 0 }
            #expect(try await count(db, "SELECT count(*) FROM effects") == 20)

            // A handler whose lease is gone cannot commit its effect.
            try await enqueue(db, [NewJob(stage: "t", kind: "tx")])
            let job = try #require(try await claim(db, stage: "t", limit: 1, worker: "w").first)
            try await db.transaction { c in try await c.query("UPDATE gateway.jobs SET lease_token = gen_random_uuid()", logger: log) }
            let ctx = JobContext(job: job, database: db, logger: log, workerID: "w")
            await #expect(throws: LeaseLost.self) {
                try await db.transaction { c in
                    try await c.query("INSERT INTO effects VALUES (\(job.id))", logger: log)
                    try await ctx.complete(in: c)
                }
            }
            #expect(try await count(db, "SELECT count(*) FROM effects") == 20)
        }
    }
}
