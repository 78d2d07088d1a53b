import Foundation
import GatewayCore
import Logging
import Metrics
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// Claims one stage's jobs and runs them in `concurrency` slots.
///
/// One loop claims as many jobs as there are free slots (in batches), flushing buffered
/// outcomes in the same transaction, so a busy worker commits once per batch. LISTEN/NOTIFY wakes
/// it when jobs are enqueued; polling every `poll_interval` is the fallback. Long jobs get their
/// leases extended (heartbeat). On graceful shutdown it stops claiming, lets in-flight jobs finish
/// within `shutdown_grace`, then releases the rest for other workers.
public final class QueueWorker: Service {
    /// What one worker runs.
    public struct Settings: Sendable {
        public var stage: String
        public var config: WorkerConfig
        /// Unique per process (lease owner, stats row).
        public var workerID: String
        /// Handler per job kind.
        public var handlers: [String: any JobHandler]
        public var statsRetention: Duration

        public init(stage: String, config: WorkerConfig, workerID: String = QueueWorker.defaultWorkerID(),
                    handlers: [String: any JobHandler], statsRetention: Duration = .seconds(7 * 86_400)) {
            self.stage = stage
            self.config = config
            self.workerID = workerID
            self.handlers = handlers
            self.statsRetention = statsRetention
        }
    }

    /// `host:pid:random`, unique per process.
    public static func defaultWorkerID() -> String {
        let host = ProcessInfo.processInfo.hostName
        return "\(host):\(ProcessInfo.processInfo.processIdentifier):\(UInt32.random(in: 0...UInt32.max) & 0xffff)"
    }

    let database: Database
    public let settings: Settings
    let logger: Logger
    let metrics: QueueMetrics
    /// Longest time a finished job's outcome waits in the buffer while other slots are busy.
    let flushDelay: Duration
    /// How long freed slots wait for the rest of their batch before they are refilled.
    static let claimCoalescing: Duration = .milliseconds(3)
    private let shared = Shared()

    public init(database: Database, settings: Settings, logger: Logger) {
        self.database = database
        self.settings = settings
        var logger = logger
        logger[metadataKey: "stage"] = "\(settings.stage)"
        self.logger = logger
        self.metrics = QueueMetrics(stage: settings.stage)
        self.flushDelay = min(settings.config.pollInterval, .milliseconds(100))
    }

    /// Jobs currently running in this process (for tests and status).
    public var inFlightCount: Int { shared.state.withLock { $0.inflight.count } }

    public func run() async throws {
        let (bell, ring) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { helpers in
                helpers.addTask { await self.listen(ring) }
                helpers.addTask { await self.tick(ring) }
                helpers.addTask { await self.heartbeat() }
                try await withThrowingDiscardingTaskGroup { jobs in
                    try await self.mainLoop(jobs: &jobs, bell: bell, ring: ring)
                }
                helpers.cancelAll()
            }
        } onGracefulShutdown: {
            self.shared.state.withLock { $0.shutdownRequested = true }
            ring.yield()
        }
    }

    // MARK: Main loop

    private func mainLoop(jobs: inout ThrowingDiscardingTaskGroup<any Error>, bell: AsyncStream<Void>,
                          ring: AsyncStream<Void>.Continuation) async throws {
        let cfg = settings.config
        let clock = ContinuousClock()
        var bellIterator = bell.makeAsyncIterator()
        var pending: [Finished] = []
        var oldestPending: ContinuousClock.Instant?
        var wantClaim = true
        var lastClaim = clock.now - cfg.pollInterval
        var shutdownAt: ContinuousClock.Instant?
        var failures = 0
        var pausedUntil = clock.now
        let fullBatch = min(cfg.batchSize, cfg.concurrency)
        var alarmSet = false

        while true {
            let (finished, woke, shutdown, inflight) = shared.state.withLock { s in
                defer { s.finished.removeAll(keepingCapacity: true); s.woke = false }
                return (s.finished, s.woke, s.shutdownRequested, s.inflight.count)
            }
            if !finished.isEmpty {
                if pending.isEmpty { oldestPending = clock.now }
                pending += finished
            }
            if woke { wantClaim = true }
            let now = clock.now

            if shutdown {
                if shutdownAt == nil {
                    shutdownAt = now
                    logger.info("shutting down: no new claims", metadata: ["jobs.in_flight": "\(inflight)"])
                }
                if inflight > 0 && now - shutdownAt! < cfg.shutdownGrace && !Task.isCancelled {
                    if !pending.isEmpty, now >= pausedUntil, (try? await flush(&pending, claim: 0, jobs: &jobs, ring: ring)) != nil {
                        oldestPending = nil
                    }
                    await wait(&bellIterator)
                    continue
                }
                if inflight > 0 {
                    let released = shared.releaseAll()
                    jobs.cancelAll()
                    logger.warning("grace period over: releasing unfinished jobs to other workers",
                                   metadata: ["jobs.released": "\(released.count)"])
                    pending += released.map { Finished(job: $0, outcome: .release) }
                }
                var tries = 0
                while !pending.isEmpty, tries < 5 {
                    tries += 1
                    do { _ = try await flush(&pending, claim: 0, jobs: &jobs, ring: ring) } catch {
                        logger.error("could not record outcomes at shutdown; their leases will expire and the jobs run again",
                                     metadata: ["error": "\(DatabaseErrors.describe(error))"])
                        try? await Task.sleep(for: .milliseconds(200))
                    }
                }
                await recordStats()
                logger.info("worker stopped")
                return
            }

            if now < pausedUntil {
                await wait(&bellIterator)
                continue
            }
            let free = cfg.concurrency - inflight
            let pollDue = now - lastClaim >= cfg.pollInterval
            // Slots freed by jobs that just finished: wait a moment for their siblings, so that a
            // batch of fast jobs is recorded and replaced by one full claim rather than several small ones.
            let coalescing = !pending.isEmpty && free < fullBatch && inflight > 0 && now - (oldestPending ?? now) < Self.claimCoalescing
            if coalescing && !alarmSet {
                alarmSet = true
                Task {
                    try? await Task.sleep(for: Self.claimCoalescing)
                    ring.yield()
                }
            }
            let shouldClaim = free > 0 && (wantClaim || pollDue) && !coalescing
            let shouldFlush = !pending.isEmpty
                && (pending.count >= cfg.batchSize || inflight == 0 || now - (oldestPending ?? now) >= flushDelay)
            if shouldClaim || shouldFlush {
                let want = shouldClaim ? min(free, cfg.batchSize) : 0
                do {
                    let got = try await flush(&pending, claim: want, jobs: &jobs, ring: ring)
                    oldestPending = nil
                    alarmSet = false
                    failures = 0
                    if shouldClaim {
                        lastClaim = clock.now
                        wantClaim = got == want
                    }
                } catch {
                    failures += 1
                    let delay = BackoffPolicy(base: .milliseconds(100), factor: 2, cap: .seconds(10)).delay(attempt: failures)
                    pausedUntil = clock.now + delay
                    logger.warning("database unavailable; pausing claims", metadata: [
                        "error": "\(DatabaseErrors.describe(error))", "retry.in": "\(DurationText.format(delay))",
                    ])
                }
                continue
            }
            await wait(&bellIterator)
        }
    }

    /// Waits for the next event; cancellation of the worker's task counts as a shutdown request.
    private func wait(_ bell: inout AsyncStream<Void>.Iterator) async {
        if await bell.next() == nil || Task.isCancelled {
            shared.state.withLock { $0.shutdownRequested = true }
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    /// Records buffered outcomes and claims up to `claim` jobs in one transaction; starts the
    /// claimed jobs. On error the outcomes stay buffered (they are fenced, so recording them
    /// again is harmless). Returns how many jobs were claimed.
    private func flush(_ pending: inout [Finished], claim want: Int, jobs: inout ThrowingDiscardingTaskGroup<any Error>,
                       ring: AsyncStream<Void>.Continuation) async throws -> Int {
        let cfg = settings.config
        let fullBatch = min(cfg.batchSize, cfg.concurrency)
        var completions: [(id: Int64, token: UUID)] = []
        var reschedules: [JobQueue.Reschedule] = []
        var kills: [(id: Int64, token: UUID, error: String)] = []
        for f in pending {
            let job = f.job
            let maxAttempts = job.maxAttempts ?? cfg.maxAttempts
            switch f.outcome {
            case .completed:
                completions.append((job.id, job.leaseToken))
            case .completedInTransaction:
                break
            case .retry(let message), .retryAfter(_, let message):
                if job.attempt >= maxAttempts {
                    kills.append((job.id, job.leaseToken, "\(message) (gave up after \(job.attempt) attempts)"))
                } else {
                    var delay = cfg.backoff.delay(attempt: job.attempt)
                    if case .retryAfter(let d, _) = f.outcome { delay = d }
                    reschedules.append(.init(id: job.id, token: job.leaseToken, delay: delay, error: message, refund: false))
                }
            case .snooze(let delay):
                reschedules.append(.init(id: job.id, token: job.leaseToken, delay: delay, error: nil, refund: true))
            case .release:
                reschedules.append(.init(id: job.id, token: job.leaseToken, delay: .zero, error: nil, refund: true))
            case .fail(let message):
                kills.append((job.id, job.leaseToken, message))
            case .lost:
                break
            }
        }
        let stage = settings.stage, logger = self.logger
        let started = ContinuousClock.now
        let claimToken = UUID()
        let result: FlushResult
        do {
            result = try await record(completions, reschedules, kills, claim: want, claimToken: claimToken)
        } catch where want > 0 && DatabaseErrors.isFailover(error) {
            // The claim may have committed (an unknown commit in a failover): read back what it took, by its token, and
            // run those jobs now rather than after their leases. The outcomes stay buffered (fenced: recording them
            // again is harmless); the caller pauses as for any failure.
            if let taken = try? await bounded(inTransaction: false, { conn in
                try await JobQueue.claimed(token: claimToken, stage: stage, on: conn, logger: logger)
            }), !taken.isEmpty {
                logger.notice("a claim's outcome was unknown; its jobs were read back by the claim's token", metadata: ["jobs": "\(taken.count)"])
                start(taken, fullBatch: fullBatch, jobs: &jobs, ring: ring)
            }
            throw error
        }
        if want > 0 { metrics.claimLatency.recordInterval(since: started) }

        // Outcomes that matched no row: either the job already finished (an earlier flush whose
        // commit looked failed but was not), or another worker owns it now: that one is rejected.
        let unmatched = completions.map(\.id).filter { !result.completed.contains($0) }
            + reschedules.map(\.id).filter { !result.rescheduled.contains($0) }
            + kills.map(\.id).filter { !result.killed.contains($0) }
        let flushed = pending
        pending.removeAll()
        if !unmatched.isEmpty {
            let present = (try? await bounded(inTransaction: false) { conn in
                try await JobQueue.stillPresent(unmatched, on: conn, logger: logger)
            }) ?? []
            for p in present {
                metrics.stale.increment()
                logger.warning("stale outcome rejected: the lease expired and the job belongs to another run now",
                               metadata: ["job.id": "\(p.id)", "job.state": "\(p.state)", "job.owner": "\(p.owner)"])
            }
        }
        var counts = (completed: 0, retried: 0, dead: 0, snoozed: 0, released: 0)
        for f in flushed {
            switch f.outcome {
            case .completed where result.completed.contains(f.job.id), .completedInTransaction: counts.completed += 1
            case .retry, .retryAfter:
                if result.killed.contains(f.job.id) { counts.dead += 1 } else if result.rescheduled.contains(f.job.id) { counts.retried += 1 }
            case .snooze where result.rescheduled.contains(f.job.id): counts.snoozed += 1
            case .release where result.rescheduled.contains(f.job.id): counts.released += 1
            case .fail where result.killed.contains(f.job.id): counts.dead += 1
            default: break
            }
            if case .retry(let m) = f.outcome, result.killed.contains(f.job.id) {
                logger.error("job is dead after its last attempt", metadata: ["job.id": "\(f.job.id)", "job.kind": "\(f.job.kind)", "error": "\(m)"])
            } else if case .fail(let m) = f.outcome, result.killed.contains(f.job.id) {
                logger.error("job failed permanently and is dead", metadata: ["job.id": "\(f.job.id)", "job.kind": "\(f.job.kind)", "error": "\(m)"])
            }
        }
        if counts.completed > 0 { metrics.completed.increment(by: counts.completed) }
        if counts.retried > 0 { metrics.retried.increment(by: counts.retried) }
        if counts.dead > 0 { metrics.dead.increment(by: counts.dead) }
        if counts.snoozed > 0 { metrics.snoozed.increment(by: counts.snoozed) }
        if counts.released > 0 { metrics.released.increment(by: counts.released) }
        if counts.completed + counts.retried + counts.dead > 0 {
            shared.state.withLock { s in
                s.unrecorded.completed += counts.completed
                s.unrecorded.retried += counts.retried
                s.unrecorded.dead += counts.dead
            }
        }

        start(result.claimed, fullBatch: fullBatch, jobs: &jobs, ring: ring)
        return result.claimed.count
    }

    /// Records outcomes and claims up to `want` jobs (the claim named `claimToken`): one implicit-transaction statement
    /// for a busy worker's usual cycle, else one transaction.
    private func record(_ completions: [(id: Int64, token: UUID)], _ reschedules: [JobQueue.Reschedule],
                        _ kills: [(id: Int64, token: UUID, error: String)], claim want: Int, claimToken: UUID) async throws -> FlushResult {
        let stage = settings.stage, worker = settings.workerID, logger = self.logger
        let lease = settings.config.lease
        if want > 0, reschedules.isEmpty, kills.isEmpty {
            // The busy worker's usual cycle: one statement, in its own implicit transaction (one round
            // trip instead of three). postgres-nio reports it done at CommandComplete, just before the
            // commit; if that commit were then lost, nothing breaks the queue's contract: the claimed
            // jobs hold no lease in the database, so whatever they do is fenced out (their effects'
            // transactions check the lease token, their outcomes are rejected as stale) and another
            // worker runs them; the completions stay unrecorded and the jobs run again after the lease
            // (at least once, as for a crash).
            return try await bounded(inTransaction: false) { [completions] conn -> FlushResult in
                var r = FlushResult()
                (r.completed, r.claimed) = try await JobQueue.completeAndClaim(
                    completions, stage: stage, worker: worker, limit: want, lease: lease, claimToken: claimToken, on: conn, logger: logger)
                return r
            }
        } else {
            return try await bounded { [completions, reschedules, kills] conn -> FlushResult in
                var r = FlushResult()
                r.completed = try await JobQueue.complete(completions, on: conn, logger: logger)
                r.rescheduled = try await JobQueue.reschedule(reschedules, on: conn, logger: logger)
                r.killed = try await JobQueue.kill(kills, on: conn, logger: logger)
                if want > 0 {
                    r.claimed = try await JobQueue.claim(stage: stage, limit: want, worker: worker, lease: lease, token: claimToken, on: conn, logger: logger)
                }
                return r
            }
        }
    }

    /// Starts claimed jobs.
    private func start(_ claimed: [(job: ClaimedJob, waited: Double)], fullBatch: Int, jobs: inout ThrowingDiscardingTaskGroup<any Error>,
                       ring: AsyncStream<Void>.Continuation) {
        let now = ContinuousClock.now
        if !claimed.isEmpty { metrics.claimed.increment(by: claimed.count) }
        for (job, waited) in claimed {
            metrics.wait.record(waited)
            shared.state.withLock { $0.inflight[job.id] = InFlight(job: job, claimedAt: now, lastBeat: now) }
            jobs.addTask {
                let outcome = await self.watched(job)
                if self.shared.finish(job.id, outcome: outcome, fullBatch: fullBatch,
                                      concurrency: self.settings.config.concurrency) {
                    ring.yield()
                }
            }
        }
    }

    // MARK: Running a job

    /// Runs a job so that the watchdog (in `heartbeat`) can give up on it: when its lease was lost, or
    /// when it runs past `maxRun` (a handler stuck on a connection that died under it must not hold
    /// its job, renewed by heartbeats, forever). The handler's task is cancelled; a handler that
    /// ignores cancellation is left behind, but its slot and its job are free again.
    private func watched(_ job: ClaimedJob) async -> RecordedOutcome {
        let gate = OnceGate<RecordedOutcome>()  // the handler's outcome, or `.lost` from the watchdog: whichever comes first
        let work = Task { gate.resume(await self.execute(job)) }
        let abandon: @Sendable () -> Void = { work.cancel(); gate.resume(.lost) }
        shared.state.withLock { $0.inflight[job.id]?.abandon = abandon }
        // Cancelled (the grace period ended and the job was released): stop waiting for the handler.
        return await withTaskCancellationHandler { await gate.wait() } onCancel: { abandon() }
    }

    /// How long the worker's own statements (claims, outcomes, heartbeats) may take: after a database
    /// restart a call can hang on a connection that died under it, and a claim loop or watchdog stuck
    /// on it would stop the worker for good (seen in the chaos run: a review-worker claimed nothing for
    /// ten minutes after the restart). Giving up is safe: outcomes stay buffered and are recorded
    /// again (they are fenced by lease tokens); jobs a lost claim took run again when its lease ends.
    /// Handlers' own grouped statements (a stage's GroupedRunner) use it too, for the same reason.
    public static let databaseDeadline: Duration = .seconds(30)

    /// How soon a job whose run met an unavailable database runs again (no attempt spent).
    public static let failoverRetry: Duration = .seconds(1)

    /// The worker's own statements: in a transaction (or on a bare connection), given up after `databaseDeadline`.
    private func bounded<T: Sendable>(inTransaction: Bool = true, _ body: @escaping @Sendable (DatabaseConnection) async throws -> T)
        async throws -> T
    {
        try await withDeadline(Self.databaseDeadline) { [database] in
            inTransaction ? try await database.transaction { try await body($0) } : try await database.withConnection { try await body($0) }
        }
    }

    /// How long a run may take before the watchdog gives up on it.
    var maxRun: Duration { max(settings.config.lease * 4, .seconds(30)) }

    private func execute(_ job: ClaimedJob) async -> RecordedOutcome {
        var logger = self.logger
        logger[metadataKey: "job.id"] = "\(job.id)"
        logger[metadataKey: "job.kind"] = "\(job.kind)"
        let maxAttempts = job.maxAttempts ?? settings.config.maxAttempts
        guard job.attempt <= maxAttempts else {
            return .fail("gave up after \(job.attempt - 1) attempts; the last one's lease expired (its worker crashed or hung)")
        }
        guard let handler = settings.handlers[job.kind] else {
            return .fail("no handler for job kind '\(job.kind)' in this build of the \(settings.stage) stage")
        }
        let started = ContinuousClock.now
        defer { metrics.duration.recordInterval(since: started) }
        do {
            return RecordedOutcome(try await handler.handle(JobContext(job: job, database: database, logger: logger, workerID: settings.workerID)))
        } catch let e as PermanentJobError {
            return .fail(e.description)
        } catch let e as LeaseLost {
            logger.warning("\(e.description); dropping this run's outcome")
            return .lost  // nothing to record: the other owner decides
        } catch is CancellationError {
            return .snooze(.zero)
        } catch where DatabaseErrors.isFailover(error) {
            // The database could not be written just now (a failover, a lost connection, an unknown commit): nothing
            // about this job failed, so it runs again shortly without spending an attempt — no job goes dead for a
            // failover. What the run did is resolved by the handler's next run, through its own idempotency key.
            logger.info("database unavailable; will run again", metadata: ["error": "\(DatabaseErrors.describe(error))"])
            return .snooze(Self.failoverRetry)
        } catch {
            let message = DatabaseErrors.describe(error)
            logger.info("job failed; will retry", metadata: ["error": "\(message)", "job.attempt": "\(job.attempt)"])
            return .retry(message)
        }
    }

    // MARK: Helpers

    private func listen(_ ring: AsyncStream<Void>.Continuation) async {
        let stage = settings.stage
        while !Task.isCancelled {
            do {
                try await database.withConnection { conn in
                    try await conn.listen(on: JobQueue.notifyChannel) { notifications in
                        // Subscribed: anything enqueued before now is found by this look.
                        self.shared.state.withLock { $0.woke = true }
                        ring.yield()
                        for try await n in notifications where n.payload == stage {
                            self.shared.state.withLock { $0.woke = true }
                            ring.yield()
                        }
                    }
                }
            } catch {
                if Task.isCancelled { return }
                logger.warning("LISTEN connection lost; polling until it is back", metadata: ["error": "\(DatabaseErrors.describe(error))"])
            }
            try? await Task.sleep(for: .seconds(1))
        }
    }

    private func tick(_ ring: AsyncStream<Void>.Continuation) async {
        let period = min(settings.config.pollInterval, flushDelay)
        while !Task.isCancelled {
            try? await Task.sleep(for: period)
            ring.yield()
        }
    }

    private func heartbeat() async {
        let lease = settings.config.lease
        // Renew a job's lease once a third of it has passed, looking twice as often, so that at
        // most half a lease passes between renewals even when a look just misses.
        let every = lease / 3
        var lastPrune = ContinuousClock.now - .seconds(3600)
        var samples = SampleSchedule()
        while !Task.isCancelled {
            try? await Task.sleep(for: min(every / 2, .seconds(5)))
            if Task.isCancelled { return }
            let now = ContinuousClock.now
            let limit = maxRun
            let hung = shared.state.withLock { s in s.inflight.values.filter { now - $0.claimedAt > limit } }
            for h in hung {
                logger.error("job ran past its limit; giving up on this run (its lease expires and it runs again)",
                             metadata: ["job.id": "\(h.job.id)", "job.kind": "\(h.job.kind)", "limit": "\(limit)"])
                h.abandon()
            }
            let due = shared.state.withLock { s in s.inflight.values.filter { now - $0.lastBeat >= every }.map { ($0.job.id, $0.job.leaseToken) } }
            if !due.isEmpty {
                do {
                    let logger = self.logger
                    let held = try await bounded { conn in try await JobQueue.heartbeat(due, lease: lease, on: conn, logger: logger) }
                    let lost = due.map(\.0).filter { !held.contains($0) }
                    shared.state.withLock { s in for id in held { s.inflight[id]?.lastBeat = now } }
                    for id in lost {
                        logger.warning("lease lost while the job was running; giving up on this run (the new owner decides)",
                                       metadata: ["job.id": "\(id)"])
                        shared.state.withLock { $0.inflight[id] }?.abandon()
                    }
                } catch {
                    logger.warning("heartbeat failed", metadata: ["error": "\(DatabaseErrors.describe(error))"])
                }
            }
            await recordStats()
            if samples.take() { await recordOldestReady(&samples) }
            if now - lastPrune > .seconds(600) {
                lastPrune = now
                let (retention, logger) = (settings.statsRetention, self.logger)
                _ = try? await bounded { conn in
                    try await JobQueue.pruneStats(olderThan: retention, on: conn, logger: logger)
                    try await PipelineSamples.prune(on: conn, logger: logger)
                }
            }
        }
    }

    /// Records the age of this stage's oldest ready job for the console's chart: once a minute, here
    /// rather than on the claim path, so a busy worker pays one statement a minute for it. Every copy
    /// of the worker writes it (the minute keeps the greatest), so the history has no owner to lose.
    private func recordOldestReady(_ samples: inout SampleSchedule) async {
        let (stage, logger) = (settings.stage, self.logger)
        do {
            try await bounded { conn in try await PipelineSamples.recordOldestReady(stage: stage, on: conn, logger: logger) }
        } catch {
            samples.reset()
            logger.debug("could not record the oldest ready job's age; trying again", metadata: ["error": "\(DatabaseErrors.describe(error))"])
        }
    }

    /// Adds the finished-job counts gathered since the last call to the monitor's counters
    /// (kept in memory between calls so the hot path writes no extra row).
    private func recordStats() async {
        let counts = shared.state.withLock { s in
            defer { s.unrecorded = (0, 0, 0) }
            return s.unrecorded
        }
        guard counts.completed + counts.retried + counts.dead > 0 else { return }
        do {
            let (stage, worker, logger) = (settings.stage, settings.workerID, self.logger)
            try await bounded { conn in
                try await JobQueue.recordStats(stage: stage, worker: worker, completed: counts.completed,
                                               retried: counts.retried, dead: counts.dead, on: conn, logger: logger)
            }
        } catch {
            shared.state.withLock { s in
                s.unrecorded.completed += counts.completed
                s.unrecorded.retried += counts.retried
                s.unrecorded.dead += counts.dead
            }
        }
    }

    // MARK: State

    struct InFlight: Sendable {
        var job: ClaimedJob
        var claimedAt: ContinuousClock.Instant
        var lastBeat: ContinuousClock.Instant
        /// Gives up on the run: cancels the handler and ends the job's slot at once (outcome `.lost`).
        var abandon: @Sendable () -> Void = {}
    }

    enum RecordedOutcome: Sendable {
        case completed, completedInTransaction, retry(String), retryAfter(Duration, String), snooze(Duration), fail(String), release, lost

        init(_ o: JobOutcome) {
            switch o {
            case .completed: self = .completed
            case .completedInTransaction: self = .completedInTransaction
            case .retry(let m): self = .retry(m)
            case .retryAfter(let d, let m): self = .retryAfter(d, m)
            case .snooze(let d): self = .snooze(d)
            case .fail(let m): self = .fail(m)
            }
        }
    }

    struct Finished: Sendable {
        var job: ClaimedJob
        var outcome: RecordedOutcome
    }

    struct FlushResult: Sendable {
        var completed = Set<Int64>()
        var rescheduled = Set<Int64>()
        var killed = Set<Int64>()
        var claimed: [(job: ClaimedJob, waited: Double)] = []
    }

    final class Shared: Sendable {
        struct Inner {
            var inflight: [Int64: InFlight] = [:]
            var finished: [Finished] = []
            var woke = false
            var shutdownRequested = false
            /// Finished-job counts not yet added to `gateway.job_stats`.
            var unrecorded = (completed: 0, retried: 0, dead: 0)
        }
        let state = Mutex(Inner())

        /// Records a finished job; true when the main loop should look now: the first finish
        /// since it last looked (it starts the short wait for the batch's siblings), the last
        /// job in flight, or a whole batch's worth of free slots. Other finishes wait for those.
        func finish(_ id: Int64, outcome: RecordedOutcome, fullBatch: Int, concurrency: Int) -> Bool {
            state.withLock { s in
                // A job released at the end of the grace period no longer belongs to this run.
                guard let f = s.inflight.removeValue(forKey: id) else { return false }
                s.finished.append(Finished(job: f.job, outcome: outcome))
                return s.finished.count == 1 || s.inflight.isEmpty || concurrency - s.inflight.count >= fullBatch
            }
        }

        func releaseAll() -> [ClaimedJob] {
            state.withLock { s in
                let jobs = s.inflight.values.map(\.job)
                s.inflight.removeAll()
                return jobs
            }
        }
    }
}

/// The queue's metrics, per stage: `gateway_jobs_total{stage,status}`, claim latency, wait, duration.
struct QueueMetrics: Sendable {
    let claimed, completed, retried, snoozed, dead, stale, released: Counter
    let claimLatency: Timer
    let duration: Timer
    let wait: Recorder

    init(stage: String) {
        func counter(_ status: String) -> Counter { Counter(label: "gateway.jobs", dimensions: [("stage", stage), ("status", status)]) }
        claimed = counter("claimed")
        completed = counter("completed")
        retried = counter("retried")
        snoozed = counter("snoozed")
        dead = counter("dead")
        stale = counter("stale")
        released = counter("released")
        claimLatency = Timer(label: "gateway.jobs.claim_latency", dimensions: [("stage", stage)])
        duration = Timer(label: "gateway.jobs.duration", dimensions: [("stage", stage)])
        wait = Recorder(label: "gateway.jobs.wait_seconds", dimensions: [("stage", stage)])
    }
}

extension Timer {
    func recordInterval(since start: ContinuousClock.Instant) {
        let d = ContinuousClock.now - start
        recordNanoseconds(d.components.seconds * 1_000_000_000 + d.components.attoseconds / 1_000_000_000)
    }
}
