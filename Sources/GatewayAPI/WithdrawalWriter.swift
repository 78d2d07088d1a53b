import GatewayRuntime
import GatewayServices
import Logging
import PostgresNIO
import Synchronization

/// Stores the withdrawals of concurrent requests together: while one transaction is in flight, the
/// requests that arrive wait and go into the next one (group commit), each still answered only after
/// the transaction holding its withdrawal committed. Busy, the API commits a few dozen withdrawals
/// per transaction instead of one; idle, a request waits for nobody.
final class WithdrawalWriter: Sendable {
    struct Item {
        var withdrawal: Withdrawals.Validated
        var done: CheckedContinuation<Withdrawals.Stored, any Error>
    }

    let database: Database
    let logger: Logger
    /// Most withdrawals per transaction.
    let maxBatch: Int
    /// Transactions in flight at once (measured: a second one did not raise throughput here).
    let maxWriters: Int
    private let state = Mutex<(items: [Item], writers: Int)>(([], 0))

    init(database: Database, logger: Logger, maxBatch: Int = 64, maxWriters: Int = 1) {
        self.database = database
        self.logger = logger
        self.maxBatch = maxBatch
        self.maxWriters = maxWriters
    }

    func store(_ w: Withdrawals.Validated) async throws -> Withdrawals.Stored {
        try await withCheckedThrowingContinuation { (done: CheckedContinuation<Withdrawals.Stored, any Error>) in
            let start = state.withLock { s -> Bool in
                s.items.append(Item(withdrawal: w, done: done))
                guard s.writers < maxWriters else { return false }
                s.writers += 1
                return true
            }
            if start { Task { await self.write() } }
        }
    }

    private func write() async {
        while true {
            let batch = state.withLock { s -> [Item] in
                let b = Array(s.items.prefix(maxBatch))
                s.items.removeFirst(b.count)
                if b.isEmpty { s.writers -= 1 }
                return b
            }
            if batch.isEmpty { return }
            let logger = self.logger
            do {
                let items = batch.map(\.withdrawal)
                let stored = try await database.transaction { c in try await Withdrawals.insert(items, on: c, logger: logger) }
                for (item, outcome) in zip(batch, stored) { item.done.resume(returning: outcome) }
            } catch where batch.count > 1 {
                // Nothing of this batch was written (one transaction). So that one bad request cannot fail
                // the others, each goes again in a transaction of its own.
                logger.warning("a withdrawal batch failed; storing its withdrawals one by one", metadata: [
                    "withdrawals": "\(batch.count)", "error": "\(DatabaseErrors.describe(error))"])
                for item in batch {
                    let one = item.withdrawal
                    do {
                        let stored = try await database.transaction { c in try await Withdrawals.insert([one], on: c, logger: logger) }
                        item.done.resume(returning: stored[0])
                    } catch {
                        item.done.resume(throwing: error)
                    }
                }
            } catch {
                logger.error("could not store a withdrawal", metadata: ["error": "\(DatabaseErrors.describe(error))"])
                for item in batch { item.done.resume(throwing: error) }
            }
        }
    }
}
