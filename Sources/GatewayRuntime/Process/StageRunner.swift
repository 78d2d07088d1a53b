import ArgumentParser
import Foundation
import GatewayCore
import Logging
import ServiceLifecycle
import UnixSignals

/// Options every gateway process takes.
public struct ProcessOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Path of the configuration file (also GATEWAY_CONFIG).", valueName: "path"))
    public var config: String?

    public init() {}

    /// `--config`, else `GATEWAY_CONFIG`, else `./workers.yml`.
    public var configPath: String {
        config ?? ProcessInfo.processInfo.environment["GATEWAY_CONFIG"].flatMap { $0.isEmpty ? nil : $0 } ?? "workers.yml"
    }

    /// Text for `--help`: where configuration comes from.
    public static let discussion = """
        Configuration comes from workers.yml (--config or GATEWAY_CONFIG); DATABASE_URL and \
        POSTGRES_HOSTNAME/PORT/USER/PASSWORD/DB override its database settings. Stops gracefully on \
        SIGTERM or SIGINT: no new claims, in-flight jobs finish within the stage's shutdown_grace.
        """

    /// Loads the configuration; a bad file ends the process with the key's name (exit code 2).
    public func loadConfig() throws -> GatewayConfig {
        do {
            return try GatewayConfig.load(path: configPath)
        } catch let e as ConfigError {
            throw ValidationError(e.description)
        }
    }
}

/// Options of the stage workers: the common ones, and the metrics port of this copy.
public struct WorkerOptions: ParsableArguments {
    @OptionGroup public var process: ProcessOptions
    @Option(help: ArgumentHelp(
        "Serve /metrics and /healthz on this port, on the host of the stage's metrics_listen (127.0.0.1 without one). "
            + "Copies of a stage on one host each need their own: the systemd template usdt-gateway-<stage>@PORT passes its instance.",
        valueName: "port"))
    public var metricsPort: Int?

    public init() {}

    public func validate() throws {
        if let metricsPort, !(1...65535).contains(metricsPort) { throw ValidationError("--metrics-port must be a port from 1 to 65535") }
    }

    /// Where this copy serves its metrics: `--metrics-port` on the configured host, else the stage's `metrics_listen`.
    func metricsListen(_ configured: ListenAddress?) -> ListenAddress? {
        guard let metricsPort else { return configured }
        return ListenAddress(host: configured?.host ?? "127.0.0.1", port: metricsPort)
    }
}

/// Assembles and runs a worker process: logging, metrics, database, schema check, the stage's
/// queue worker, graceful shutdown.
public enum StageRunner {
    /// What a stage's handlers may use.
    public struct Environment: Sendable {
        public var config: GatewayConfig
        public var database: Database
        public var logger: Logger

        public init(config: GatewayConfig, database: Database, logger: Logger) {
            self.config = config
            self.database = database
            self.logger = logger
        }
    }

    /// What a stage brings to its process: job handlers, and services that live as long as the
    /// process (an HTTP client to shut down, …).
    public struct Parts: Sendable {
        public var handlers: [String: any JobHandler]
        public var services: [any Service]

        public init(handlers: [String: any JobHandler], services: [any Service] = []) {
            self.handlers = handlers
            self.services = services
        }
    }

    /// Runs `stage` with the handlers `makeHandlers` builds, until SIGTERM/SIGINT.
    public static func run(_ stage: Stage, options: WorkerOptions,
                           makeHandlers: @escaping @Sendable (Environment) throws -> [String: any JobHandler]) async throws {
        try await run(stage, options: options, makeParts: { Parts(handlers: try makeHandlers($0)) })
    }

    /// Runs `stage` with the parts `makeParts` builds, until SIGTERM/SIGINT.
    public static func run(_ stage: Stage, options: WorkerOptions, makeParts: @Sendable (Environment) throws -> Parts) async throws {
        var loaded = try options.process.loadConfig()
        var stageConfig = loaded.worker(stage)
        stageConfig.metricsListen = options.metricsListen(stageConfig.metricsListen)
        loaded.stages[stage] = stageConfig
        let config = loaded
        Observability.bootstrapLogging(level: config.logLevel)
        Observability.bootstrapMetrics()
        Observability.recordConfiguration(config)
        var logger = Logger(label: "gateway.\(stage.rawValue)")
        logger.logLevel = config.logLevel
        let database = Database(config: config.database, logger: logger)
        let env = Environment(config: config, database: database, logger: logger)
        let parts = try makeParts(env)
        let handlers = parts.handlers
        let workerConfig = config.worker(stage)
        let worker = QueueWorker(
            database: database,
            settings: .init(stage: stage.rawValue, config: workerConfig, handlers: handlers, statsRetention: config.queue.statsRetention),
            logger: logger)

        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: database)]
        services += parts.services.map { .init(service: $0) }
        if let listen = workerConfig.metricsListen {
            services.append(.init(service: Observability.metricsServer(listen: listen, database: database, logger: logger)))
        }
        services.append(.init(service: StartupGate(database: database, logger: logger, summary: {
            "\(stage.executable) ready: stage=\(stage.rawValue) concurrency=\(workerConfig.concurrency) batch=\(workerConfig.batchSize) "
                + "lease=\(DurationText.format(workerConfig.lease)) kinds=[\(handlers.keys.sorted().joined(separator: ","))] "
                + "db=\(config.database.redactedDescription) metrics=\(workerConfig.metricsListen?.description ?? "off") "
                + "config=\(config.source)"
        }, then: worker)))
        try await runServices(services, logger: logger, shutdownLimit: workerConfig.shutdownGrace + .seconds(30))
    }

    /// Runs services in one group, shutting down gracefully on SIGTERM/SIGINT. A shutdown still going
    /// after `shutdownLimit` is escalated to cancellation, and one that ignores cancellation for 15 s
    /// more ends the process with an error: a stage must exit when told to (a callback-worker once logged
    /// "worker stopped" after SIGTERM and then waited forever, every socket closed; cause not found).
    public static func runServices(_ services: [ServiceGroupConfiguration.ServiceConfiguration], logger: Logger,
                                   shutdownLimit: Duration = .seconds(60)) async throws {
        var groupConfig = ServiceGroupConfiguration(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        groupConfig.cancellationSignals = []
        groupConfig.maximumGracefulShutdownDuration = shutdownLimit
        groupConfig.maximumCancellationDuration = .seconds(15)
        let group = ServiceGroup(configuration: groupConfig)
        try await group.run()
    }
}

/// Checks the schema version, logs the process's one-line summary, then runs the wrapped service.
public struct StartupGate<Wrapped: Service>: Service {
    let database: Database
    let logger: Logger
    let summary: @Sendable () -> String
    let wrapped: Wrapped

    public init(database: Database, logger: Logger, summary: @escaping @Sendable () -> String, then wrapped: Wrapped) {
        self.database = database
        self.logger = logger
        self.summary = summary
        self.wrapped = wrapped
    }

    public func run() async throws {
        let version: Int
        do {
            version = try await database.schemaVersion()
        } catch {
            logger.critical("cannot reach PostgreSQL at \(database.config.redactedDescription): \(DatabaseErrors.describe(error))")
            throw error
        }
        guard version >= GatewaySchema.requiredVersion else {
            let e = SchemaTooOld(found: version, required: GatewaySchema.requiredVersion)
            logger.critical("\(e.description)")
            throw e
        }
        logger.info("\(summary()) schema=\(version)")
        try await wrapped.run()
    }
}
