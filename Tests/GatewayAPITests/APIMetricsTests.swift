import Foundation
import GatewayAPI
import GatewayCore
import GatewayRuntime
import GatewayTesting
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

/// gateway-api's request metrics as Prometheus scrapes them: by route pattern, status and Udun code, with latency.
@Suite(.serialized) struct APIMetricsTests {
    @Test func requestsAreCountedByRoutePatternStatusAndUdunCode() async throws {
        Observability.bootstrapMetrics()  // before the router makes its metrics, as gateway-api does
        func requests(_ labels: [String: String]) -> Double { MetricsSample.value("gateway_api_requests_total", labels) ?? 0 }
        let created = ["route": "/mch/address/create", "method": "POST", "status": "200", "code": "200"]
        let badSign = ["route": "/mch/address/create", "method": "POST", "status": "200", "code": "4163"]
        let unauthorized = ["route": "/admin/withdrawals/{id}", "method": "GET", "status": "401", "code": ""]
        let notFound = ["route": "NotFound", "method": "GET", "status": "404"]
        let otherMethod = ["route": "NotFound", "method": "other", "status": "404"]
        let timed = ["route": "/mch/address/create"]
        let before = (requests(created), requests(badSign), requests(unauthorized), requests(notFound),
                      MetricsSample.value("gateway_api_request_duration_seconds_count", timed) ?? 0, requests(otherMethod))

        try await withAPI { f, client in
            let php = Client.php
            let body = php.body([("merchantId", .int(f.merchantA)), ("coinType", .int(195)), ("callUrl", callURL)])
            #expect(try await client.post("/mch/address/create", php.envelope(body: body, key: f.keyA)).code == 200)
            #expect(try await client.post("//mch/address/create", php.envelope(body: body, key: f.keyB)).code == 4163)
            try await client.execute(uri: "/admin/withdrawals/123456", method: .get) { #expect($0.status == .unauthorized) }
            try await client.execute(uri: "/no/such/path/98765", method: .get) { #expect($0.status == .notFound) }
            for made in ["BREW", "WHEN"] {
                try await client.execute(uri: "/x", method: try #require(HTTPRequest.Method(made))) { #expect($0.status == .notFound) }
            }
        }

        #expect(requests(created) - before.0 == 1)
        #expect(requests(badSign) - before.1 == 1, "the Udun code of the answer, also when the SDK doubles the slash")
        #expect(requests(unauthorized) - before.2 == 1, "admin routes are counted by their pattern")
        #expect(requests(notFound) - before.3 == 1)
        #expect(requests(otherMethod) - before.5 == 2, "made-up methods share one series")
        #expect((MetricsSample.value("gateway_api_request_duration_seconds_count", timed) ?? 0) - before.4 == 2, "both timed")
        let text = Observability.exposition()
        #expect(!text.contains("123456") && !text.contains("98765") && !text.contains("BREW"), "raw paths and methods never become labels")
        #expect(text.contains("gateway_api_request_duration_seconds_bucket{route=\"/mch/address/create\",le=\"0.005\"}"), "a histogram in seconds")
    }
}
