import Foundation
import GatewayCore
import GatewayRuntime
import GatewayTesting
import Logging
import PostgresNIO
import Testing

/// The per-minute history behind the console's pipeline charts (gateway.pipeline_samples).
@Suite struct PipelineSampleTests {
    /// The sample of `kind` and `key` for the current minute, or nil.
    static func sample(_ db: Database, _ kind: String, _ key: String) async throws -> Double? {
        var value: Double?
        for try await v in try await db.query("""
            SELECT value FROM gateway.pipeline_samples WHERE kind = \(kind) AND key = \(key) AND minute = date_trunc('minute', now())
            """).decode(Double.self) { value = v }
        return value
    }

    static func job(_ db: Database, stage: String, state: String, runAtSecondsAgo: Double, priority: Int16 = 0) async throws {
        try await db.transaction { c in
            try await c.query("""
                INSERT INTO gateway.jobs (stage, kind, state, run_at, priority, died_at)
                VALUES (\(stage), 'k', \(state), now() - make_interval(secs => \(runAtSecondsAgo)), \(priority), CASE WHEN \(state) = 'dead' THEN now() END)
                """, logger: log)
        }
    }

    @Test func theOldestReadyAgeCountsOnlyDueReadyJobsOfTheStageAndTheMinuteKeepsTheGreatest() async throws {
        try await TestDatabase.withDatabase { db in
            // Nothing due: 0, so a chart tells "nothing waits" from "nobody measured" (no row).
            try await db.transaction { c in try await PipelineSamples.recordOldestReady(stage: "t", on: c, logger: log) }
            #expect(try await Self.sample(db, "oldest_ready", "t") == 0)

            try await Self.job(db, stage: "t", state: "ready", runAtSecondsAgo: 30)
            try await Self.job(db, stage: "t", state: "ready", runAtSecondsAgo: 95, priority: 5)   // a later priority: still the oldest
            try await Self.job(db, stage: "t", state: "ready", runAtSecondsAgo: -600)             // scheduled, not due
            try await Self.job(db, stage: "t", state: "running", runAtSecondsAgo: 500)            // an expired lease: not "ready" (as monitor.queue)
            try await Self.job(db, stage: "t", state: "dead", runAtSecondsAgo: 900)
            try await Self.job(db, stage: "other", state: "ready", runAtSecondsAgo: 700)
            try await db.transaction { c in try await PipelineSamples.recordOldestReady(stage: "t", on: c, logger: log) }
            let age = try #require(try await Self.sample(db, "oldest_ready", "t"))
            #expect(age >= 95 && age < 95 + 30, "the priority-5 job due 95 s ago: \(age)")

            // Another copy of the worker seeing less (its job was just claimed) does not lower the minute.
            try await db.transaction { c in try await c.query("DELETE FROM gateway.jobs WHERE stage = 't' AND priority = 5", logger: log) }
            try await db.transaction { c in try await PipelineSamples.recordOldestReady(stage: "t", on: c, logger: log) }
            #expect(try await Self.sample(db, "oldest_ready", "t") == age)
            try await db.transaction { c in try await PipelineSamples.record(.oldestReady, key: "t", value: age + 100, on: c, logger: log) }
            #expect(try await Self.sample(db, "oldest_ready", "t") == age + 100, "a greater value wins")
            #expect(try await count(db, "SELECT count(*) FROM gateway.pipeline_samples WHERE key = 'other'") == 0)
        }
    }

    @Test func aWorkerRecordsItsStagesOldestReadyJobWhileItRuns() async throws {
        try await TestDatabase.withDatabase { db in
            // One slot, held by a job that waits for the test: the second job stays ready, due 90 s ago.
            let release = Recorder<Bool>()
            let seen = Recorder<Double>()
            let blocker = ClosureJobHandler { _ in
                while release.all.isEmpty { try await Task.sleep(for: .milliseconds(20)) }
                return .completed
            }
            try await Self.job(db, stage: "t", state: "ready", runAtSecondsAgo: 100)
            try await Self.job(db, stage: "t", state: "ready", runAtSecondsAgo: 90)
            try await runWorker(db, config: fastConfig(concurrency: 1, batch: 1, lease: .seconds(3)), handlers: ["k": blocker]) {
                if seen.all.isEmpty, let age = try await Self.sample(db, "oldest_ready", "t") {
                    seen.add(age)
                    release.add(true)
                }
                guard !seen.all.isEmpty else { return false }
                return try await count(db, "SELECT count(*) FROM gateway.jobs WHERE stage = 't'") == 0
            }
            let age = try #require(seen.all.first)
            #expect(age >= 90 && age < 90 + 30, "the waiting job's age: \(age)")
        }
    }

    @Test func samplesOlderThanTheRetentionArePruned() async throws {
        try await TestDatabase.withDatabase { db in
            try await db.transaction { c in
                try await c.query("""
                    INSERT INTO gateway.pipeline_samples (kind, key, minute, value) VALUES
                      ('chain_lag', 'tron', date_trunc('minute', now()) - interval '3 hours', 9),
                      ('oldest_ready', 'review', date_trunc('minute', now()) - interval '125 minutes', 4),
                      ('chain_lag', 'tron', date_trunc('minute', now()) - interval '70 minutes', 5),
                      ('oldest_ready', 'review', date_trunc('minute', now()) - interval '1 minute', 2)
                    """, logger: log)
                try await PipelineSamples.prune(on: c, logger: log)
            }
            #expect(try await count(db, "SELECT count(*) FROM gateway.pipeline_samples") == 2, "kept: the last two hours")
            #expect(try await count(db, "SELECT count(*) FROM gateway.pipeline_samples WHERE minute < now() - interval '2 hours'") == 0)
        }
    }

    @Test func theScheduleWritesOncePerMinuteAndAgainWhenTheValueGrows() {
        var s = SampleSchedule()
        let t = Date(timeIntervalSince1970: 1_800_000_000)   // 08:00:00 UTC: a minute's start
        var taken: [Bool] = []
        for (value, after) in [(5.0, 0.0), (5, 10), (3, 20), (8, 30), (8, 59), (1, 60)] { taken.append(s.take(value, at: t.addingTimeInterval(after))) }
        // The first look writes; the same or a smaller value in that minute does not (the row keeps the
        // greater); a grown one does; a new minute does.
        #expect(taken == [true, false, false, true, false, true])
        s.reset()
        let afterFailure = s.take(1, at: t.addingTimeInterval(61))
        #expect(afterFailure, "after a failed write: again")
    }
}
