import HTTPTypes
import Hummingbird
import Metrics
import Synchronization

/// Request metrics of `gateway-api`: `gateway_api_requests_total{route,method,status,code}` and
/// `gateway_api_request_duration_seconds{route}` (a histogram). `route` is the matched route's pattern
/// (`/mch/withdraw`, `/admin/withdrawals/{id}`, `NotFound`), never the raw path, so the number of series stays
/// bounded whatever clients send; `code` is the Udun result code of an Open API answer (200, 4163, -1, …), empty
/// on every other route.
final class APIMetrics: Sendable {
    /// One route's counters and latency. Counters are made on first use of a (method, status, code) and kept, so a
    /// request costs a lock, a small dictionary lookup, an increment and a histogram observation.
    final class Route: Sendable {
        struct Key: Hashable {
            var method: String
            var status: Int
            var code: Int?
        }

        /// Methods a client may send are any token: all but these count as "other", so that they cannot grow the series.
        static let knownMethods: Set<HTTPRequest.Method> = [.get, .head, .post, .put, .patch, .delete, .options]

        let path: String
        let duration: Timer
        private let counters = Mutex<[Key: Counter]>([:])

        init(path: String) {
            self.path = path
            duration = Timer(label: "gateway.api.request_duration_seconds", dimensions: [("route", path)])
        }

        /// Counts one answered request that started at `started`.
        func record(method: HTTPRequest.Method, status: Int, code: Int?, since started: ContinuousClock.Instant) {
            let key = Key(method: Self.knownMethods.contains(method) ? method.rawValue : "other", status: status, code: code)
            let counter = counters.withLock { counters in
                if let counter = counters[key] { return counter }
                let counter = Counter(label: "gateway.api.requests_total", dimensions: [
                    ("route", path), ("method", key.method), ("status", String(status)), ("code", code.map(String.init) ?? ""),
                ])
                counters[key] = counter
                return counter
            }
            counter.increment()
            duration.record(duration: ContinuousClock.now - started)
        }
    }

    private let routes = Mutex<[String: Route]>([:])

    /// The metrics of the route with this pattern (made on first use).
    func route(_ path: String) -> Route {
        routes.withLock { routes in
            if let route = routes[path] { return route }
            let route = Route(path: path)
            routes[path] = route
            return route
        }
    }
}

/// Records every request of the routes added after it (and of unmatched paths, as route `NotFound`) in
/// `APIMetrics`, with the status it answered or the error it threw. The Open API routes record themselves, with
/// their Udun result code, and are added before it.
struct APIMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: APIMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let started = ContinuousClock.now
        // The router sets the matched pattern on the context before the route's middleware runs.
        do {
            let response = try await next(request, context)
            let route = metrics.route(context.endpointPath ?? "NotFound")
            route.record(method: request.method, status: Int(response.status.code), code: nil, since: started)
            return response
        } catch {
            let status = (error as? any HTTPResponseError)?.status ?? .internalServerError
            metrics.route(context.endpointPath ?? "NotFound").record(method: request.method, status: Int(status.code), code: nil, since: started)
            throw error
        }
    }
}
