import Foundation
import GatewayCore
import GatewayRuntime
import GatewayServices
import Hummingbird
import Logging
import PostgresNIO

extension Console {
    static let viewTitles: [String: String] = [
        "queue": "Stages: ready / running / dead / oldest / throughput", "chains": "Chains: tip, scanned, lag, deep-reorg alerts",
        "reviews": "Reviews waiting per level", "withdrawals": "Withdrawals by state", "payments": "Payments by hot address and state",
        "callbacks": "Callback backlog per merchant", "hot_wallets": "Hot wallets (base units)", "sweeps": "Sweeps", "reorg_alerts": "Open deep-reorg alerts",
        "dead_jobs": "Dead jobs", "dead_callbacks": "Dead callbacks",
    ]

    /// Every monitor view as a table; dead jobs and callbacks carry a retry button for admins.
    func pipelineTables(user: ConsoleUser) async throws -> [String: Any] {
        let tables = try await database.withConnection { c in
            var out: [MonitorTable] = []
            for view in ConsoleQueries.monitorViews { out.append(try await ConsoleQueries.monitor(view, limit: 200, on: c, logger: logger)) }
            return out
        }
        return [
            "now": Views.time(Date()),
            "tables": tables.map { t -> [String: Any] in
                let retry = user.canRetry && (t.view == "dead_jobs" || t.view == "dead_callbacks")
                return [
                    "view": t.view, "title": Self.viewTitles[t.view] ?? t.view, "columns": t.columns, "width": t.columns.count + (retry ? 1 : 0),
                    "actions": retry,
                    "rows": t.rows.map { cells -> [String: Any] in
                        var row: [String: Any] = ["cells": cells]
                        if retry, let id = cells.first {
                            row["action"] = t.view == "dead_jobs" ? "/jobs/\(id)/retry" : "/callbacks/\(id)/resend"
                            row["label"] = t.view == "dead_jobs" ? "retry" : "resend"
                        }
                        return row
                    },
                ]
            },
        ]
    }

    static func back(_ form: Form, fallback: String) -> String {
        let b = form["back"]
        return b.hasPrefix("/") && !b.hasPrefix("//") && !b.contains("\\") ? b : fallback
    }

    static func withDone(_ path: String, _ done: String) -> String {
        let base = path.split(separator: "?", maxSplits: 1).first.map(String.init) ?? path
        return "\(base)?done=\(done)"
    }

    /// Puts a dead job back in its queue (admins; audited). No payment is made here: the stage's own
    /// handler runs the job again with its usual checks.
    func retryJob(_ req: Request, id: Int64, user: ConsoleUser) async throws -> Response {
        guard user.canRetry else { throw ConsoleRefusal(status: .forbidden, heading: "Not allowed", text: "Only admins retry dead jobs.") }
        let form = try await Form.read(req)
        let retried = try await database.transaction { c in
            let ids = try await JobQueue.retryDead(id: id, stage: nil, on: c, logger: logger)
            if !ids.isEmpty { try await Audit.record(actor: "console:\(user.name)", action: "job.retry", target: "job:\(id)", on: c, logger: logger) }
            return ids
        }
        guard !retried.isEmpty else { throw ServiceError.conflict("job \(id) is not dead (already retried, or gone); nothing was changed") }
        return Self.redirect(Self.withDone(Self.back(form, fallback: "/pipeline"), "retried"))
    }

    /// Sends a callback again, byte for byte (admins; audited by `Callbacks.resend`).
    func resendCallback(_ req: Request, id: Int64, user: ConsoleUser) async throws -> Response {
        guard user.canRetry else { throw ConsoleRefusal(status: .forbidden, heading: "Not allowed", text: "Only admins re-send callbacks.") }
        let form = try await Form.read(req)
        try await database.transaction { c in try await Callbacks.resend(id, actor: "console:\(user.name)", on: c, logger: logger) }
        return Self.redirect(Self.withDone(Self.back(form, fallback: "/pipeline"), "resent"))
    }

    func auditPage(_ req: Request, user: ConsoleUser, csv: Bool) async throws -> Response {
        guard user.canReadAudit else { throw ConsoleRefusal(status: .forbidden, heading: "Not allowed", text: "The audit is for auditors and admins.") }
        let q = req.uri.queryParameters
        let actor = q["actor"].map(String.init) ?? "", action = q["action"].map(String.init) ?? "", target = q["target"].map(String.init) ?? ""
        let (entries, signIns) = try await database.withConnection { c in
            let entries = try await ConsoleQueries.audit(actor: actor, action: action, target: target, limit: csv ? 100_000 : 500, on: c, logger: logger)
            var signIns: [[String: String]] = []
            if !csv {
                for try await (at, name, ip, ok, reason) in try await c.query("""
                    SELECT at, name, ip, ok, reason FROM gateway.console_sign_ins ORDER BY id DESC LIMIT 100
                    """, logger: logger).decode((Date, String, String, Bool, String).self) {
                    signIns.append(["at": Views.time(at), "name": name, "ip": ip, "result": ok ? "signed in" : "refused: \(reason)"])
                }
            }
            return (entries, signIns)
        }
        if csv {
            return Self.csvResponse(Views.csv(["id", "at", "actor", "action", "target", "detail"],
                                              entries.map { [String($0.id), Views.time($0.at), $0.actor, $0.action, $0.target, $0.detail] }),
                                    filename: "audit.csv")
        }
        return html(.ok, "audit", title: "Audit", user: user, [
            "actor": actor, "action": action, "target": target, "query": Views.query([("actor", actor), ("action", action), ("target", target)]),
            "entries": entries.map { ["id": $0.id, "at": Views.time($0.at), "actor": $0.actor, "action": $0.action, "target": $0.target, "detail": $0.detail] },
            "signIns": signIns,
        ])
    }
}
