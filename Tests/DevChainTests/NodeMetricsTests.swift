import ChainKit
import DevChain
import GatewayTesting
import Testing

/// Every node request attempt is counted per chain, and failed ones by kind, as Prometheus scrapes them.
@Suite struct NodeMetricsTests {
    @Test func attemptsAndTheirErrorsAreCountedPerChain() async throws {
        // Made before the client: swift-metrics reports to the registry only from then on.
        #expect(MetricsSample.value("gateway_node_requests_total", ["chain": "metrics-evm"]) == nil, "no client of this chain yet")
        try await Node.with { (node: DevChain, url: String) async throws in
            var options = Node.options(url, attempts: 4)
            options.chain = "metrics-evm"
            let client = EVMNodeClient(options: options, logger: Node.quiet)
            func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
                MetricsSample.value(name, labels.merging(["chain": "metrics-evm"]) { a, _ in a })
            }
            #expect(value("gateway_node_errors_total", ["kind": "timeout"]) == 0, "every kind exists at 0 before its first error")
            node.faults.inject(.http500, count: 2, scope: .evm)
            node.faults.inject(.http429, count: 1, scope: .evm)
            #expect(try await client.tipHeight() == 0)
            #expect(value("gateway_node_requests_total") == 4, "three failed attempts and the one that answered")
            #expect(value("gateway_node_errors_total", ["kind": "http_status"]) == 3)
            #expect(value("gateway_node_errors_total") == 3, "no other kind")
            #expect(value("gateway_node_request_duration_seconds_count") == 4)
            // A failure that outlasts the attempts: each attempt is still one request and one error.
            node.faults.inject(.malformed, count: 1, scope: .evm)
            _ = try? await client.tipHeight()
            #expect(value("gateway_node_errors_total", ["kind": "malformed_response"]) == 1)
            #expect(value("gateway_node_requests_total") == 5, "a malformed answer is not retried")
        }
    }
}
