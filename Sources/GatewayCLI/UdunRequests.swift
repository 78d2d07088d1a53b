import AsyncHTTPClient
import Foundation
import GatewayCore
import NIOCore
import NIOHTTP1

/// Open API requests as the merchant SDKs send them, for the demo, the benchmarks and the chaos runs.
enum UdunRequests {
    /// The signed envelope of `body` (`timestamp`, `nonce` as JSON numbers; `sign` over body, key, nonce, timestamp).
    static func envelope(body: String, key: String, nonce: String, timestamp: String = String(Int64(Date().timeIntervalSince1970))) -> String {
        JSONValue.object([
            ("timestamp", .number(timestamp)), ("nonce", .number(nonce)),
            ("sign", .string(UdunSignature.sign(body: body, key: key, nonce: nonce, timestamp: timestamp))), ("body", .string(body)),
        ]).serialized
    }

    /// A POST of the signed envelope of `body` to `url`, signed now.
    static func post(url: String, body: String, key: String, nonce: String) -> HTTPClientRequest {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: envelope(body: body, key: key, nonce: nonce)))
        return request
    }
}
