import GatewayRuntime
import Synchronization
import Testing

/// A run that does not return until the test lets it (and ignores cancellation, like a call stuck on
/// a connection that died under it).
private final class Latch: Sendable {
    private let state = Mutex<(open: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))
    func wait() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let ready = state.withLock { s -> Bool in
                if s.open { return true }
                s.waiters.append(c)
                return false
            }
            if ready { c.resume() }
        }
    }
    func open() {
        for c in state.withLock({ s -> [CheckedContinuation<Void, Never>] in
            s.open = true
            defer { s.waiters = [] }
            return s.waiters
        }) { c.resume() }
    }
}

@Suite struct GroupedRunnerTests {
    @Test func requestsArrivingDuringARunGoTogetherIntoTheNextEachWithItsOwnResult() async throws {
        let gate = Latch()
        let groups = Mutex<[[Int]]>([])
        let runner = GroupedRunner<Int, Int>(maxBatch: 3, maxRunners: 1) { inputs in
            groups.withLock { $0.append(inputs) }
            if inputs == [0] { await gate.wait() }
            return inputs.map { $0 % 4 == 3 ? .failure(GroupedRunnerTestError(value: $0)) : .success($0 * 10) }
        }
        try await withThrowingTaskGroup(of: (Int, Result<Int, any Error>).self) { group in
            group.addTask { (0, await Result(catching: { try await runner.submit(0) })) }
            while groups.withLock({ $0.isEmpty }) { try await Task.sleep(for: .milliseconds(5)) }
            for i in 1...7 { group.addTask { (i, await Result(catching: { try await runner.submit(i) })) } }
            try await Task.sleep(for: .milliseconds(100))
            #expect(groups.withLock { $0 } == [[0]], "nothing else runs while the first run holds the only slot")
            gate.open()
            var results: [Int: Result<Int, any Error>] = [:]
            for try await (i, r) in group { results[i] = r }
            for i in 0...7 {
                if i % 4 == 3 {
                    #expect((try? results[i]!.get()) == nil, "request \(i) gets its own failure")
                } else {
                    #expect((try? results[i]!.get()) == i * 10, "request \(i) gets its own result")
                }
            }
        }
        let seen = groups.withLock { $0 }
        #expect(seen.first == [0])
        #expect(seen.count == 4, "seven waiting requests in groups of at most three: \(seen)")
        #expect(seen.dropFirst().allSatisfy { $0.count <= 3 })
        #expect(seen.flatMap { $0 }.sorted() == Array(0...7), "each request ran exactly once")
    }

    @Test func aRunStuckPastItsTimeoutFailsItsCallersAndFreesItsSlotForTheNext() async throws {
        let stuck = Latch()
        let runs = Mutex(0)
        let runner = GroupedRunner<Int, Int>(maxBatch: 10, maxRunners: 1, runTimeout: .milliseconds(300)) { inputs in
            let n = runs.withLock { r -> Int in r += 1; return r }
            if n == 1 { await stuck.wait() }
            return inputs.map { .success($0 + 1) }
        }
        defer { stuck.open() }
        do {
            let answer = try await withDeadline(.seconds(10)) { try await runner.submit(1) }
            Issue.record("the stuck run cannot have answered \(answer)")
        } catch let e as GroupedRunnerError {
            #expect(e.description.contains("took too long"), "the stuck run's caller is answered with the timeout: \(e)")
        } catch {
            Issue.record("the stuck run's caller was left waiting: \(error)")
        }
        do {
            _ = try await runner.submit(2)
        } catch {
            Issue.record("the next request must run in the freed slot: \(error)")
        }
        #expect(try await runner.submit(5) == 6)
        #expect(runs.withLock { $0 } == 3)
    }
}

private struct GroupedRunnerTestError: Error { var value: Int }

extension Result where Failure == any Error {
    fileprivate init(catching body: () async throws -> Success) async {
        do { self = .success(try await body()) } catch { self = .failure(error) }
    }
}
