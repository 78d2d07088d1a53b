import Foundation
import Synchronization

/// Values read from the database and kept for `ttl` (merchant keys and status, coins, a merchant's
/// wallets), so a request does not pay a round trip for what changes a few times a year. Zero TTL
/// turns it off. Entries are replaced on expiry, never served stale past it.
final class TTLCache<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    let ttl: Duration
    private let entries = Mutex<[Key: (value: Value, until: ContinuousClock.Instant)]>([:])

    init(ttl: Duration) { self.ttl = ttl }

    func value(_ key: Key, load: () async throws -> Value) async throws -> Value {
        guard ttl > .zero else { return try await load() }
        let now = ContinuousClock.now
        if let hit = entries.withLock({ $0[key] }), hit.until > now { return hit.value }
        let value = try await load()
        entries.withLock { e in
            if e.count > 100_000 { e.removeAll() }  // bounded: unknown merchant ids are cached too
            e[key] = (value, now + ttl)
        }
        return value
    }
}
