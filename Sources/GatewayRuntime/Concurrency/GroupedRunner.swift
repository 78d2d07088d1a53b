import Synchronization

/// Runs the requests that arrive while a run is in flight together in the next run (group commit):
/// idle, a request runs alone at once; busy, one run (one statement, one commit) serves many.
/// Each caller gets its own result, only once the run that held its request finished.
public final class GroupedRunner<Input: Sendable, Output: Sendable>: Sendable {
    /// Runs one group; returns one result per input, in order.
    public typealias Run = @Sendable ([Input]) async -> [Result<Output, any Error>]

    private struct Item: Sendable {
        var input: Input
        var done: CheckedContinuation<Output, any Error>
    }

    private let maxBatch: Int
    private let maxRunners: Int
    private let runTimeout: Duration?
    private let run: Run
    private let state = Mutex<(items: [Item], runners: Int)>(([], 0))

    /// - Parameters:
    ///   - maxBatch: most inputs per run.
    ///   - maxRunners: runs in flight at once.
    ///   - runTimeout: a run still going after this long is given up: its callers get
    ///     `GroupedRunnerError.timedOut` and its slot serves the next group (a run stuck on a
    ///     connection that died under it must not wedge every later request). Its task is cancelled
    ///     and left to end on its own.
    public init(maxBatch: Int = 1_000, maxRunners: Int = 1, runTimeout: Duration? = nil, run: @escaping Run) {
        precondition(maxBatch > 0 && maxRunners > 0)
        self.maxBatch = maxBatch
        self.maxRunners = maxRunners
        self.runTimeout = runTimeout
        self.run = run
    }

    /// Queues `input` for the next run and waits for its result.
    public func submit(_ input: Input) async throws -> Output {
        try await withCheckedThrowingContinuation { (done: CheckedContinuation<Output, any Error>) in
            let start = state.withLock { s -> Bool in
                s.items.append(Item(input: input, done: done))
                guard s.runners < maxRunners else { return false }
                s.runners += 1
                return true
            }
            if start { Task { await self.drain() } }
        }
    }

    private func drain() async {
        while true {
            let batch = state.withLock { s -> [Item] in
                let b = Array(s.items.prefix(maxBatch))
                s.items.removeFirst(b.count)
                if b.isEmpty { s.runners -= 1 }
                return b
            }
            if batch.isEmpty { return }
            let results = await timed(batch.map(\.input))
            for (i, item) in batch.enumerated() {
                item.done.resume(with: i < results.count ? results[i] : .failure(GroupedRunnerError.missingResult))
            }
        }
    }
}

extension GroupedRunner {
    /// Runs one group, giving up after `runTimeout` (every caller of the group gets `timedOut`).
    fileprivate func timed(_ inputs: [Input]) async -> [Result<Output, any Error>] {
        guard let runTimeout else { return await run(inputs) }
        let run = self.run
        return (try? await withDeadline(runTimeout) { await run(inputs) }) ?? inputs.map { _ in .failure(GroupedRunnerError.timedOut) }
    }
}

/// A value delivered once, to one waiter, by whoever comes first.
public final class OnceGate<Value: Sendable>: Sendable {
    private let state = Mutex<(waiter: CheckedContinuation<Value, Never>?, value: Value?)>((nil, nil))

    public init() {}

    public func resume(_ v: Value) {
        let w = state.withLock { s -> CheckedContinuation<Value, Never>? in
            guard s.value == nil else { return nil }
            s.value = v
            defer { s.waiter = nil }
            return s.waiter
        }
        w?.resume(returning: v)
    }

    public func wait() async -> Value {
        await withCheckedContinuation { (c: CheckedContinuation<Value, Never>) in
            let ready = state.withLock { s -> Value? in
                if let v = s.value { return v }
                s.waiter = c
                return nil
            }
            if let ready { c.resume(returning: ready) }
        }
    }
}

/// A run returned fewer results than it was given inputs (a programming error, reported to the callers).
public struct GroupedRunnerError: Error, CustomStringConvertible {
    static let missingResult = GroupedRunnerError(description: "a grouped run returned no result for this request")
    static let timedOut = GroupedRunnerError(description: "the grouped run holding this request took too long and was given up")
    public let description: String
}

/// `operation` did not finish within its deadline.
public struct DeadlineExceeded: Error, CustomStringConvertible {
    public let deadline: Duration
    public var description: String { "gave up after \(deadline)" }
}

/// Runs `operation`, giving up after `deadline`: the caller gets `DeadlineExceeded` and the
/// operation's task is cancelled and left to end on its own (a call stuck on a dead connection
/// does not take its caller with it).
public func withDeadline<T: Sendable>(_ deadline: Duration, _ operation: @escaping @Sendable () async throws -> T) async throws -> T {
    let gate = OnceGate<Result<T, any Error>>()
    let work = Task {
        do { gate.resume(.success(try await operation())) } catch { gate.resume(.failure(error)) }
    }
    let timer = Task {
        try? await Task.sleep(for: deadline)
        work.cancel()
        gate.resume(.failure(DeadlineExceeded(deadline: deadline)))
    }
    defer { timer.cancel() }
    return try await gate.wait().get()
}
