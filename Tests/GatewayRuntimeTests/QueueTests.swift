import Foundation
import GatewayCore
import GatewayRuntime
import GatewayTesting
import Logging
import PostgresNIO
import Testing

let log = TestDatabase.logger

func count(_ db: Database, _ sql: PostgresQuery) async throws -> Int64 {
    var n: Int64 = -1
    for try await v in try await db.query(sql).decode(Int64.self) { n = v }
    return n
}

func claim(_ db: Database, stage: String, limit: Int, worker: String, lease: Duration = .seconds(60)) async throws -> [ClaimedJob] {
    try await db.transaction { c in
        try await JobQueue.claim(stage: stage, limit: limit, worker: worker, lease: lease, on: c, logger: log).map(\.job)
    }
}

@Suite struct QueueTests {
    /// A claim whose commit's outcome is unknown (a failover) is read back by the token it leased its jobs with.
    @Test func whatAClaimTookIsReadBackByItsToken() async throws {
        try await TestDatabase.withDatabase { db in
            try await db.transaction { c in _ = try await JobQueue.enqueue([NewJob(stage: "t", kind: "a"), NewJob(stage: "t", kind: "b")], on: c, logger: log) }
            let token = UUID()
            let took = try await db.transaction { c in
                try await JobQueue.claim(stage: "t", limit: 5, worker: "w", lease: .seconds(60), token: token, on: c, logger: log).map(\.job)
            }
            let back = try await db.transaction { c in try await JobQueue.claimed(token: token, stage: "t", on: c, logger: log).map(\.job) }
            #expect(Set(back.map(\.id)) == Set(took.map(\.id)) && back.count == 2)
            #expect(back.allSatisfy { $0.leaseToken == token && $0.attempt == 1 })
            let other = try await db.transaction { c in try await JobQueue.claimed(token: UUID(), stage: "t", on: c, logger: log) }
            #expect(other.isEmpty)
        }
    }

    @Test func enqueueRollsBackWithItsTransaction() async throws {
        try await TestDatabase.withDatabase { db in
            struct Boom: Error {}
            await #expect(throws: Boom.self) {
                try await db.transaction { c in
                    try await JobQueue.enqueue(NewJob(stage: "t", kind: "k"), on: c, logger: log)
                    throw Boom()
                }
            }
            #expect(try await count(db, "SELECT count(*) FROM gateway.jobs") == 0)
            try await db.transaction { c in try await JobQueue.enqueue(NewJob(stage: "t", kind: "k"), on: c, logger: log) }
            #expect(try await count(db, "SELECT count(*) FROM gateway.jobs") == 1)
        }
    }

    @Test func batchResultsAreInOrderAndDuplicatesReportThemselves() async throws {
        try await TestDatabase.withDatabase { db in
            let jobs = [
                NewJob(stage: "t", kind: "a", uniqueKey: "k1"), NewJob(stage: "t", kind: "b"),
                NewJob(stage: "t", kind: "c", uniqueKey: "k1"), NewJob(stage: "t", kind: "d", uniqueKey: "k2"),
                NewJob(stage: "u", kind: "e", uniqueKey: "k1"),
            ]
            let r = try await db.transaction { c in try await JobQueue.enqueue(jobs, on: c, logger: log) }
            #expect(r.count == 5)
            #expect(!r[0].isDuplicate && !r[1].isDuplicate && !r[3].isDuplicate && !r[4].isDuplicate)
            #expect(r[2] == .duplicate(existingID: r[0].id))
            var kinds: [Int64: String] = [:]
            for try await (id, kind) in try await db.query("SELECT id, kind FROM gateway.jobs").decode((Int64, String).self) { kinds[id] = kind }
            #expect(kinds[r[0].id!] == "a" && kinds[r[1].id!] == "b" && kinds[r[3].id!] == "d" && kinds[r[4].id!] == "e")
            #expect(kinds.count == 4)
            let again = try await db.transaction { c in try await JobQueue.enqueue(NewJob(stage: "t", kind: "x", uniqueKey: "k2"), on: c, logger: log) }
            #expect(again == .duplicate(existingID: r[3].id))
        }
    }

    @Test func aUniqueKeyDedupesUnderConcurrency() async throws {
        try await TestDatabase.withDatabase { db in
            let results = try await withThrowingTaskGroup(of: EnqueueResult.self) { group in
                for _ in 0..<8 {
                    group.addTask {
                        try await db.transaction { c in
                            let r = try await JobQueue.enqueue(NewJob(stage: "t", kind: "k", uniqueKey: "same"), on: c, logger: log)
                            try await c.query("SELECT pg_sleep(0.05)", logger: log)
                            return r
                        }
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(results.filter { !$0.isDuplicate }.count == 1)
            #expect(results.filter(\.isDuplicate).count == 7)
            #expect(try await count(db, "SELECT count(*) FROM gateway.jobs") == 1)
            // Once the job finished, the key is free again.
            let job = try await claim(db, stage: "t", limit: 1, worker: "w")
            _ = try await db.transaction { c in try await JobQueue.complete([(job[0].id, job[0].leaseToken)], on: c, logger: log) }
            let next = try await db.transaction { c in try await JobQueue.enqueue(NewJob(stage: "t", kind: "k", uniqueKey: "same"), on: c, logger: log) }
            #expect(!next.isDuplicate)
        }
    }

    @Test func oneNotificationPerTransaction() async throws {
        try await TestDatabase.withDatabase { db in
            let payloads = try await db.withConnection { conn in
                try await conn.listen(on: JobQueue.notifyChannel) { notifications -> [String] in
                    try await db.transaction { c in
                        for _ in 0..<20 { try await JobQueue.enqueue(NewJob(stage: "t", kind: "k"), on: c, logger: log) }
                        try await JobQueue.enqueue((0..<30).map { _ in NewJob(stage: "t", kind: "k") }, on: c, logger: log)
                    }
                    // Notifications arrive in commit order: the marker's arrival means all before it arrived.
                    try await db.transaction { c in try await JobQueue.enqueue(NewJob(stage: "marker", kind: "k"), on: c, logger: log) }
                    var seen: [String] = []
                    for try await n in notifications {
                        seen.append(n.payload)
                        if n.payload == "marker" { break }
                    }
                    return seen
                }
            }
            #expect(payloads == ["t", "marker"])
        }
    }

    @Test func claimsAreDisjointWithFourConcurrentClaimers() async throws {
        try await TestDatabase.withDatabase { db in
            let total = 2000
            try await db.transaction { c in
                try await JobQueue.enqueue((0..<total).map { _ in NewJob(stage: "t", kind: "k") }, on: c, logger: log)
            }
            let perClaimer = try await withThrowingTaskGroup(of: [Int64].self) { group in
                for w in 0..<4 {
                    group.addTask {
                        var mine: [Int64] = []
                        while true {
                            let got = try await claim(db, stage: "t", limit: 25, worker: "w\(w)")
                            if got.isEmpty { return mine }
                            mine += got.map(\.id)
                        }
                    }
                }
                return try await group.reduce(into: [[Int64]]()) { $0.append($1) }
            }
            let all = perClaimer.flatMap { $0 }
            #expect(all.count == total)
            #expect(Set(all).count == total)
            #expect(perClaimer.filter { !$0.isEmpty }.count >= 2, "the claimers should have shared the work")
        }
    }

    @Test func aStaleCompletionIsRejected() async throws {
        try await TestDatabase.withDatabase { db in
            try await db.transaction { c in try await JobQueue.enqueue(NewJob(stage: "t", kind: "k"), on: c, logger: log) }
            let a = try #require(try await claim(db, stage: "t", limit: 1, worker: "A").first)
            #expect(a.attempt == 1)
            #expect(try await claim(db, stage: "t", limit: 1, worker: "B").isEmpty, "a leased job is not claimable")
            // A's lease expires (as if A hung).
            try await db.transaction { c in try await c.query("UPDATE gateway.jobs SET run_at = now() - interval '1 second'", logger: log) }
            let b = try #require(try await claim(db, stage: "t", limit: 1, worker: "B").first)
            #expect(b.id == a.id && b.attempt == 2 && b.leaseToken != a.leaseToken)

            let stale = try await db.transaction { c in
                (try await JobQueue.complete([(a.id, a.leaseToken)], on: c, logger: log),
                 try await JobQueue.reschedule([.init(id: a.id, token: a.leaseToken, delay: .zero, error: "x", refund: false)], on: c, logger: log),
                 try await JobQueue.kill([(a.id, a.leaseToken, "x")], on: c, logger: log),
                 try await JobQueue.heartbeat([(a.id, a.leaseToken)], lease: .seconds(60), on: c, logger: log))
            }
            #expect(stale.0.isEmpty && stale.1.isEmpty && stale.2.isEmpty && stale.3.isEmpty)
            let present = try await db.withConnection { c in try await JobQueue.stillPresent([a.id], on: c, logger: log) }
            #expect(present.first?.owner == "B" && present.first?.state == "running")

            #expect(try await db.transaction { c in try await JobQueue.heartbeat([(b.id, b.leaseToken)], lease: .seconds(60), on: c, logger: log) } == [b.id])
            #expect(try await db.transaction { c in try await JobQueue.complete([(b.id, b.leaseToken)], on: c, logger: log) } == [b.id])
            #expect(try await count(db, "SELECT count(*) FROM gateway.jobs") == 0)

        }
    }

    @Test func snoozeGivesTheAttemptBackAndRetrySpendsIt() async throws {
        try await TestDatabase.withDatabase { db in
            try await db.transaction { c in try await JobQueue.enqueue(NewJob(stage: "t", kind: "k"), on: c, logger: log) }
            let j1 = try #require(try await claim(db, stage: "t", limit: 1, worker: "w").first)
            _ = try await db.transaction { c in
                try await JobQueue.reschedule([.init(id: j1.id, token: j1.leaseToken, delay: .zero, error: nil, refund: true)], on: c, logger: log)
            }
            let j2 = try #require(try await claim(db, stage: "t", limit: 1, worker: "w").first)
            #expect(j2.attempt == 1)
            _ = try await db.transaction { c in
                try await JobQueue.reschedule([.init(id: j2.id, token: j2.leaseToken, delay: .seconds(3600), error: "node down", refund: false)], on: c, logger: log)
            }
            #expect(try await claim(db, stage: "t", limit: 1, worker: "w").isEmpty, "not due for an hour")
            #expect(try await count(db, "SELECT attempt::int8 FROM gateway.jobs") == 1)
            var err = ""
            for try await e in try await db.query("SELECT last_error FROM gateway.jobs").decode(String.self) { err = e }
            #expect(err == "node down")
        }
    }

    @Test func claimOrderIsPriorityThenDueTime() async throws {
        try await TestDatabase.withDatabase { db in
            try await db.transaction { c in
                try await JobQueue.enqueue([
                    NewJob(stage: "t", kind: "late", priority: 0, runAt: .at(Date().addingTimeInterval(-10))),
                    NewJob(stage: "t", kind: "low", priority: 5, runAt: .at(Date().addingTimeInterval(-100))),
                    NewJob(stage: "t", kind: "early", priority: 0, runAt: .at(Date().addingTimeInterval(-50))),
                    NewJob(stage: "t", kind: "future", priority: -1, runAt: .after(.seconds(3600))),
                ], on: c, logger: log)
            }
            var order: [String] = []
            for _ in 0..<4 { order += try await claim(db, stage: "t", limit: 1, worker: "w").map(\.kind) }
            #expect(order == ["early", "late", "low"], "lower priority number first, then the longest due; future jobs wait")
        }
    }

    @Test func deadJobsAreListedAndPutBack() async throws {
        try await TestDatabase.withDatabase { db in
            try await db.transaction { c in try await JobQueue.enqueue(NewJob(stage: "t", kind: "k", ref: "withdrawal:7"), on: c, logger: log) }
            let j = try #require(try await claim(db, stage: "t", limit: 1, worker: "w").first)
            #expect(try await db.transaction { c in try await JobQueue.kill([(j.id, j.leaseToken, "bad address")], on: c, logger: log) } == [j.id])
            #expect(try await claim(db, stage: "t", limit: 1, worker: "w").isEmpty, "dead jobs are not claimed")
            let dead = try await db.withConnection { c in try await JobQueue.deadJobs(stage: "t", limit: 10, on: c, logger: log) }
            #expect(dead.count == 1 && dead[0].lastError == "bad address" && dead[0].ref == "withdrawal:7")
            #expect(try await db.transaction { c in try await JobQueue.retryDead(id: 999_999, stage: nil, on: c, logger: log) }.isEmpty)
            #expect(try await db.transaction { c in try await JobQueue.retryDead(id: nil, stage: "t", on: c, logger: log) } == [j.id])
            let again = try #require(try await claim(db, stage: "t", limit: 1, worker: "w").first)
            #expect(again.id == j.id && again.attempt == 1)
        }
    }

    @Test func monitorViewCountsEachState() async throws {
        try await TestDatabase.withDatabase { db in
            try await db.transaction { c in
                try await JobQueue.enqueue((0..<6).map { _ in NewJob(stage: "m", kind: "k") }, on: c, logger: log)
                try await JobQueue.enqueue(NewJob(stage: "m", kind: "k", runAt: .after(.seconds(3600))), on: c, logger: log)
            }
            let got = try await claim(db, stage: "m", limit: 4, worker: "w")
            try await db.transaction { c in
                _ = try await JobQueue.kill([(got[0].id, got[0].leaseToken, "x")], on: c, logger: log)
                _ = try await JobQueue.complete([(got[1].id, got[1].leaseToken)], on: c, logger: log)
                try await JobQueue.recordStats(stage: "m", worker: "w", completed: 1, retried: 0, dead: 1, on: c, logger: log)
                try await c.query("UPDATE gateway.jobs SET run_at = now() - interval '1 s' WHERE id = \(got[2].id)", logger: log)
                try await c.query("UPDATE gateway.jobs SET run_at = now() - interval '90 s' WHERE state = 'ready' AND run_at <= now()", logger: log)
            }
            let rows = try await db.query("""
                SELECT ready, scheduled, running, expired_leases, dead, extract(epoch FROM oldest_ready_age)::float8, completed_last_minute::int8, completed_last_hour::int8
                FROM monitor.queue WHERE stage = 'm'
                """)
            var seen = false
            for try await (ready, scheduled, running, expired, dead, age, perMin, perHour) in rows.decode((Int64, Int64, Int64, Int64, Int64, Double, Int64, Int64).self) {
                seen = true
                #expect(ready == 2 && scheduled == 1 && running == 1 && expired == 1 && dead == 1)
                #expect(age >= 89 && age < 200)
                #expect(perMin == 1 && perHour == 1)
            }
            #expect(seen)
        }
    }
}
