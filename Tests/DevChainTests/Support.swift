import AsyncHTTPClient
import BigInt
import ChainKit
import DevChain
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Testing

/// Test helpers: a devchain per test, clients with short retry delays.
enum Node {
    static let quiet: Logger = {
        var l = Logger(label: "gateway.devchain.test")
        l.logLevel = .critical
        return l
    }()

    /// Runs `body` against a fresh in-process devchain on a free loopback port.
    static func with<R: Sendable>(
        _ options: DevChainOptions = DevChainOptions(devAccounts: 1),
        _ body: @Sendable (DevChain, String) async throws -> R
    ) async throws -> R {
        try await DevChain.withRunning(options, logger: quiet, body)
    }

    static func options(
        _ url: String,
        timeout: Duration = .seconds(5),
        attempts: Int = 4,
        maxBatchSize: Int = 50,
        maxLogBlockRange: UInt64 = 2000
    ) -> NodeClientOptions {
        NodeClientOptions(
            url: url,
            requestTimeout: timeout,
            retry: RetryPolicy(maxAttempts: attempts, baseDelay: .milliseconds(5), maxDelay: .milliseconds(20)),
            maxBatchSize: maxBatchSize,
            maxLogBlockRange: maxLogBlockRange
        )
    }

    static func evm(
        _ url: String,
        timeout: Duration = .seconds(5),
        attempts: Int = 4,
        maxBatchSize: Int = 50,
        maxLogBlockRange: UInt64 = 2000
    ) -> EVMNodeClient {
        EVMNodeClient(
            options: options(url, timeout: timeout, attempts: attempts, maxBatchSize: maxBatchSize, maxLogBlockRange: maxLogBlockRange),
            logger: quiet
        )
    }

    static func tron(_ url: String, timeout: Duration = .seconds(5), attempts: Int = 4) -> TronNodeClient {
        TronNodeClient(options: options(url, timeout: timeout, attempts: attempts), logger: quiet)
    }

    /// POSTs JSON to the node and parses the answer (status, body).
    static func post(_ url: String, _ path: String, _ body: String) async throws -> (Int, JSONValue) {
        var request = HTTPClientRequest(url: url + path)
        request.method = .POST
        request.body = .bytes(ByteBuffer(string: body))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        let bytes = try await response.body.collect(upTo: 64 << 20)
        let text = String(buffer: bytes)
        return (Int(response.status.code), text.isEmpty ? .null : (try? JSONValue.parse(text)) ?? .string(text))
    }

    /// GETs a path and parses the answer.
    static func get(_ url: String, _ path: String) async throws -> (Int, JSONValue) {
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: url + path), timeout: .seconds(10))
        let text = String(buffer: try await response.body.collect(upTo: 64 << 20))
        return (Int(response.status.code), text.isEmpty ? .null : (try? JSONValue.parse(text)) ?? .string(text))
    }
}

/// A fresh random-looking but fixed account id.
func account(_ n: UInt8) -> AccountID {
    AccountID(bytes: [0xab] + [UInt8](repeating: n, count: 18) + [n &+ 1])!
}

/// Expects `operation` to throw a `ChainNodeError` and returns it.
func expectNodeError<T>(_ operation: () async throws(ChainNodeError) -> T, sourceLocation: SourceLocation = #_sourceLocation) async -> ChainNodeError?
{
    do {
        _ = try await operation()
        Issue.record("expected a ChainNodeError", sourceLocation: sourceLocation)
        return nil
    } catch {
        return error
    }
}

/// The chain suites run one test at a time: each starts a node and drives it hard, and the database suites of the
/// same process time leases in seconds on a two-core machine.
@Suite(.serialized) struct ChainSuites {}

extension Node {
    /// Runs synchronous devchain work (mining, signing, sealing) on NIO's blocking pool: on the two cooperative threads
    /// it would delay the lease heartbeats of the database suites running in parallel.
    @discardableResult
    static func blocking<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await NIOThreadPool.singleton.runIfActive(work)
    }
}
