import Foundation
import GatewayCore
import GatewayRuntime
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle

/// The console's router (its routes and security middleware).
public func buildConsoleRouter(config: GatewayConfig, database: Database, logger: Logger) throws -> Router<ConsoleContext> {
    let router = Router(context: ConsoleContext.self)
    try Console(config: config, database: database, logger: logger).add(to: router)
    return router
}

/// The `gateway-console` HTTP application on `console.listen`.
public func buildConsoleApplication(config: GatewayConfig, database: Database, logger: Logger,
                                    onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }) throws -> some ApplicationProtocol {
    Application(
        router: try buildConsoleRouter(config: config, database: database, logger: logger),
        configuration: .init(address: .hostname(config.console.listen.host, port: config.console.listen.port), serverName: nil),
        onServerRunning: onServerRunning,
        logger: logger)
}

/// Runs `gateway-console` until SIGTERM/SIGINT.
public func runConsole(options: ProcessOptions) async throws {
    let config = try options.loadConfig()
    Observability.bootstrapLogging(level: config.logLevel)
    Observability.bootstrapMetrics()
    Observability.recordConfiguration(config)
    var logger = Logger(label: "gateway.console")
    logger.logLevel = config.logLevel
    let database = Database(config: config.database, logger: logger)
    let app = try buildConsoleApplication(config: config, database: database, logger: logger)
    try await StageRunner.runServices([
        .init(service: database),
        .init(service: StartupGate(database: database, logger: logger, summary: {
            "gateway-console ready: listen=\(config.console.listen) secure_cookies=\(config.console.secureCookies) "
                + "idle_timeout=\(DurationText.format(config.console.idleTimeout)) db=\(config.database.redactedDescription) config=\(config.source)"
        }, then: app)),
    ], logger: logger)
}
