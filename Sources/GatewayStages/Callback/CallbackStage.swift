import AsyncHTTPClient
import Dispatch
import Foundation
import GatewayCore
import GatewayRuntime
import GatewayServices
import Logging
import Metrics
import NIOCore
import NIOHTTP1
import PostgresNIO
import ServiceLifecycle
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The callback stage: delivers stored callbacks to merchants (udun-protocol.md §5, DESIGN.md §6).
public enum CallbackStage {
    /// Handlers by job kind, and the HTTP client's lifecycle.
    public static func parts(_ env: StageRunner.Environment) throws -> StageRunner.Parts {
        let settings = env.config.callbacks
        var configuration = HTTPClient.Configuration()
        configuration.redirectConfiguration = .disallow  // a redirect could lead past the address checks
        configuration.timeout = .init(connect: .seconds(5), read: .seconds(Int64(settings.requestTimeout.components.seconds)))
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = settings.perEndpointConcurrency
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        let delivery = CallbackDelivery(http: http, settings: settings, policy: env.config.api.callbackURLs,
                                        backoff: env.config.worker(.callback).backoff, limiter: EndpointLimiter(cap: settings.perEndpointConcurrency),
                                        recorder: DeliveryRecorder(database: env.database, logger: env.logger),
                                        loader: CallbackLoader(database: env.database, logger: env.logger), metrics: CallbackMetrics())
        let notify = OperatorNotify(http: http, url: env.config.notifications.webhookURL, consoleURL: env.config.console.publicURL,
                                    backoff: env.config.worker(.callback).backoff)
        return StageRunner.Parts(handlers: [Callbacks.deliverJobKind: delivery, OperatorNotifications.jobKind: notify],
                                 services: [HTTPClientService(client: http)])
    }
}

/// Delivers one callback: its stored bytes, the Standard Webhooks headers made for this attempt,
/// in trade order, within the per-endpoint cap.
struct CallbackDelivery: JobHandler {
    let http: HTTPClient
    let settings: CallbackSettings
    let policy: CallbackURLPolicy
    let backoff: BackoffPolicy
    let limiter: EndpointLimiter
    let recorder: DeliveryRecorder
    let loader: CallbackLoader
    let metrics: CallbackMetrics

    struct Stored: Sendable {
        var id: Int64, merchantID: Int64, tradeType: Int16, tradeID: Int64, url: String, payload: String, webhookID: String
        var state: String, ageSeconds: Double, secret: String
    }

    func handle(_ ctx: JobContext) async throws -> JobOutcome {
        guard let ref = ctx.job.ref, ref.hasPrefix("callback:"), let id = Int64(ref.dropFirst("callback:".count)) else {
            throw PermanentJobError("job ref \(ctx.job.ref ?? "nil") is not callback:<id>")
        }
        let logger = ctx.logger
        let loaded = try await loader.load(id)
        let stored = loaded?.callback
        let earlierPending = loaded?.earlierPending ?? false
        guard let cb = stored else { throw PermanentJobError("callback \(id) does not exist") }
        guard cb.state == "pending" else { return .completed }  // delivered, or dead and not resent

        // Callbacks of one trade go in order: wait for an earlier pending one (until its next try).
        if earlierPending {
            var earlierDue: Double?
            for try await (_, due) in try await ctx.database.query("""
                SELECT c.id, CASE WHEN j.state = 'ready' THEN extract(epoch FROM j.run_at - now())::float8 ELSE 0.2 END
                FROM gateway.callbacks c LEFT JOIN gateway.jobs j ON j.stage = 'callback' AND j.unique_key = 'callback:' || c.id
                WHERE c.trade_type = \(cb.tradeType) AND c.trade_id = \(cb.tradeID) AND c.id < \(cb.id) AND c.state = 'pending'
                """).decode((Int64, Double).self) {
                earlierDue = max(earlierDue ?? 0, due)
            }
            if let earlierDue { return .snooze(.milliseconds(Int64(max(0.2, min(earlierDue, 3600)) * 1000) + 50)) }
        }

        guard let url = URL(string: cb.url), let host = url.host else {
            metrics.record(.dead)
            return try await markDead(cb, reason: "callUrl is not a URL", ctx)
        }
        let endpoint = "\(url.scheme ?? "http")://\(host):\(url.port ?? (url.scheme == "https" ? 443 : 80))"
        guard limiter.acquire(endpoint) else { return .snooze(.milliseconds(Int64.random(in: 200...600))) }
        defer { limiter.release(endpoint) }
        if let refusal = await Self.resolvedRefusal(host: host, policy: policy) {
            metrics.record(.dead)
            return try await markDead(cb, reason: refusal, ctx)
        }

        var request = HTTPClientRequest(url: cb.url)
        request.method = .POST
        let now = Int64(Date().timeIntervalSince1970)
        request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        request.headers.add(name: "User-Agent", value: "usdt-gateway")
        request.headers.add(name: "webhook-id", value: cb.webhookID)
        request.headers.add(name: "webhook-timestamp", value: String(now))
        if let sig = CallbackPayloads.webhookSignature(secret: cb.secret, id: cb.webhookID, timestamp: now, payload: cb.payload) {
            request.headers.add(name: "webhook-signature", value: sig)
        }
        request.body = .bytes(ByteBuffer(string: cb.payload))
        let failure: String
        var permanent = false
        let started = ContinuousClock.now
        do {
            let response = try await http.execute(request, timeout: .seconds(Int64(settings.requestTimeout.components.seconds)))
            _ = try? await response.body.collect(upTo: 65536)
            let code = Int(response.status.code)
            if (200..<300).contains(code) {
                metrics.record(.delivered, took: ContinuousClock.now - started)
                // Marked delivered (with the trade's next callback made due) together with the other
                // deliveries that finished meanwhile, in one statement; the job completes with the
                // worker's next claim. If that is lost, the re-run finds it delivered and sends nothing.
                try await recorder.record(cb)
                logger.debug("callback delivered", metadata: ["callback.id": "\(cb.id)", "http.status": "\(code)"])
                return .completed
            }
            failure = "HTTP \(code)"
            permanent = (400..<500).contains(code) && ![408, 409, 425, 429].contains(code)
        } catch {
            failure = "\(error)".prefix(300).description
        }
        let took = ContinuousClock.now - started  // the merchant's part, before our own writes below
        try await ctx.database.transaction { c in
            try await c.query("UPDATE gateway.callbacks SET attempts = attempts + 1, last_error = \(failure) WHERE id = \(cb.id)", logger: logger)
        }
        if permanent {
            metrics.record(.dead, took: took)
            return try await markDead(cb, reason: "\(failure): the merchant refused it; resend it once fixed", ctx)
        }
        if cb.ageSeconds >= Double(settings.deadAfter.components.seconds) {
            metrics.record(.dead, took: took)
            return try await markDead(cb, reason: "\(failure); undelivered after \(DurationText.format(settings.deadAfter))", ctx)
        }
        metrics.record(.retry, took: took)
        logger.info("callback not delivered; will retry", metadata: ["callback.id": "\(cb.id)", "error": "\(failure)", "job.attempt": "\(ctx.job.attempt)"])
        return .retryAfter(backoff.delay(attempt: ctx.job.attempt), failure)
    }

    private func markDead(_ cb: Stored, reason: String, _ ctx: JobContext) async throws -> JobOutcome {
        try await ctx.database.transaction { c in
            try await c.query("UPDATE gateway.callbacks SET state = 'dead', last_error = \(reason) WHERE id = \(cb.id) AND state = 'pending'", logger: ctx.logger)
            try await Self.wakeNext(after: cb, on: c, logger: ctx.logger)
        }
        ctx.logger.error("callback is dead", metadata: ["callback.id": "\(cb.id)", "merchant.id": "\(cb.merchantID)", "error": "\(reason)"])
        return .fail(reason)
    }

    /// The trade's later callbacks wait for this one: make the next due now.
    static func wakeNext(after cb: Stored, on c: DatabaseConnection, logger: Logger) async throws {
        try await c.query("""
            UPDATE gateway.jobs SET run_at = now()
            WHERE stage = 'callback' AND state = 'ready' AND unique_key = (
                SELECT 'callback:' || id FROM gateway.callbacks
                WHERE trade_type = \(cb.tradeType) AND trade_id = \(cb.tradeID) AND id > \(cb.id) AND state = 'pending' ORDER BY id LIMIT 1)
            """, logger: logger)
    }

    /// Resolves a host name and checks every address against the policy (IP literals directly).
    static func resolvedRefusal(host: String, policy: CallbackURLPolicy) async -> String? {
        if let refusal = policy.refusal(host: host) { return refusal }
        if CallbackURLPolicy.classify(ip: host.trimmingCharacters(in: CharacterSet(charactersIn: "[]"))) != nil { return nil }
        let addresses: [String] = await withCheckedContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(returning: resolve(host)) }
        }
        guard !addresses.isEmpty else { return nil }  // unresolvable: the request fails and is retried
        for a in addresses {
            if let cls = CallbackURLPolicy.classify(ip: a), let refusal = policy.refusal(for: cls) { return "\(host) resolves to \(a): \(refusal)" }
        }
        return nil
    }

    static func resolve(_ host: String) -> [String] {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &result) == 0, let first = result else { return [] }
        defer { freeaddrinfo(first) }
        var out: [String] = []
        var p: UnsafeMutablePointer<addrinfo>? = first
        while let ai = p {
            var buffer = [CChar](repeating: 0, count: Int(NI_MAXHOST))
            if getnameinfo(ai.pointee.ai_addr, ai.pointee.ai_addrlen, &buffer, socklen_t(buffer.count), nil, 0, NI_NUMERICHOST) == 0 {
                out.append(String(cString: buffer))
            }
            p = ai.pointee.ai_next
        }
        return out
    }
}

/// Callback delivery metrics, made once per worker: `gateway_callback_deliveries_total{outcome}` counts each
/// delivery attempt by what came of it, and `gateway_callback_delivery_duration_seconds{outcome}` times the
/// merchant's answer (or its failure). Outcomes: `delivered` (2xx), `retry` (failed, tried again after backoff),
/// `dead` (refused with a 4xx, undelivered past `callbacks.dead_after`, or a callUrl that may not be called).
struct CallbackMetrics: Sendable {
    enum Outcome: String, CaseIterable, Sendable {
        case delivered, retry, dead
    }

    let attempts: [Outcome: Counter]
    let durations: [Outcome: Timer]

    init() {
        // Every outcome exists from the start at 0, so that increase() sees the first dead callback.
        attempts = Dictionary(uniqueKeysWithValues: Outcome.allCases.map {
            ($0, Counter(label: "gateway.callback.deliveries_total", dimensions: [("outcome", $0.rawValue)]))
        })
        durations = Dictionary(uniqueKeysWithValues: Outcome.allCases.map {
            ($0, Timer(label: "gateway.callback.delivery_duration_seconds", dimensions: [("outcome", $0.rawValue)]))
        })
    }

    /// An attempt that sent nothing (the callUrl was refused before any request).
    func record(_ outcome: Outcome) {
        attempts[outcome]?.increment()
    }

    /// An attempt whose request took `took` to be answered (or to fail).
    func record(_ outcome: Outcome, took: Duration) {
        attempts[outcome]?.increment()
        durations[outcome]?.record(duration: took)
    }
}

/// Posts an operator notification `{"text": …}` to the configured webhook (logged either way), with
/// a link to its console page when `console.public_url` is set; failures retry with the stage's backoff.
struct OperatorNotify: JobHandler {
    let http: HTTPClient
    let url: String?
    let consoleURL: String?
    let backoff: BackoffPolicy

    func handle(_ ctx: JobContext) async throws -> JobOutcome {
        guard let text = OperatorNotifications.deliveryText(payload: ctx.job.payload, consoleURL: consoleURL) else {
            throw PermanentJobError("notification payload has no text")
        }
        ctx.logger.notice("operator notification", metadata: ["text": "\(text)", "webhook": "\(url == nil ? "none configured" : "configured")"])
        guard let url else { return .completed }
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "User-Agent", value: "usdt-gateway")
        request.body = .bytes(ByteBuffer(string: JSONValue.object([("text", .string(text))]).serialized))
        let failure: String
        do {
            let response = try await http.execute(request, timeout: .seconds(10))
            _ = try? await response.body.collect(upTo: 65536)
            if (200..<300).contains(Int(response.status.code)) { return .completed }
            failure = "HTTP \(response.status.code)"
        } catch {
            failure = "\(error)".prefix(300).description
        }
        ctx.logger.warning("operator notification not delivered; will retry", metadata: ["error": "\(failure)", "job.attempt": "\(ctx.job.attempt)"])
        return .retryAfter(backoff.delay(attempt: ctx.job.attempt), failure)
    }
}

/// Reads callbacks for the jobs that start together in one query: while one read is in flight, the
/// ids asked for meanwhile wait and go in the next (a claimed batch starts its jobs at once).
final class CallbackLoader: Sendable {
    struct Loaded: Sendable {
        var callback: CallbackDelivery.Stored
        /// An earlier callback of the same trade is still pending.
        var earlierPending: Bool
    }

    private let runner: GroupedRunner<Int64, Loaded?>

    init(database: Database, logger: Logger) {
        // Bounded like the worker's own statements: a read hung on a connection that died in a database
        // restart would otherwise hold every later load (and its job) forever.
        runner = GroupedRunner(runTimeout: QueueWorker.databaseDeadline) { ids in
            do {
                var found: [Int64: Loaded] = [:]
                for try await r in try await database.query("""
                    SELECT c.id, c.merchant_id, c.trade_type, c.trade_id, c.url, c.payload, c.webhook_id, c.state,
                           extract(epoch FROM now() - c.created_at)::float8, m.webhook_secret,
                           EXISTS (SELECT 1 FROM gateway.callbacks e
                                   WHERE e.trade_type = c.trade_type AND e.trade_id = c.trade_id AND e.id < c.id AND e.state = 'pending')
                    FROM gateway.callbacks c JOIN gateway.merchants m ON m.id = c.merchant_id WHERE c.id = ANY(\(ids)::int8[])
                    """).decode((Int64, Int64, Int16, Int64, String, String, String, String, Double, String, Bool).self) {
                    found[r.0] = Loaded(callback: CallbackDelivery.Stored(id: r.0, merchantID: r.1, tradeType: r.2, tradeID: r.3, url: r.4, payload: r.5,
                                                                          webhookID: r.6, state: r.7, ageSeconds: r.8, secret: r.9),
                                        earlierPending: r.10)
                }
                return ids.map { .success(found[$0]) }
            } catch {
                return ids.map { _ in .failure(error) }
            }
        }
    }

    func load(_ id: Int64) async throws -> Loaded? { try await runner.submit(id) }
}

/// Records successful deliveries in groups: while one UPDATE is in flight, the deliveries that
/// finish queue up and go in the next one (group commit), so a busy worker writes a few
/// statements a second instead of one commit per callback. Each caller returns only once its
/// callback's row says delivered.
final class DeliveryRecorder: Sendable {
    private let runner: GroupedRunner<CallbackDelivery.Stored, Void>

    init(database: Database, logger: Logger) {
        // Bounded: a chaos run's database restart left this run hanging on a dead connection; every later
        // delivery waited behind it holding its endpoint slot, and the rest were snoozed for want of a slot
        // (233 of 600 callbacks unsent). Given up, its callers retry; if its commit landed after all, the
        // retry finds the callback delivered and sends nothing.
        runner = GroupedRunner(runTimeout: QueueWorker.databaseDeadline) { callbacks in
            let ids = callbacks.map(\.id)
            do {
                // In an explicit transaction: the caller completes its job once this returns, so "recorded" must
                // mean committed. A lone statement is reported done at CommandComplete, before its implicit
                // commit; a database crash in between lost a delivered mark while the job completed (a chaos
                // run ended with one callback pending and no job left to send it).
                _ = try await database.transaction { c in try await c.query("""
                    WITH d AS (
                        UPDATE gateway.callbacks SET state = 'delivered', delivered_at = now(), attempts = attempts + 1, last_error = NULL
                        WHERE id = ANY(\(ids)::int8[]) AND state = 'pending' RETURNING id, trade_type, trade_id)
                    UPDATE gateway.jobs SET run_at = now()
                    WHERE stage = 'callback' AND state = 'ready' AND unique_key = ANY (ARRAY(
                        SELECT 'callback:' || n.id FROM d CROSS JOIN LATERAL (
                            SELECT n.id FROM gateway.callbacks n
                            WHERE n.trade_type = d.trade_type AND n.trade_id = d.trade_id AND n.id > d.id AND n.state = 'pending'
                            ORDER BY n.id LIMIT 1) n))
                    """, logger: logger) }
                return ids.map { _ in .success(()) }
            } catch {
                logger.warning("could not record delivered callbacks; their jobs will run again", metadata: [
                    "callbacks": "\(ids.count)", "error": "\(DatabaseErrors.describe(error))"])
                return ids.map { _ in .failure(error) }
            }
        }
    }

    func record(_ cb: CallbackDelivery.Stored) async throws { try await runner.submit(cb) }
}

/// At most `cap` deliveries in flight per endpoint (scheme://host:port) in this process, so one
/// slow merchant cannot take every slot.
final class EndpointLimiter: Sendable {
    let cap: Int
    private let inFlight = Mutex<[String: Int]>([:])

    init(cap: Int) { self.cap = cap }

    func acquire(_ endpoint: String) -> Bool {
        inFlight.withLock { m in
            let n = m[endpoint, default: 0]
            guard n < cap else { return false }
            m[endpoint] = n + 1
            return true
        }
    }

    func release(_ endpoint: String) {
        inFlight.withLock { m in
            let n = m[endpoint, default: 1] - 1
            m[endpoint] = n > 0 ? n : nil
        }
    }
}

/// Shuts the HTTP client down when the process stops.
struct HTTPClientService: Service {
    let client: HTTPClient

    func run() async throws {
        try? await gracefulShutdown()
        try await client.shutdown()
    }
}
