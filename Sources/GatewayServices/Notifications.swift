import Foundation
import GatewayCore
import GatewayRuntime
import Logging
import PostgresNIO

/// Messages for operators: a job of the callback stage (kind `notify`), so they are delivered with
/// the queue's retries, in the transaction of what they report, to `notifications.webhook_url`.
public enum OperatorNotifications {
    public static let jobKind = "notify"

    /// Queues a notification in the caller's transaction.
    public static func enqueue(_ text: String, ref: String? = nil, on c: PostgresConnection, logger: Logger) async throws {
        let payload = JSONValue.object([("text", .string(String(text.prefix(3000))))]).serialized
        _ = try await JobQueue.enqueue(NewJob(stage: .callback, kind: jobKind, ref: ref, payload: payload, maxAttempts: 50), on: c, logger: logger)
    }
}
