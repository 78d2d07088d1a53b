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
    ///   - maxWriters: transactions in flight at once (measured: a second one did not raise throughput here).
    ///
    /// A transaction still going after `QueueWorker.databaseDeadline` (one stuck on a connection that died
    /// under it) is given up: its requests answer 503 "retry" and the next group takes its slot, instead of
    /// every later withdrawal waiting behind it. Such a withdrawal may still have been stored; the
    /// merchant's retry with the same businessId then answers 571, as for any lost reply.
    init(database: Database, logger: Logger, maxBatch: Int = 64, maxWriters: Int = 1) {
        runner = GroupedRunner(maxBatch: maxBatch, maxRunners: maxWriters, runTimeout: QueueWorker.databaseDeadline) { items in
            do {
                let stored = try await database.transaction { c in try await Withdrawals.insert(items, on: c, logger: logger) }
                return stored.map { .success($0) }
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
}
