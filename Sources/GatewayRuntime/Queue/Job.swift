import Foundation
import GatewayCore
import PostgresNIO

/// When a new job becomes due.
public enum RunAt: Sendable, Equatable {
    case now
    case after(Duration)
    case at(Date)
}

/// A job to enqueue.
public struct NewJob: Sendable, Equatable {
    /// The stage whose workers claim it (`review`, `callback`, …).
    public var stage: String
    /// What the job does within its stage; selects the handler.
    public var kind: String
    /// The domain row it drives, e.g. `withdrawal:42`.
    public var ref: String?
    /// JSON object text.
    public var payload: String
    /// Lower runs first.
    public var priority: Int16
    public var runAt: RunAt
    /// Overrides the stage's configured `max_attempts`.
    public var maxAttempts: Int?
    /// At most one unfinished job per stage and unique key; a second enqueue is a reported no-op.
    public var uniqueKey: String?

    public init(stage: String, kind: String, ref: String? = nil, payload: String = "{}", priority: Int16 = 0,
                runAt: RunAt = .now, maxAttempts: Int? = nil, uniqueKey: String? = nil) {
        self.stage = stage
        self.kind = kind
        self.ref = ref
        self.payload = payload
        self.priority = priority
        self.runAt = runAt
        self.maxAttempts = maxAttempts
        self.uniqueKey = uniqueKey
    }

    public init(stage: Stage, kind: String, ref: String? = nil, payload: String = "{}", priority: Int16 = 0,
                runAt: RunAt = .now, maxAttempts: Int? = nil, uniqueKey: String? = nil) {
        self.init(stage: stage.rawValue, kind: kind, ref: ref, payload: payload, priority: priority, runAt: runAt,
                  maxAttempts: maxAttempts, uniqueKey: uniqueKey)
    }
}

/// What an enqueue did.
public enum EnqueueResult: Sendable, Equatable {
    case enqueued(id: Int64)
    /// An unfinished job with the same stage and unique key exists (its id, when still there).
    case duplicate(existingID: Int64?)

    public var id: Int64? {
        switch self {
        case .enqueued(let id): return id
        case .duplicate(let id): return id
        }
    }

    public var isDuplicate: Bool { if case .duplicate = self { return true } else { return false } }
}

/// A job held under a lease by this worker.
public struct ClaimedJob: Sendable, Equatable {
    public var id: Int64
    public var stage: String
    public var kind: String
    public var ref: String?
    public var payload: String
    /// 1 on the first run; counts runs, including those cut short by an expired lease.
    public var attempt: Int
    public var maxAttempts: Int?
    /// The fence: completion and failure only count while the row still carries this token.
    public var leaseToken: UUID
    public var createdAt: Date
}

/// How a handler's run ended.
public enum JobOutcome: Sendable, Equatable {
    /// Done: the job leaves the queue.
    case completed
    /// A transient failure: try again after a backoff, spending an attempt.
    case retry(String)
    /// A transient failure with a delay chosen by the handler (e.g. a Retry-After).
    case retryAfter(Duration, String)
    /// Not ready yet (e.g. "not confirmed yet"): try again after `delay` without spending an attempt.
    case snooze(Duration)
    /// A permanent failure: no retry helps; the job is dead at once.
    case fail(String)
    /// The handler completed the job inside its own transaction (`JobContext.complete(in:)`).
    case completedInTransaction
}

/// A failure no retry can fix (a bad address, a merchant's 4xx on a callback that can never
/// succeed): the job goes dead at once instead of burning attempts.
public struct PermanentJobError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The worker lost the job's lease (it expired and another worker took the job).
public struct LeaseLost: Error, CustomStringConvertible {
    public var jobID: Int64
    public init(jobID: Int64) { self.jobID = jobID }
    public var description: String { "lease on job \(jobID) was lost: another worker owns it now" }
}

/// What a handler gets besides its job.
public struct JobContext: Sendable {
    public let job: ClaimedJob
    public let database: Database
    public let logger: Logger
    public let workerID: String

    public init(job: ClaimedJob, database: Database, logger: Logger, workerID: String) {
        self.job = job
        self.database = database
        self.logger = logger
        self.workerID = workerID
    }

    /// Completes the job inside the caller's transaction, so that a side effect written in that
    /// transaction and the job's completion commit together (exactly once). Throws `LeaseLost`
    /// (rolling the caller's transaction back) when the lease is no longer ours. Return
    /// `.completedInTransaction` after the transaction committed.
    public func complete(in connection: DatabaseConnection) async throws {
        let done = try await JobQueue.complete([(job.id, job.leaseToken)], on: connection, logger: logger)
        guard done.contains(job.id) else { throw LeaseLost(jobID: job.id) }
    }
}

/// Runs jobs of one or more kinds of a stage.
public protocol JobHandler: Sendable {
    /// Runs a job. Thrown errors are transient (retried with backoff) unless they are
    /// `PermanentJobError`. A job may run twice (lease expiry, crash before completion): make the
    /// second run harmless.
    func handle(_ context: JobContext) async throws -> JobOutcome
}

/// A handler made of a closure.
public struct ClosureJobHandler: JobHandler {
    let body: @Sendable (JobContext) async throws -> JobOutcome
    public init(_ body: @escaping @Sendable (JobContext) async throws -> JobOutcome) { self.body = body }
    public func handle(_ context: JobContext) async throws -> JobOutcome { try await body(context) }
}
