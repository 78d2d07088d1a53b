import BigInt
import Foundation
import GatewayCore
import GatewayRuntime
import GatewayServices
import Hummingbird
import Logging
import PostgresNIO

extension Console {
    /// A stage whose oldest ready job waited longer than this is marked: its workers are not keeping up
    /// (or none runs). Ready means due and unclaimed; retries waiting for their backoff are not ready.
    static let oldestReadyWarning: Double = 60
    /// A merchant whose oldest undelivered callback is older than this is marked: its endpoint has been
    /// failing for a while (deliveries retry with backoff for a day before they die).
    static let callbackBacklogWarning: Double = 900

    /// The pipeline page's sections (and its refresh fragment): the monitor views in words, ages and
    /// coin units, each row that needs a look marked and listed at the top, the last hour's charts, and
    /// for admins the retry / resend buttons of dead jobs and callbacks.
    func pipelineSections(user: ConsoleUser) async throws -> [String: Any] {
        let (s, history) = try await database.withConnection { c in
            (try await PipelineQueries.snapshot(stages: Stage.allCases.map(\.rawValue), limit: 200, on: c, logger: logger),
             try await PipelineQueries.history(on: c, logger: logger))
        }
        var problems: [[String: String]] = []
        func problem(_ text: String, _ section: String) { problems.append(["text": text, "href": "#monitor-\(section)"]) }
        func usd(_ units: BigInt, _ decimals: Int, _ symbol: String) -> String? {
            units < 0 ? nil : Views.usd(units.magnitude, decimals: decimals, rate: settings.usdRates[symbol.uppercased()])
        }
        let stuck = settings.stuckAfter.inSeconds

        let stages: [[String: Any]] = s.stages.map { q in
            var notes: [String] = []
            if q.expiredLeases > 0 { notes.append("\(Views.count(q.expiredLeases)) expired lease\(q.expiredLeases == 1 ? "" : "s")") }
            if q.dead > 0 { notes.append("\(Views.count(q.dead)) dead") }
            if q.diedLastHour > 0 { notes.append("\(Views.count(q.diedLastHour)) died in the last hour") }
            if let age = q.oldestReady, age > Self.oldestReadyWarning { notes.append("oldest ready waited \(Views.age(age))") }
            // Dead jobs link to their list, where admins retry them.
            for n in notes { problem("\(q.stage): \(n)", n.hasSuffix(" dead") ? "dead_jobs" : "queue") }
            return [
                "stage": q.stage, "ready": Views.count(q.ready), "scheduled": Views.count(q.scheduled), "running": Views.count(q.running),
                "expired": Views.count(q.expiredLeases), "expiredWarn": q.expiredLeases > 0, "dead": Views.count(q.dead), "deadWarn": q.dead > 0,
                "oldest": q.oldestReady.map(Views.age) ?? "none ready", "oldestWarn": (q.oldestReady ?? 0) > Self.oldestReadyWarning,
                "lastMinute": Views.count(q.completedLastMinute), "lastHour": Views.count(q.completedLastHour),
                "retried": Views.count(q.retriedLastHour), "died": Views.count(q.diedLastHour), "diedWarn": q.diedLastHour > 0,
                "notes": notes, "warn": !notes.isEmpty,
            ]
        }

        let chains: [[String: Any]] = s.chains.map { ch in
            let configured = config.chains.first { $0.name == ch.chain }
            var notes: [String] = []
            if ch.scanned == nil { notes.append("not scanned yet") }
            if !ch.leaderAlive { notes.append(ch.leader == nil ? "no scanner has run" : "no scanner holds the lease") }
            // An error newer than the last scan that moved the cursor: it is still failing.
            let failing = ch.lastError != nil && (ch.lastErrorAge ?? .infinity) < (ch.lastScanAge ?? .infinity)
            if failing { notes.append("failing since \(Views.ago(ch.lastErrorAge))") }
            // Further behind than a deposit's confirmation depth: deposits wait longer than the chain makes them.
            let behind = ch.lag.flatMap { lag in configured.map { lag > Int64($0.confirmations) } } ?? false
            if behind, let lag = ch.lag, let depth = configured?.confirmations {
                notes.append("\(Views.count(lag)) blocks behind (deposits need \(depth))")
            }
            if ch.openReorgAlerts > 0 { notes.append("deep reorg not acknowledged") }
            for n in notes { problem("\(ch.chain): \(n)", "chains") }
            var row: [String: Any] = [
                "chain": ch.chain, "tip": ch.nodeTip.map(String.init) ?? "-", "scanned": ch.scanned.map(String.init) ?? "-",
                "lag": ch.lag.map(Views.count) ?? "-", "lagWarn": behind,
                "lastScan": Views.ago(ch.lastScanAge), "leader": ch.leader ?? "none", "alive": ch.leaderAlive,
                "waiting": Views.count(ch.depositsWaiting), "alerts": Views.count(ch.openReorgAlerts), "alertsWarn": ch.openReorgAlerts > 0,
                "notes": notes, "warn": !notes.isEmpty,
            ]
            if let e = ch.lastError { row["error"] = ["text": e, "ago": Views.ago(ch.lastErrorAge), "failing": failing] }
            return row
        }

        let reviews: [[String: Any]] = s.reviews.map { r in
            if r.overdue > 0 { problem("review level \(r.level) (\(r.name)): \(Views.count(r.overdue)) past the SLA", "reviews") }
            return [
                "level": r.level, "name": r.name, "sla": r.sla.map(Views.age) ?? "none", "waiting": Views.count(r.waiting),
                "merchants": Views.count(r.merchants), "overdue": Views.count(r.overdue), "warn": r.overdue > 0,
                "overdueBy": r.mostOverdueBy.map(Views.age) ?? "-", "fourEyes": Views.count(r.fourEyes), "half": Views.count(r.awaitingSecondApproval),
                "atLevel": r.oldestAtLevel.map(Views.age) ?? "-", "oldest": r.oldestWaiting.map(Views.age) ?? "-",
                "href": "/queue?" + Views.query([("tab", "pending"), ("level", String(r.level))]),
            ]
        }

        let queueTab = ["pending_review": "pending", "approved": "paying", "signed": "paying", "broadcast": "paying", "confirmed": "done",
                        "rejected": "done", "failed": "done"]
        let withdrawals: [[String: Any]] = s.withdrawals.map { w in
            let open = ["received", "approved", "signed", "broadcast"].contains(w.state)
            let late = open && (w.oldestInState ?? 0) > stuck
            if late { problem("\(w.chain) \(w.symbol) withdrawals \(Views.words(w.state)) for \(Views.age(w.oldestInState ?? 0))", "withdrawals") }
            var row: [String: Any] = [
                "chain": w.chain, "symbol": w.symbol, "state": Views.words(w.state), "count": Views.count(w.count),
                "amount": Views.amount(w.amount, w.decimals), "oldest": w.oldestInState.map(Views.age) ?? "-", "warn": late,
            ]
            if let u = usd(BigInt(w.amount), w.decimals, w.symbol) { row["usd"] = u }
            if let tab = queueTab[w.state] {
                row["href"] = "/queue?" + Views.query([("tab", tab), ("coin", "\(w.chain).\(w.symbol)"), ("state", w.state)])
            }
            return row
        }

        let payments: [[String: Any]] = s.payments.map { p in
            let late = ["signed", "broadcast", "mined"].contains(p.state) && (p.oldest ?? 0) > stuck
            if late { problem("\(p.chain) payment from \(p.fromAddress) \(p.state) for \(Views.age(p.oldest ?? 0))", "payments") }
            var row: [String: Any] = [
                "chain": p.chain, "from": p.fromAddress, "symbol": p.symbol, "state": Views.words(p.state), "count": Views.count(p.count),
                "amount": Views.amount(p.amount, p.decimals), "oldest": p.oldest.map(Views.age) ?? "-", "broadcasts": p.mostBroadcasts, "warn": late,
            ]
            if let u = usd(BigInt(p.amount), p.decimals, p.symbol) { row["usd"] = u }
            return row
        }

        let callbacks: [[String: Any]] = s.callbacks.map { cb in
            let slow = (cb.oldestPending ?? 0) > Self.callbackBacklogWarning
            if cb.dead > 0 {
                problem("\(cb.merchant) (#\(cb.merchantID)): \(Views.count(cb.dead)) dead callback\(cb.dead == 1 ? "" : "s")", "dead_callbacks")
            }
            if slow { problem("\(cb.merchant) (#\(cb.merchantID)): callbacks waiting for \(Views.age(cb.oldestPending ?? 0))", "callbacks") }
            return [
                "merchant": cb.merchant, "merchantID": cb.merchantID, "pending": Views.count(cb.pending),
                "oldest": cb.oldestPending.map(Views.age) ?? "-", "oldestWarn": slow, "dead": Views.count(cb.dead), "deadWarn": cb.dead > 0,
                "delivered": cb.lastDeliveredAt.map { Views.ago(s.at.timeIntervalSince($0)) } ?? "not in the last day", "warn": slow || cb.dead > 0,
            ]
        }

        let hotWallets: [[String: Any]] = s.hotWallets.map { h in
            let low = config.chains.first { $0.name == h.chain }?.lowWater(h.symbol).map { BigInt($0) }
            var notes: [String] = []
            if h.expected < 0 { notes.append("our records say less than nothing: reconcile") }
            if let low, h.expected - h.inFlight < low { notes.append("below low-water \(Views.amount(low, h.decimals)) \(h.symbol)") }
            for n in notes { problem("\(h.merchant) \(h.chain) \(h.symbol) hot wallet: \(n)", "hot_wallets") }
            var row: [String: Any] = [
                "merchant": h.merchant, "merchantID": h.merchantID, "chain": h.chain, "address": h.hotAddress,
                "account": h.accountIndex.map { "account \($0)" } ?? "by xpub", "symbol": h.symbol, "native": !h.isToken,
                "holds": Views.amount(h.expected, h.decimals), "waiting": Views.amount(h.receiptsWaiting, h.decimals),
                "inFlight": Views.amount(h.inFlight, h.decimals), "txs": Views.count(h.inFlightTxs), "notes": notes, "warn": !notes.isEmpty,
            ]
            if let u = usd(h.expected, h.decimals, h.symbol) { row["usd"] = u }
            return row
        }

        let sweeps: [[String: Any]] = s.sweeps.map { w in
            let late = !["swept", "failed"].contains(w.state) && (w.oldest ?? 0) > stuck
            if late { problem("\(w.chain) \(w.symbol) sweeps \(Views.words(w.state)) for \(Views.age(w.oldest ?? 0))", "sweeps") }
            var row: [String: Any] = [
                "chain": w.chain, "symbol": w.symbol, "state": Views.words(w.state), "to": w.destinationRole == "cold" ? "cold wallet" : "hot wallet",
                "count": Views.count(w.count), "amount": Views.amount(w.amount, w.decimals), "oldest": w.oldest.map(Views.age) ?? "-",
                "warn": late || w.state == "failed",
            ]
            if let u = usd(BigInt(w.amount), w.decimals, w.symbol) { row["usd"] = u }
            return row
        }

        let alerts: [[String: Any]] = s.reorgAlerts.map { a in
            problem("deep reorg on \(a.chain) at block \(a.forkHeight) (alert \(a.id))", "reorg_alerts")
            return [
                "id": a.id, "chain": a.chain, "fork": a.forkHeight, "depth": a.depth, "confirmations": a.confirmations, "oldHash": a.oldHash,
                "newHash": a.newHash, "deposits": a.affectedDeposits.isEmpty ? "none" : a.affectedDeposits.map(String.init).joined(separator: ", "),
                "detail": a.detail, "detected": Views.ago(s.at.timeIntervalSince(a.detectedAt)), "detectedAt": Views.time(a.detectedAt),
            ]
        }

        let retry = user.canRetry
        let deadJobs: [[String: Any]] = s.deadJobs.map { j in
            var row: [String: Any] = [
                "id": j.id, "stage": j.stage, "kind": j.kind, "ref": j.ref ?? "",
                "attempts": "\(j.attempt) of \(j.maxAttempts ?? Stage(rawValue: j.stage).map { config.worker($0).maxAttempts } ?? j.attempt)",
                "died": j.diedAt.map { Views.ago(s.at.timeIntervalSince($0)) } ?? "-", "diedAt": j.diedAt.map(Views.time) ?? "", "error": j.lastError ?? "",
                "retry": retry,
            ]
            if let ref = j.ref, ref.hasPrefix("withdrawal:"), let id = Int64(ref.dropFirst("withdrawal:".count)) { row["href"] = "/withdrawals/\(id)" }
            return row
        }
        // The lists show the newest 200; the stages and merchants count them all.
        let deadJobTotal = max(Int64(s.deadJobs.count), s.stages.reduce(0) { $0 + $1.dead })

        let statusWords = [0: "entered review", 1: "approved", 2: "rejected", 3: "succeeded on chain", 4: "failed on chain"]
        let deadCallbacks: [[String: Any]] = s.deadCallbacks.map { cb in
            var row: [String: Any] = [
                "id": cb.id, "merchant": cb.merchant, "merchantID": cb.merchantID,
                "trade": cb.tradeType == 1 ? "deposit \(cb.tradeID)" : "withdrawal \(cb.tradeID)",
                "status": "\(cb.status) (\(cb.tradeType == 1 && cb.status == 3 ? "confirmed" : statusWords[cb.status] ?? "?"))", "url": cb.url,
                "attempts": cb.attempts, "error": cb.lastError ?? "", "created": Views.ago(s.at.timeIntervalSince(cb.createdAt)),
                "createdAt": Views.time(cb.createdAt), "resend": retry,
            ]
            if cb.tradeType == 2 { row["href"] = "/withdrawals/\(cb.tradeID)" }
            return row
        }
        let deadCallbackTotal = max(Int64(s.deadCallbacks.count), s.callbacks.reduce(0) { $0 + $1.dead })

        // The charts: a card per stage (throughput and oldest ready) and per chain (lag).
        let start = history.start, minutes = PipelineHistory.minutes
        var stageNames = s.stages.map(\.stage)
        for k in Set(history.completed.keys).union(history.oldestReady.keys).sorted() where !stageNames.contains(k) { stageNames.append(k) }
        let stageCharts: [[String: Any]] = stageNames.map { stage in
            var completed = history.completed[stage] ?? [:]
            // A minute without a count had no completions: the throughput line has no gaps.
            for i in 0..<minutes where completed[i] == nil { completed[i] = 0 }
            return [
                "name": stage,
                "charts": [
                    Charts.chart(id: "chart-throughput-\(stage)", title: "\(stage): jobs completed per minute, last hour", unit: .count, start: start,
                                 minutes: minutes, values: completed, what: "completed per minute"),
                    Charts.chart(id: "chart-oldest-\(stage)", title: "\(stage): oldest ready job, last hour", unit: .seconds, start: start,
                                 minutes: minutes, values: history.oldestReady[stage] ?? [:], limit: Self.oldestReadyWarning, what: "oldest ready job"),
                ],
            ]
        }
        var chainNames = s.chains.map(\.chain)
        for k in Set(config.chains.map(\.name)).union(history.chainLag.keys).sorted() where !chainNames.contains(k) { chainNames.append(k) }
        let chainCharts: [[String: Any]] = chainNames.map { chain in
            let depth = config.chains.first { $0.name == chain }?.confirmations
            return [
                "name": chain,
                "charts": [
                    Charts.chart(id: "chart-lag-\(chain)", title: "\(chain): scanner lag in blocks, last hour", unit: .count, start: start, minutes: minutes,
                                 values: history.chainLag[chain] ?? [:], limit: depth.map(Double.init), what: "blocks behind the node"),
                ],
            ]
        }

        return [
            "now": Views.time(s.at), "problems": problems, "allClear": problems.isEmpty,
            "stages": stages, "stageCharts": stageCharts, "oldestReadyWarning": Views.age(Self.oldestReadyWarning),
            "chains": chains, "hasChains": !chains.isEmpty, "chainCharts": chainCharts, "hasChainCharts": !chainCharts.isEmpty,
            "reviews": reviews, "hasReviews": !reviews.isEmpty, "withdrawals": withdrawals, "hasWithdrawals": !withdrawals.isEmpty,
            "payments": payments, "hasPayments": !payments.isEmpty, "callbacks": callbacks, "hasCallbacks": !callbacks.isEmpty,
            "hotWallets": hotWallets, "hasHotWallets": !hotWallets.isEmpty, "sweeps": sweeps, "hasSweeps": !sweeps.isEmpty,
            "alerts": alerts, "hasAlerts": !alerts.isEmpty, "alertCount": alerts.count,
            "deadJobs": deadJobs, "hasDeadJobs": !deadJobs.isEmpty, "deadJobCount": Views.count(deadJobTotal),
            "deadJobsCut": deadJobTotal > Int64(deadJobs.count) ? "the newest \(deadJobs.count) shown" : "",
            "deadCallbacks": deadCallbacks, "hasDeadCallbacks": !deadCallbacks.isEmpty, "deadCallbackCount": Views.count(deadCallbackTotal),
            "deadCallbacksCut": deadCallbackTotal > Int64(deadCallbacks.count) ? "the newest \(deadCallbacks.count) shown" : "",
            "canRetry": retry, "stuckAfter": Views.age(stuck),
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
