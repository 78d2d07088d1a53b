import GatewayCore
@testable import GatewayRuntime
import Logging
import Testing

/// The router's watch over the calls in flight: a lease wait past its bound names its pool once (the router then
/// checks that node at once), a call past the warning age is reported once, and a finished call is forgotten.
struct InFlightCallsTests {
    @Test func overdueLeasesAndSlowCallsAreReportedOnceAndFinishedCallsForgotten() async throws {
        let config = DatabaseConfig(host: "127.0.0.1", port: 1)
        let a = HostPool(endpoint: DatabaseEndpoint(host: "127.0.0.1", port: 1), generation: 1, config: config, logger: Logger(label: "test"))
        let b = HostPool(endpoint: DatabaseEndpoint(host: "127.0.0.1", port: 2), generation: 2, config: config, logger: Logger(label: "test"))
        let calls = InFlightCalls()
        let waiting = calls.begin(a, "transaction at A")
        let running = calls.begin(b, "query at B")
        calls.phase(running, .running)
        let finished = calls.begin(b, "statement at B")
        calls.end(finished)
        #expect(calls.count == 2)

        // Nothing is overdue yet.
        var (pools, slow) = calls.overdue(leaseBound: .seconds(60), warnAfter: .seconds(60))
        #expect(pools.isEmpty && slow.isEmpty)

        try await Task.sleep(for: .milliseconds(30))
        (pools, slow) = calls.overdue(leaseBound: .milliseconds(10), warnAfter: .milliseconds(10))
        #expect(pools.map(\.generation) == [1], "only the call still waiting for a connection names its pool")
        #expect(Set(slow.map(\.what)) == ["transaction at A", "query at B"])
        #expect(slow.first { $0.what == "query at B" }?.phase == .running)

        // Each is reported once.
        (pools, slow) = calls.overdue(leaseBound: .milliseconds(10), warnAfter: .milliseconds(10))
        #expect(pools.isEmpty && slow.isEmpty)

        calls.end(waiting)
        calls.end(running)
        #expect(calls.count == 0)
    }
}
