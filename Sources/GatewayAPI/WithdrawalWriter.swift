import GatewayRuntime
import GatewayServices
import Logging
import PostgresNIO

/// Stores the withdrawals of concurrent requests together: while one transaction is in flight, the
/// requests that arrive wait and go into the next one (group commit), each still answered only after
/// the transaction holding its withdrawal committed. Busy, the API commits a few dozen withdrawals
/// per transaction instead of one; idle, a request waits for nobody.
final class WithdrawalWriter: Sendable {
    private let runner: GroupedRunner<Withdrawals.Validated, Withdrawals.Stored>

    /// - Parameters:
    ///   - maxBatch: most withdrawals per transaction.
    ///   - maxWriters: transactions in flight at once. Two, not one: a second did not raise throughput when measured,
    ///     but a transaction that never ends (seen in the failover chaos: one in flight at a switchover, until the
    ///     deadline below) then holds one slot while the other keeps storing withdrawals.
    ///
    /// A transaction still going after `QueueWorker.databaseDeadline` (one stuck on a connection that died
    /// under it) is given up: its requests answer 503 "retry" and the next group takes its slot, instead of
    /// every later withdrawal waiting behind it. Such a withdrawal may still have been stored; the
    /// merchant's retry with the same businessId then answers 571, as for any lost reply.
    init(database: Database, logger: Logger, maxBatch: Int = 64, maxWriters: Int = 2) {
        runner = GroupedRunner(maxBatch: maxBatch, maxRunners: maxWriters, runTimeout: QueueWorker.databaseDeadline) { items in
            do {
                let stored = try await database.transaction { c in try await Withdrawals.insert(items, on: c, logger: logger) }
                return stored.map { .success($0) }
            } catch let unknown as CommitOutcomeUnknown {
                return await Self.resolve(items, after: unknown, database: database, logger: logger)
            } catch where items.count > 1 {
                // Nothing of this group was written (one transaction). So that one bad request cannot fail
                // the others, each goes again in a transaction of its own.
                logger.warning("a withdrawal batch failed; storing its withdrawals one by one", metadata: [
                    "withdrawals": "\(items.count)", "error": "\(DatabaseErrors.describe(error))"])
                var results: [Result<Withdrawals.Stored, any Error>] = []
                for one in items {
                    do {
                        let stored = try await database.transaction { c in try await Withdrawals.insert([one], on: c, logger: logger) }
                        results.append(.success(stored[0]))
                    } catch {
                        results.append(.failure(error))
                    }
                }
                return results
            } catch {
                logger.error("could not store a withdrawal", metadata: ["error": "\(DatabaseErrors.describe(error))"])
                return items.map { _ in .failure(error) }
            }
        }
    }

    func store(_ w: Withdrawals.Validated) async throws -> Withdrawals.Stored { try await runner.submit(w) }

    /// The connection died during COMMIT (a failover): each withdrawal is looked up by its own key on the node that
    /// takes writes now, for as long as the router needs to find it (a few seconds). Found: it was stored, and the
    /// request is answered as such. Not found: nothing was stored, and the request is answered 503 "retry" (the
    /// merchant's retry stores it once). Still unknown (no node to ask): 503 too — the retry then answers 200 or 571,
    /// never a second withdrawal.
    static func resolve(_ items: [Withdrawals.Validated], after unknown: CommitOutcomeUnknown, database: Database,
                        logger: Logger) async -> [Result<Withdrawals.Stored, any Error>] {
        let deadline = ContinuousClock.now + .seconds(10)
        while true {
            do {
                let found = try await database.transaction { c in try await Withdrawals.resolveUnknownCommit(items, on: c, logger: logger) }
                logger.notice("a withdrawal commit's outcome was unknown; resolved by businessId", metadata: [
                    "withdrawals": "\(items.count)", "stored": "\(found.compactMap { $0 }.count)", "error": "\(unknown)"])
                return found.map { $0.map { .success($0) } ?? .failure(unknown) }
            } catch where DatabaseErrors.isFailover(error) && ContinuousClock.now < deadline {
                try? await Task.sleep(for: .milliseconds(200))
            } catch {
                logger.error("a withdrawal commit's outcome is unknown and could not be read back; answering retry",
                             metadata: ["withdrawals": "\(items.count)", "error": "\(DatabaseErrors.describe(error))"])
                return items.map { _ in .failure(unknown) }
            }
        }
    }
}
