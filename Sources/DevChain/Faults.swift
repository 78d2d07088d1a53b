import Foundation
import Synchronization

/// How an injected fault answers a chain request.
public enum FaultMode: String, Sendable, CaseIterable {
    /// HTTP 500 with a text body.
    case http500
    /// HTTP 429 Too Many Requests.
    case http429
    /// A node-level error in the protocol's own shape: JSON-RPC `-32005` "request rate limited" for each call,
    /// TRON `{"Error": "… lack of computing resources"}`.
    case nodeError = "node_error"
    /// No answer for the hang duration (then the normal answer, to a client that has long given up).
    case hang
    /// HTTP 200 with a body that is not JSON.
    case malformed
}

/// Which requests a fault applies to.
public enum FaultScope: String, Sendable, CaseIterable {
    /// Ethereum JSON-RPC requests.
    case evm
    /// TRON `/wallet*` requests.
    case tron
    /// Either.
    case any
}

/// The queue of faults for the next chain requests (control and health requests are never affected).
public final class FaultInjector: Sendable {
    struct Fault: Sendable {
        var mode: FaultMode
        var remaining: Int
        var scope: FaultScope
        var hang: Duration
    }

    private let queue = Mutex<[Fault]>([])
    /// Standing faults: each request of the scope fails with the mode at this probability, until cleared.
    private let rates = Mutex<[(mode: FaultMode, rate: Double, scope: FaultScope)]>([])

    /// Makes every later request of `scope` fail with `mode` at probability `rate` (0…1), until cleared.
    public func inject(_ mode: FaultMode, rate: Double, scope: FaultScope = .any) {
        rates.withLock { $0.append((mode, min(max(rate, 0), 1), scope)) }
    }

    /// Makes the next `count` requests of `scope` fail with `mode` (after faults queued earlier).
    public func inject(_ mode: FaultMode, count: Int, scope: FaultScope = .any, hang: Duration = .seconds(30)) {
        guard count > 0 else { return }
        queue.withLock { $0.append(Fault(mode: mode, remaining: count, scope: scope, hang: hang)) }
    }

    /// Drops every queued fault.
    public func clear() {
        queue.withLock { $0.removeAll() }
        rates.withLock { $0.removeAll() }
    }

    /// Faults still to be served.
    public var pending: Int { queue.withLock { $0.reduce(0) { $0 + $1.remaining } } }

    /// Takes the fault for one request of `scope`, if any.
    func take(for scope: FaultScope) -> (mode: FaultMode, hang: Duration)? {
        for standing in rates.withLock({ $0 }) where standing.scope == .any || standing.scope == scope {
            if Double.random(in: 0..<1) < standing.rate { return (standing.mode, .seconds(5)) }
        }
        return queue.withLock { faults in
            guard let i = faults.firstIndex(where: { $0.scope == .any || $0.scope == scope }) else { return nil }
            let fault = faults[i]
            faults[i].remaining -= 1
            if faults[i].remaining <= 0 { faults.remove(at: i) }
            return (fault.mode, fault.hang)
        }
    }
}
