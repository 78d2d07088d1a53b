import BigInt
import ChainKit
import Foundation
import GatewayCore
import Hummingbird
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

/// A local node serving two in-memory chains on one loopback port: Ethereum JSON-RPC (`POST /`) and the java-tron
/// HTTP API subset (`/wallet/*`, `/walletsolidity/*`), plus control endpoints under `/devchain/`.
public final class DevChain: Sendable {
    /// The options it was made with.
    public let options: DevChainOptions
    /// Its keys (faucet, treasury, dev accounts, TRON witnesses), from the seed.
    public let keys: DevChainKeys
    /// The EVM chain.
    public let evm: EVMDevChain
    /// The TRON chain.
    public let tron: TronDevChain
    /// Faults for the next chain requests.
    public let faults = FaultInjector()
    /// The chains' clock (wall clock from `options.genesisTimeMillis`).
    public let clock: DevChainClock

    /// A node in its genesis state.
    public init(options: DevChainOptions = DevChainOptions()) {
        self.options = options
        keys = DevChainKeys(seed: options.seed)
        clock = DevChainClock(genesisTimeMillis: options.genesisTimeMillis)
        evm = EVMDevChain(options: options, keys: keys, clock: clock)
        tron = TronDevChain(options: options, keys: keys, clock: clock)
    }

    /// The HTTP application; `onServerRunning` receives the bound port (useful with port 0).
    public func application(
        listen: ListenAddress,
        logger: Logger,
        onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    )
        -> some ApplicationProtocol
    {
        let responder = CallbackResponder<BasicRequestContext> { request, _ in try await self.respond(to: request) }
        var services: [any Service] = []
        if let interval = options.blockInterval { services.append(BlockProducer(chain: self, interval: interval)) }
        return Application(
            responder: responder,
            configuration: .init(address: .hostname(listen.host, port: listen.port), serverName: nil),
            services: services,
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? listen.port) },
            logger: logger
        )
    }

    /// Runs a node on `host` at a free port for the duration of `body`, which gets the node and its base URL.
    public static func withRunning<R: Sendable>(
        _ options: DevChainOptions = DevChainOptions(),
        host: String = "127.0.0.1",
        logger: Logger = Logger(label: "gateway.devchain"),
        _ body: @Sendable (DevChain, String) async throws -> R
    ) async throws -> R {
        // Deriving the keys and sealing genesis is CPU work: keep it off the cooperative threads.
        let chain = try await offload { DevChain(options: options) }
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let app = chain.application(listen: ListenAddress(host: host, port: 0), logger: logger) { port in
            continuation.yield(port)
            continuation.finish()
        }
        let services = ServiceGroup(configuration: .init(services: [app], logger: logger))
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                defer { continuation.finish() }
                try await services.run()
            }
            defer { group.cancelAll() }
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next() else { throw DevChainError("devchain did not start") }
            let result = try await body(chain, "http://\(host):\(port)")
            // Shut down gracefully; a request still hanging (an injected hang) is cut off after a second.
            await services.triggerGracefulShutdown()
            group.addTask { try await Task.sleep(for: .seconds(1)) }
            _ = try? await group.next()
            return result
        }
    }

    // MARK: HTTP

    static let jsonHeaders: HTTPFields = [.contentType: "application/json; charset=utf-8"]

    static func response(_ status: Int, _ bytes: [UInt8], contentType: String = "application/json; charset=utf-8") -> Response {
        Response(
            status: HTTPResponse.Status(code: status),
            headers: [.contentType: contentType],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes))
        )
    }

    func respond(to request: Request) async throws -> Response {
        let path = request.uri.path
        let isPost = request.method == .post
        if path == "/healthz" { return Self.response(200, Array("ok\n".utf8), contentType: "text/plain") }
        if path.hasPrefix("/devchain") {
            let body = Array(buffer: try await request.body.collect(upTo: 16 << 20))
            let query = Self.query(request)
            return try await Self.offload { self.control(path: path, isPost: isPost, query: query, body: body) }
        }
        if path.hasPrefix("/wallet") {
            if let fault = faults.take(for: .tron), let answer = try await faultResponse(fault, scope: .tron, body: []) { return answer }
            let body = isPost ? Array(buffer: try await request.body.collect(upTo: 16 << 20)) : []
            let query = Self.query(request)
            let answer = try await Self.offload { self.tron.handleHTTP(path: path, isPost: isPost, query: query, body: body) }
            return Self.response(answer.status, answer.body)
        }
        if path == "/" || path == "/rpc" {
            guard isPost else { return Self.response(405, Array("{\"error\":\"JSON-RPC requests are POSTed\"}".utf8)) }
            let body = Array(buffer: try await request.body.collect(upTo: 16 << 20))
            if let fault = faults.take(for: .evm), let answer = try await faultResponse(fault, scope: .evm, body: body) { return answer }
            guard let answer = try await Self.offload({ self.evm.handleRPC(body: body) }) else { return Self.response(200, []) }
            return Self.response(200, answer)
        }
        return Self.response(404, Array("{\"error\":\"no such endpoint; see devchain --help\"}".utf8))
    }

    /// Runs the synchronous, CPU-bound part of a request (mining, encoding) on NIO's blocking pool, so that a busy
    /// devchain never starves the cooperative threads of the process it runs in (tests, benchmarks).
    static func offload<T: Sendable>(_ work: @escaping @Sendable () -> T) async throws -> T {
        try await NIOThreadPool.singleton.runIfActive(work)
    }

    static func query(_ request: Request) -> [String: String] {
        var out: [String: String] = [:]
        for (key, value) in request.uri.queryParameters { out[String(key)] = String(value).removingPercentEncoding ?? String(value) }
        return out
    }

    /// The answer of an injected fault; nil for a hang (which answers normally once it is over).
    func faultResponse(_ fault: (mode: FaultMode, hang: Duration), scope: FaultScope, body: [UInt8]) async throws -> Response? {
        switch fault.mode {
        case .http500: return Self.response(500, Array("Internal Server Error\n".utf8), contentType: "text/plain")
        case .http429: return Self.response(429, Array("Too Many Requests\n".utf8), contentType: "text/plain")
        case .malformed: return Self.response(200, Array("<html><body>502 Bad Gateway</body></html>".utf8), contentType: "text/html")
        case .hang:
            try await Task.sleep(for: fault.hang)
            return nil
        case .nodeError:
            if scope == .tron {
                return Self.response(200, TronHTTPAnswer.error("java.lang.IllegalAccessException", "lack of computing resources").body)
            }
            let error = RPCError(-32005, "request rate limited", data: .object(["see": .string("devchain fault injection")]))
            let document = (try? JSONValue.parse(body)) ?? .null
            let ids: [JSONValue] = document.arrayValue.map { $0.map { $0["id"] ?? .null } } ?? [document["id"] ?? .null]
            let responses = ids.map { EVMDevChain.errorResponse(id: $0, error) }
            return Self.response(200, (document.arrayValue != nil ? JSONValue.array(responses) : responses[0]).encoded())
        }
    }
}

/// Mines a block on both chains every interval.
struct BlockProducer: Service {
    let chain: DevChain
    let interval: Duration

    func run() async throws {
        // Stopping is the end of the loop, not an error (the process exits 0 on SIGTERM).
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try await Task.sleep(for: interval)
                // Timed blocks carry the clock, as a real chain's do (an explicit `mine` jumps a slot).
                chain.evm.mine(clock: .wall)
                chain.tron.mine(clock: .wall)
            }
        }
    }
}
