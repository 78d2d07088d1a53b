import Foundation
import GatewayCore
import Hummingbird
import Logging
import Metrics
import NIOCore
import Prometheus
import ServiceLifecycle
import Synchronization

/// Process-wide logging and metrics set-up (each may be bootstrapped once per process).
public enum Observability {
    private static let bootstrapped = Mutex<(logging: Bool, metrics: Bool)>((false, false))
    private static let registryBox = Mutex<PrometheusCollectorRegistry?>(nil)

    /// Logs to standard error at `level`. Later calls only return a logger.
    public static func bootstrapLogging(level: Logger.Level) {
        let first = bootstrapped.withLock { s -> Bool in
            defer { s.logging = true }
            return !s.logging
        }
        if first {
            LoggingSystem.bootstrap { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            }
        }
    }

    /// Makes swift-metrics report to the Prometheus registry. Call it before creating any metric
    /// (metrics made earlier go to the no-op backend).
    public static func bootstrapMetrics() { _ = registry }

    /// The Prometheus registry behind swift-metrics (bootstrapped on first use).
    public static var registry: PrometheusCollectorRegistry {
        registryBox.withLock { box in
            if let r = box { return r }
            let r = PrometheusCollectorRegistry()
            var factory = PrometheusMetricsFactory(registry: r)
            // Prometheus names allow [a-zA-Z0-9_:]: `gateway.jobs` is exported as `gateway_jobs`.
            factory.nameAndLabelSanitizer = { name, labels in
                (name.replacingOccurrences(of: ".", with: "_"), labels)
            }
            MetricsSystem.bootstrap(factory)
            box = r
            return r
        }
    }

    /// What `GET /metrics` serves now: every metric of this process in Prometheus text format.
    public static func exposition() -> String {
        String(decoding: registry.emitToBuffer(), as: UTF8.self)
    }

    /// Exports the configuration the alerts compare the monitor views with, which only workers.yml knows:
    /// `gateway_hot_wallet_low_water_coins{chain,coin}` (chains.<name>.hot_wallet_low_water, whole coins). Every
    /// gateway process exports it, so it is there while any of them runs; alerts take the maximum per chain and coin.
    public static func recordConfiguration(_ config: GatewayConfig) {
        for chain in config.chains {
            for (symbol, coins) in chain.hotWalletLowWaterCoins {
                Gauge(label: "gateway.hot_wallet_low_water_coins", dimensions: [("chain", chain.name), ("coin", symbol)]).record(coins)
            }
        }
    }

    /// Adds `GET /metrics` (Prometheus text format) and `GET /healthz` to a router. `/healthz` answers "ok" and the
    /// database's state (`Database.health`); with `unhealthyWithoutDatabase` it answers 503 while no node accepts
    /// writes (gateway-api: a process that cannot store a request is not healthy to a load balancer), otherwise 200
    /// (a worker waits the failover out; restarting it would not help).
    public static func addRoutes<Context: RequestContext>(to router: Router<Context>, database: Database? = nil,
                                                         unhealthyWithoutDatabase: Bool = false) {
        let registry = Self.registry
        router.get("/metrics") { _, _ -> Response in
            var buffer = ByteBuffer()
            buffer.writeBytes(registry.emitToBuffer())
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"], body: .init(byteBuffer: buffer))
        }
        router.get("/healthz") { _, _ -> Response in
            guard let database else { return Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: "ok\n"))) }
            let (ok, text) = database.health
            let status: HTTPResponse.Status = ok || !unhealthyWithoutDatabase ? .ok : .serviceUnavailable
            return Response(status: status, headers: [.contentType: "text/plain; charset=utf-8"],
                            body: .init(byteBuffer: ByteBuffer(string: (ok ? "ok\n" : "unavailable\n") + text + "\n")))
        }
    }

    /// A small HTTP server for `/metrics` and `/healthz` of a worker process.
    public static func metricsServer(listen: ListenAddress, database: Database? = nil, logger: Logger) -> some Service {
        let router = Router()
        addRoutes(to: router, database: database)
        return Application(router: router, configuration: .init(address: .hostname(listen.host, port: listen.port), serverName: nil), logger: logger)
    }
}
