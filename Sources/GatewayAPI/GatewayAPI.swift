import GatewayCore
import GatewayRuntime
import GatewayServices
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import PostgresNIO
import ServiceLifecycle

/// Builds the router of `gateway-api`: the merchant Open API (`/mch/*`, also reached as `//mch/*`),
/// the admin API (`/admin/*`), `/openapi.json`, `/metrics` and `/healthz`.
/// Every request is counted in `gateway_api_requests_total` and timed in `gateway_api_request_duration_seconds`
/// (`APIMetrics`).
public func buildRouter(config: GatewayConfig, database: Database, directory: ChainDirectory, logger: Logger) -> Router<BasicRequestContext> {
    let router = Router()
    let metrics = APIMetrics()
    // The Open API routes come before the metrics middleware: they record their requests themselves, because only
    // they know the Udun code their answer carries (2,000+ requests/s: no parsing of the body afterwards).
    let merchant = MerchantAPI(database: database, config: config.api, directory: directory, logger: logger, limiter: RateLimiter())
    for endpoint in MerchantEndpoint.allCases {
        let route = metrics.route(endpoint.rawValue)
        router.post(RouterPath(endpoint.rawValue)) { req, _ -> Response in
            let started = ContinuousClock.now
            let (response, code) = await merchant.respond(req, endpoint: endpoint)
            route.record(method: .post, status: Int(response.status.code), code: code, since: started)
            return response
        }
    }
    // Applies to the routes below and to unmatched paths (route "NotFound").
    router.add(middleware: APIMetricsMiddleware(metrics: metrics))
    Observability.addRoutes(to: router, database: database, unhealthyWithoutDatabase: true)
    router.get("/openapi.json") { _, _ -> Response in
        var buffer = ByteBuffer()
        buffer.writeString(OpenAPIDocument.json)
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: buffer))
    }
    AdminAPI(database: database, logger: logger).add(to: router)
    return router
}

/// Collapses repeated slashes before routing: SDKs join a base URL ending in `/` with a path
/// starting with `/` (udun-protocol.md §1).
struct SlashNormalizingResponder<Inner: HTTPResponder>: HTTPResponder {
    let inner: Inner

    func respond(to request: Request, context: Inner.Context) async throws -> Response {
        guard let path = request.head.path, path.contains("//") else { return try await inner.respond(to: request, context: context) }
        var head = request.head
        var collapsed = ""
        var lastSlash = false
        for ch in path {
            if ch == "?" { collapsed += path[path.firstIndex(of: "?")!...]; break }
            if ch == "/" && lastSlash { continue }
            lastSlash = ch == "/"
            collapsed.append(ch)
        }
        head.path = collapsed
        return try await inner.respond(to: Request(head: head, body: request.body), context: context)
    }
}

/// The `gateway-api` HTTP application.
public func buildApplication(config: GatewayConfig, database: Database, directory: ChainDirectory, logger: Logger,
                             onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }) -> some ApplicationProtocol {
    let router = buildRouter(config: config, database: database, directory: directory, logger: logger)
    return Application(
        responder: SlashNormalizingResponder(inner: router.buildResponder()),
        configuration: .init(address: .hostname(config.api.listen.host, port: config.api.listen.port), serverName: nil),
        onServerRunning: onServerRunning,
        logger: logger)
}

/// Deletes remembered request signatures once they are older than twice the timestamp window.
struct SignaturePruner: Service {
    let database: Database
    let window: Duration
    let logger: Logger

    func run() async throws {
        let keep = max(window * 2, .seconds(600))
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            // The wait ends at graceful shutdown: a plain sleep held gateway-api up to 60 s after SIGTERM.
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(60)) }
            if Task.isShuttingDownGracefully || Task.isCancelled { return }
            _ = try? await database.transaction { c in
                try await c.query("""
                    DELETE FROM gateway.request_signatures WHERE seen_at < now() - make_interval(secs => \(Double(keep.components.seconds)))
                    """, logger: self.logger)
            }
        }
    }
}

/// Runs `gateway-api` until SIGTERM/SIGINT.
public func runGatewayAPI(options: ProcessOptions) async throws {
    let config = try options.loadConfig()
    let directory = ChainDirectory(config: config)
    Observability.bootstrapLogging(level: config.logLevel)
    Observability.bootstrapMetrics()
    Observability.recordConfiguration(config)
    var logger = Logger(label: "gateway.api")
    logger.logLevel = config.logLevel
    let database = Database(config: config.database, logger: logger)
    let app = buildApplication(config: config, database: database, directory: directory, logger: logger)
    try await StageRunner.runServices([
        .init(service: database),
        .init(service: SignaturePruner(database: database, window: config.api.timestampWindow, logger: logger)),
        .init(service: StartupGate(database: database, logger: logger, summary: {
            "gateway-api ready: listen=\(config.api.listen) db=\(config.database.redactedDescription) config=\(config.source)"
        }, then: app)),
    ], logger: logger)
}
