import GatewayCore
import GatewayRuntime
import Hummingbird
import Logging
import ServiceLifecycle

/// Builds the `gateway-api` HTTP application: the merchant Open API (`/mch/*`), the admin API
/// (`/admin/*`), `/metrics` and `/healthz`.
public func buildApplication(config: GatewayConfig, database: Database, logger: Logger) -> some ApplicationProtocol {
    let router = Router()
    Observability.addRoutes(to: router)
    return Application(
        router: router,
        configuration: .init(address: .hostname(config.api.listen.host, port: config.api.listen.port), serverName: nil),
        logger: logger)
}

/// Runs `gateway-api` until SIGTERM/SIGINT.
public func runGatewayAPI(options: ProcessOptions) async throws {
    let config = try options.loadConfig()
    Observability.bootstrapLogging(level: config.logLevel)
        Observability.bootstrapMetrics()
    var logger = Logger(label: "gateway.api")
    logger.logLevel = config.logLevel
    let database = Database(config: config.database, logger: logger)
    let app = buildApplication(config: config, database: database, logger: logger)
    try await StageRunner.runServices([
        .init(service: database.client),
        .init(service: StartupGate(database: database, logger: logger, summary: {
            "gateway-api ready: listen=\(config.api.listen) db=\(config.database.redactedDescription) config=\(config.source)"
        }, then: app)),
    ], logger: logger)
}
