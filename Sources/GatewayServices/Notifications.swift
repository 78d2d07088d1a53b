import Foundation
import GatewayCore
import GatewayRuntime
import Logging
import PostgresNIO

/// Messages for operators: a job of the callback stage (kind `notify`), so they are delivered with
/// the queue's retries, in the transaction of what they report, to `notifications.webhook_url`.
/// Each is also recorded in `gateway.operator_notifications` (finished jobs are deleted; the record
/// stays, for the withdrawal's timeline in the console).
public enum OperatorNotifications {
    public static let jobKind = "notify"

    /// Queues a notification in the caller's transaction and records it. `link` is the console page
    /// it points to (a path: `/withdrawals/42`, `/queue?tab=hot`); nil: the page of `ref`
    /// (`withdrawal:N` → its decision page, `chain:NAME` → the pipeline).
    public static func enqueue(_ text: String, ref: String? = nil, link: String? = nil, on c: DatabaseConnection, logger: Logger) async throws {
        let text = String(text.prefix(3000))
        let link = link ?? ref.flatMap(consolePath(ref:))
        var fields: [(String, JSONValue)] = [("text", .string(text))]
        if let link { fields.append(("link", .string(link))) }
        let result = try await JobQueue.enqueue(NewJob(stage: .callback, kind: jobKind, ref: ref, payload: JSONValue.object(fields).serialized, maxAttempts: 50),
                                                on: c, logger: logger)
        try await c.query("""
            INSERT INTO gateway.operator_notifications (ref, text, link, job_id) VALUES (\(ref), \(text), \(link), \(result.id))
            """, logger: logger)
    }

    /// Like `enqueue` of `prefix + text`, unless a notification about `ref` that starts with `prefix` was
    /// recorded within `quiet`: a condition that lasts (a payment stuck at the fee cap) is told once per
    /// period, not at every look. Returns whether it was queued.
    @discardableResult
    public static func enqueueUnlessRecent(_ text: String, prefix: String, ref: String, quiet: Duration, link: String? = nil, on c: DatabaseConnection,
                                           logger: Logger) async throws -> Bool {
        for try await _ in try await c.query("""
            SELECT 1 FROM gateway.operator_notifications
            WHERE ref = \(ref) AND starts_with(text, \(prefix)) AND at > now() - make_interval(secs => \(quiet.inSeconds)) LIMIT 1
            """, logger: logger) {
            return false
        }
        try await enqueue(prefix + text, ref: ref, link: link, on: c, logger: logger)
        return true
    }

    /// How often a lasting condition is told again (`enqueueUnlessRecent`).
    public static let repeatLasting: Duration = .seconds(6 * 3600)

    /// The console page of a job ref, or nil.
    public static func consolePath(ref: String) -> String? {
        let parts = ref.split(separator: ":", maxSplits: 1).map(String.init)
        guard parts.count == 2 else { return nil }
        switch parts[0] {
        case "withdrawal": return Int64(parts[1]).map { "/withdrawals/\($0)" }
        case "chain": return "/pipeline"
        default: return nil
        }
    }

    /// The text a notification job delivers: its text, and a line with the console link when the job
    /// names a page and `consoleURL` (`console.public_url`, no trailing slash) is set. Nil for a
    /// payload without text.
    public static func deliveryText(payload: String, consoleURL: String?) -> String? {
        guard let value = try? JSONValue.parse(Array(payload.utf8)), case .string(let text)? = value["text"] else { return nil }
        guard let consoleURL, case .string(let link)? = value["link"], link.hasPrefix("/"), !link.hasPrefix("//") else { return text }
        return "\(text)\nConsole: \(consoleURL)\(link)"
    }
}
