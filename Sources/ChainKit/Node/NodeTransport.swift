import AsyncHTTPClient
import Foundation
import Logging
import Metrics
import NIOCore
import NIOHTTP1

/// Exponential backoff with full jitter for transient node failures: attempt n waits a random time in
/// `0 … min(maxDelay, baseDelay × 2^(n-1))`.
public struct RetryPolicy: Sendable, Equatable {
    /// Attempts in all (1 = no retry).
    public var maxAttempts: Int
    /// Delay ceiling after the first failure.
    public var baseDelay: Duration
    /// Largest delay ceiling.
    public var maxDelay: Duration

    /// A policy; `maxAttempts` is at least 1.
    public init(maxAttempts: Int, baseDelay: Duration, maxDelay: Duration) {
        self.maxAttempts = max(1, maxAttempts)
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
    }

    /// The default: 5 attempts, 200 ms doubling up to 5 s.
    public static let standard = RetryPolicy(maxAttempts: 5, baseDelay: .milliseconds(200), maxDelay: .seconds(5))

    /// A random delay before attempt `failedAttempt + 1`.
    public func delay(afterAttempt failedAttempt: Int) -> Duration {
        let base = Self.milliseconds(baseDelay)
        let cap = Self.milliseconds(maxDelay)
        let exponent = min(30, max(0, failedAttempt - 1))
        let (scaled, overflow) = base.multipliedReportingOverflow(by: Int64(1) << Int64(exponent))
        let ceiling = overflow ? cap : min(cap, scaled)
        guard ceiling > 0 else { return .zero }
        return .milliseconds(Int64.random(in: 0...ceiling))
    }

    static func milliseconds(_ d: Duration) -> Int64 {
        d.components.seconds * 1000 + d.components.attoseconds / 1_000_000_000_000_000
    }
}

/// How a node client reaches its node.
public struct NodeClientOptions: Sendable {
    /// The node's URL: the JSON-RPC endpoint (EVM) or the API root that `/wallet/…` is appended to (TRON).
    /// It may carry an API key; it never appears in errors or logs.
    public var url: String
    /// Deadline of one HTTP request (a hung node fails the attempt after this long).
    public var requestTimeout: Duration
    /// Retries of transient failures.
    public var retry: RetryPolicy
    /// Extra request headers (e.g. `TRON-PRO-API-KEY`).
    public var headers: [String: String]
    /// Most JSON-RPC calls per batch request (providers cap batches).
    public var maxBatchSize: Int
    /// Widest `eth_getLogs` block range asked at once; narrower ranges are used when the node refuses.
    public var maxLogBlockRange: UInt64
    /// Requests in flight at once for one scan.
    public var maxConcurrentRequests: Int
    /// Largest response body accepted.
    public var maxResponseBytes: Int
    /// The chain's name in workers.yml, the `chain` label of the node request metrics ("" for none: "unknown").
    public var chain: String

    /// Options with defaults suited to a hosted provider.
    public init(
        url: String,
        chain: String = "",
        requestTimeout: Duration = .seconds(10),
        retry: RetryPolicy = .standard,
        headers: [String: String] = [:],
        maxBatchSize: Int = 50,
        maxLogBlockRange: UInt64 = 2000,
        maxConcurrentRequests: Int = 4,
        maxResponseBytes: Int = 64 << 20
    ) {
        self.url = url
        self.requestTimeout = requestTimeout
        self.retry = retry
        self.headers = headers
        self.maxBatchSize = max(1, maxBatchSize)
        self.maxLogBlockRange = max(1, maxLogBlockRange)
        self.maxConcurrentRequests = max(1, maxConcurrentRequests)
        self.maxResponseBytes = maxResponseBytes
        self.chain = chain
    }
}

/// Node request metrics of one client, made once so that a request costs only the increments:
/// `gateway_node_requests_total{chain}` (every attempt), `gateway_node_errors_total{chain,kind}` (failed
/// attempts, retried or not) and `gateway_node_request_duration_seconds{chain}`.
struct NodeMetrics: Sendable {
    let requests: Counter
    let duration: Timer
    let errors: [String: Counter]

    init(chain: String) {
        let chain = chain.isEmpty ? "unknown" : chain
        requests = Counter(label: "gateway.node.requests_total", dimensions: [("chain", chain)])
        duration = Timer(label: "gateway.node.request_duration_seconds", dimensions: [("chain", chain)])
        // Every kind exists from the start at 0: increase() and rate() then see a chain's first error.
        errors = Dictionary(uniqueKeysWithValues: ChainNodeError.metricKinds.map {
            ($0, Counter(label: "gateway.node.errors_total", dimensions: [("chain", chain), ("kind", $0)]))
        })
    }

    func record(since start: ContinuousClock.Instant, error: ChainNodeError?) {
        requests.increment()
        duration.record(duration: ContinuousClock.now - start)
        if let kind = error?.metricKind { errors[kind]?.increment() }
    }
}

/// HTTP POST of JSON to one node with per-request deadlines and retries; shared by both protocol clients.
final class NodeTransport: Sendable {
    let http: HTTPClient
    let options: NodeClientOptions
    let baseURL: String
    let logger: Logger
    let metrics: NodeMetrics

    init(http: HTTPClient, options: NodeClientOptions, logger: Logger) {
        self.http = http
        self.options = options
        self.metrics = NodeMetrics(chain: options.chain)
        var url = options.url
        while url.hasSuffix("/") { url.removeLast() }
        baseURL = url
        self.logger = logger
    }

    /// One POST; returns the body of a 2xx answer. No retries here.
    func post(path: String, body: [UInt8], method: String) async throws(ChainNodeError) -> [UInt8] {
        var request = HTTPClientRequest(url: path.isEmpty ? baseURL : baseURL + path)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "Accept", value: "application/json")
        for (name, value) in options.headers { request.headers.add(name: name, value: value) }
        request.body = .bytes(ByteBuffer(bytes: body))
        let timeout = options.requestTimeout
        let status: HTTPResponseStatus
        let bytes: [UInt8]
        do {
            let response = try await http.execute(request, timeout: .nanoseconds(Self.nanoseconds(timeout)))
            status = response.status
            var buffer = try await response.body.collect(upTo: options.maxResponseBytes)
            bytes = buffer.readBytes(length: buffer.readableBytes) ?? []
        } catch let error as HTTPClientError
            where error == .deadlineExceeded || error == .readTimeout || error == .connectTimeout
            || error == .getConnectionFromPoolTimeout
        {
            throw .timeout(method: method, after: timeout, attempts: 1)
        } catch let error as HTTPClientError where error == .cancelled {
            throw .cancelled(method: method)
        } catch is CancellationError {
            throw .cancelled(method: method)
        } catch is NIOTooManyBytesError {
            throw .malformedResponse(method: method, field: "body", reason: "larger than \(options.maxResponseBytes) bytes")
        } catch {
            if Task.isCancelled { throw .cancelled(method: method) }
            throw .transport(method: method, reason: Self.describe(error))
        }
        guard (200..<300).contains(Int(status.code)) else {
            throw .httpStatus(method: method, status: Int(status.code), body: Self.snippet(bytes))
        }
        return bytes
    }

    /// Runs `attempt` until it succeeds, fails permanently, or `retry.maxAttempts` is spent; waits with backoff and
    /// full jitter between transient failures. Every request to the node goes through here (both protocol clients),
    /// so this is where each attempt is counted and timed.
    func withRetries<T>(_ method: String, _ attempt: () async throws(ChainNodeError) -> T) async throws(ChainNodeError) -> T {
        var n = 1
        while true {
            let started = ContinuousClock.now
            do {
                let result = try await attempt()
                metrics.record(since: started, error: nil)
                return result
            } catch {
                metrics.record(since: started, error: error)
                guard error.isTransient, n < options.retry.maxAttempts else {
                    if case .timeout(let m, let after, _) = error { throw .timeout(method: m, after: after, attempts: n) }
                    throw error
                }
                let delay = options.retry.delay(afterAttempt: n)
                logger.debug("node call failed, retrying", metadata: ["node.method": "\(method)", "attempt": "\(n)", "error": "\(error)"])
                do {
                    try await Task.sleep(for: delay)
                } catch {
                    throw .cancelled(method: method)
                }
                n += 1
            }
        }
    }

    static func nanoseconds(_ d: Duration) -> Int64 {
        let (s, a) = d.components
        return s * 1_000_000_000 + a / 1_000_000_000
    }

    /// The start of a body as printable text, for error messages.
    static func snippet(_ bytes: [UInt8], limit: Int = 200) -> String {
        let text = String(decoding: bytes.prefix(limit), as: UTF8.self)
            .map { $0.isASCII && ($0.isLetter || $0.isNumber || $0.isPunctuation || $0.isSymbol || $0 == " ") ? $0 : " " }
        return String(text).trimmingCharacters(in: .whitespaces) + (bytes.count > limit ? "…" : "")
    }

    /// An error's description without anything from the URL (NIO errors name host and port only).
    static func describe(_ error: any Error) -> String {
        if let e = error as? HTTPClientError { return e.shortDescription }
        return String(describing: error)
    }
}
