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
    private let run: Run
    private let state = Mutex<(items: [Item], runners: Int)>(([], 0))

    /// - Parameters:
    ///   - maxBatch: most inputs per run.
    ///   - maxRunners: runs in flight at once.
    public init(maxBatch: Int = 1_000, maxRunners: Int = 1, run: @escaping Run) {
        precondition(maxBatch > 0 && maxRunners > 0)
        self.maxBatch = maxBatch
        self.maxRunners = maxRunners
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
            let results = await run(batch.map(\.input))
            for (i, item) in batch.enumerated() {
                item.done.resume(with: i < results.count ? results[i] : .failure(GroupedRunnerError.missingResult))
            }
        }
    }
}

/// A run returned fewer results than it was given inputs (a programming error, reported to the callers).
public struct GroupedRunnerError: Error, CustomStringConvertible {
    static let missingResult = GroupedRunnerError()
    public var description: String { "a grouped run returned no result for this request" }
}
