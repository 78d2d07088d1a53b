import BigInt
import Foundation
import GatewayCore
import GatewayRuntime
import GatewayServices
import Hummingbird
import Logging
import Mustache
import PostgresNIO

extension Console {
    static let states = ["", "received", "pending_review", "approved", "signed", "broadcast", "confirmed", "rejected", "failed"]
    static let tabLabels: [QueueTab: String] = [
        .needsMe: "Needs me", .pending: "All waiting", .second: "2nd approval", .hot: "Hot wallet short", .paying: "Paying", .stuck: "Stuck", .done: "Done",
    ]

    /// Reads the filters from query (or `f_`-prefixed form) values; bad values are dropped with a warning.
    static func filter(_ value: (String) -> String?) -> (QueueFilter, [String]) {
        var f = QueueFilter()
        var warnings: [String] = []
        func text(_ k: String) -> String { (value(k) ?? "").trimmingCharacters(in: .whitespaces) }
        if let tab = QueueTab(rawValue: text("tab")) { f.tab = tab }
        if !text("merchant").isEmpty {
            if let m = Int64(text("merchant")), m > 0 { f.merchant = m } else { warnings.append("merchant must be a merchant id; ignored") }
        }
        f.coin = String(text("coin").prefix(60))
        let state = text("state")
        if states.contains(state) { f.state = state } else { warnings.append("unknown state; ignored") }
        if !text("level").isEmpty {
            if let l = Int(text("level")), l >= 1 { f.level = l } else { warnings.append("level must be 1 or more; ignored") }
        }
        f.rule = String(text("rule").prefix(100))
        let flag = text("flag")
        if flag.isEmpty || QueueFilter.flags.contains(flag) { f.flag = flag } else { warnings.append("unknown flag; ignored") }
        for (key, path) in [("min", \QueueFilter.minAmount), ("max", \QueueFilter.maxAmount)] {
            let v = text(key)
            if v.isEmpty { continue }
            if ConsoleQueries.isAmount(v) { f[keyPath: path] = String(v) } else { warnings.append("\(key) amount must be a number of whole coins such as 12.5; ignored") }
        }
        f.address = String(text("address").prefix(200))
        f.txid = String(text("txid").prefix(200))
        f.businessID = String(text("businessId").prefix(200))
        return (f, warnings)
    }

    /// The filter as query pairs (the tab first), for links and the CSV.
    static func pairs(_ f: QueueFilter, tab: QueueTab? = nil) -> [(String, String)] {
        [("tab", (tab ?? f.tab).rawValue), ("merchant", f.merchant.map { String($0) } ?? ""), ("coin", f.coin), ("state", f.state),
         ("level", f.level.map { String($0) } ?? ""), ("rule", f.rule), ("flag", f.flag), ("min", f.minAmount), ("max", f.maxAmount),
         ("address", f.address), ("txid", f.txid), ("businessId", f.businessID)]
    }

    static func queryFilter(_ req: Request) -> (QueueFilter, [String]) {
        let q = req.uri.queryParameters
        return filter { q[Substring($0)].map(String.init) }
    }

    func viewer(_ user: ConsoleUser) -> QueueViewer { QueueViewer(name: user.name, level: user.canDecide ? user.reviewLevel : 0) }

    /// The tabs with their counts for filter `f` (the level tabs after "All waiting").
    func tabs(_ f: QueueFilter, counts: QueueCounts) -> [[String: Any]] {
        var noLevel = f
        noLevel.level = nil
        var tabs: [[String: Any]] = []
        for tab in QueueTab.allCases {
            tabs.append(["id": tab.rawValue, "label": Self.tabLabels[tab] ?? tab.rawValue, "count": counts.byTab[tab] ?? 0,
                         "href": "/queue?" + Views.query(Self.pairs(noLevel, tab: tab)), "active": f.tab == tab && f.level == nil])
            if tab == .pending {
                for l in counts.byLevel {
                    var g = noLevel
                    g.level = l.level
                    tabs.append(["id": "level-\(l.level)", "label": "L\(l.level) \(l.name)", "count": l.count,
                                 "href": "/queue?" + Views.query(Self.pairs(g, tab: .pending)), "active": f.level == l.level])
                }
            }
        }
        return tabs
    }

    func queuePage(_ req: Request, user: ConsoleUser) async throws -> Response {
        let (f, warnings) = Self.queryFilter(req)
        let viewer = viewer(user)
        let page = max(1, min(10_000, req.uri.queryParameters["page"].flatMap { Int(String($0)) } ?? 1))
        let offset = (page - 1) * settings.pageSize
        let (rows, counts, total) = try await database.withConnection { c in
            let rows = try await ConsoleQueries.queue(f, viewer: viewer, stuckAfter: settings.stuckAfter, limit: settings.pageSize, offset: offset,
                                                      on: c, logger: logger)
            let counts = try await ConsoleQueries.counts(f, viewer: viewer, stuckAfter: settings.stuckAfter, on: c, logger: logger)
            return (rows, counts, counts.byTab[f.tab] ?? 0)
        }
        let pairs = Self.pairs(f)
        var pager: [String: Any] = [:]
        if page > 1 { pager["previous"] = "/queue?" + Views.query(pairs + [("page", String(page - 1))]) }
        if Int64(offset + rows.count) < total { pager["next"] = "/queue?" + Views.query(pairs + [("page", String(page + 1))]) }
        let data: [String: Any] = [
            "pager": pager, "hasPager": !pager.isEmpty, "refreshQuery": Views.query(pairs + [("page", page > 1 ? String(page) : "")]), "from": rows.isEmpty ? 0 : offset + 1, "to": offset + rows.count,
            "tabs": tabs(f, counts: counts), "tab": f.tab.rawValue, "rows": rows.map { Views.row($0, viewer: user.name, rates: settings.usdRates) }, "query": Views.query(pairs),
            "total": max(total, Int64(offset + rows.count)), "warnings": warnings, "canDecide": user.canDecide,
            "filterFields": pairs.map { ["name": $0.0, "value": $0.1] },
            "f": ["merchant": f.merchant.map { String($0) } ?? "", "coin": f.coin, "level": f.level.map { String($0) } ?? "", "rule": f.rule,
                  "min": f.minAmount, "max": f.maxAmount, "address": f.address, "txid": f.txid, "businessId": f.businessID],
            "states": Self.states.map { ["value": $0, "label": $0.isEmpty ? "any" : $0, "selected": $0 == f.state] },
            "flags": ([""] + QueueFilter.flags).map { ["value": $0, "label": $0.isEmpty ? "any" : $0.replacingOccurrences(of: "_", with: " "), "selected": $0 == f.flag] },
        ]
        return html(.ok, "queue", title: "Review queue", user: user, data)
    }

    /// The tabs and their counts alone, for the 5-second refresh (the same filter as the page).
    func queueTabs(_ req: Request, user: ConsoleUser) async throws -> Response {
        let (f, _) = Self.queryFilter(req)
        let counts = try await database.withConnection { c in
            try await ConsoleQueries.counts(f, viewer: viewer(user), stuckAfter: settings.stuckAfter, on: c, logger: logger)
        }
        return Self.fragment(library.render(["tabs": tabs(f, counts: counts)], withTemplate: "tabs") ?? "")
    }

    /// The hot wallet header's lines: per chain and coin, what the hot wallets hold against what is
    /// approved and not yet paid (short, and below low-water, marked).
    func hotLines() async throws -> [[String: Any]] {
        let hot = try await database.withConnection { c in try await ConsoleQueries.hotWallets(on: c, logger: logger) }
        return hot.filter { $0.available != 0 || $0.approvedUnpaid != 0 }.map { h in
            let low = config.chains.first { $0.name == h.chain }?.lowWater(h.symbol).map { BigInt($0) }
            var line: [String: Any] = [
                "chain": h.chain, "symbol": h.symbol, "available": Views.amount(h.available, h.decimals), "unpaid": Views.amount(h.approvedUnpaid, h.decimals),
                "short": h.available < h.approvedUnpaid,
            ]
            if let low, h.available < low { line["lowWater"] = Views.amount(low, h.decimals) }
            return line
        }
    }

    /// The hot wallet header as HTML (inside the layout's `#hotbar`, and its refresh fragment).
    func hotHeader() async throws -> String {
        let lines = try await hotLines()
        return library.render(["hot": lines, "hasHot": !lines.isEmpty], withTemplate: "hotbar") ?? ""
    }

    /// The table body alone, for the 5-second refresh.
    func queueRows(_ req: Request, user: ConsoleUser) async throws -> Response {
        let (f, _) = Self.queryFilter(req)
        let page = max(1, min(10_000, req.uri.queryParameters["page"].flatMap { Int(String($0)) } ?? 1))
        let rows = try await database.withConnection { c in
            try await ConsoleQueries.queue(f, viewer: viewer(user), stuckAfter: settings.stuckAfter, limit: settings.pageSize,
                                           offset: (page - 1) * settings.pageSize, on: c, logger: logger)
        }
        return Self.fragment(library.render(["rows": rows.map { Views.row($0, viewer: user.name, rates: settings.usdRates) }], withTemplate: "rows") ?? "")
    }

    func queueCSV(_ req: Request, user: ConsoleUser) async throws -> Response {
        let (f, _) = Self.queryFilter(req)
        let rows = try await database.withConnection { c in
            try await ConsoleQueries.queue(f, viewer: viewer(user), stuckAfter: settings.stuckAfter, limit: 10_000, on: c, logger: logger)
        }
        let csv = Views.csv(
            ["id", "merchant_id", "merchant", "business_id", "chain", "coin", "amount", "address", "state", "reason", "level", "deadline", "approvals",
             "first_approver", "rule", "tx_hash", "remark", "created_at", "updated_at"],
            rows.map { r in
                [String(r.id), String(r.merchantID), r.merchantName, r.businessID, r.chain, r.symbol, Views.amount(r.amount, r.decimals), r.address, r.state,
                 r.stateReason ?? "", r.level.map { String($0) } ?? "", r.deadline.map(Views.time) ?? "", r.state == "pending_review" ? "\(r.firstApprover == nil ? 0 : 1)/\(r.approvalsNeeded)" : "",
                 r.firstApprover ?? "", r.rule ?? "", r.txHash ?? "", r.remark, Views.time(r.createdAt), Views.time(r.updatedAt)]
            })
        return Self.csvResponse(csv, filename: "withdrawals-\(f.tab.rawValue).csv")
    }

    // MARK: Bulk review

    /// Bulk review in two steps: `preview` lists what the selection (ticked rows, or all matching the
    /// filter, up to 1000) would decide and asks to confirm; `run` decides each item on its own, in its
    /// own transaction, with the version it had at preview, and reports done / skipped and why.
    /// Four-eyes approvals are always skipped: they are approved one by one on their own page.
    func bulk(_ req: Request, user: ConsoleUser) async throws -> Response {
        guard user.canDecide else { throw ConsoleRefusal(status: .forbidden, heading: "Not allowed", text: "\(user.name) (\(user.role.rawValue)) decides no reviews.") }
        let form = try await Form.read(req)
        let approve = form["action"] != "reject"
        let reason = form["reason"].trimmingCharacters(in: .whitespaces)
        if !approve && reason.isEmpty {
            throw ConsoleRefusal(status: .unprocessableContent, heading: "Not done", text: "A rejection needs a reason; nothing was changed.")
        }
        if form["step"] == "run" {
            let items: [(Int64, Int)] = form.all("item").compactMap { text in
                let parts = text.split(separator: ":")
                guard parts.count == 2, let id = Int64(parts[0]), let v = Int(parts[1]) else { return nil }
                return (id, v)
            }
            var results: [[String: Any]] = []
            var done = 0
            for (id, version) in items.prefix(1000) {
                let (ok, why) = await bulkDecide(id, version: version, approve: approve, reason: reason, user: user)
                if ok { done += 1 }
                results.append(["id": id, "result": ok ? "done" : "skipped", "why": why])
            }
            try await database.transaction { c in
                try await Audit.record(actor: "console:\(user.name)", action: approve ? "console.bulk_approve" : "console.bulk_reject", target: "withdrawals",
                                       detail: ["done": .int(done), "skipped": .int(results.count - done), "reason": .string(reason)], on: c, logger: logger)
            }
            return html(.ok, "bulk_result", title: "Bulk result", user: user,
                        ["action": approve ? "approve" : "reject", "results": results, "doneCount": done, "skippedCount": results.count - done])
        }
        // Preview: the ticked ids, or everything matching the filter the form carried.
        let (f, _) = Self.filter { key in form.pairs.first { $0.0 == "f_\(key)" }?.1 }
        let picked = Set(form.all("id").compactMap { Int64($0) })
        let rows = try await database.withConnection { c in
            try await ConsoleQueries.queue(f, viewer: viewer(user), stuckAfter: settings.stuckAfter, limit: form["all"] == "1" ? 1000 : 10_000, on: c, logger: logger)
        }
        let chosen = form["all"] == "1" ? rows : rows.filter { picked.contains($0.id) }
        guard !chosen.isEmpty else {
            throw ConsoleRefusal(status: .unprocessableContent, heading: "Nothing selected",
                                 text: "Tick rows (or \"all matching this filter\") that are still in this list; nothing was changed.")
        }
        let items: [[String: Any]] = chosen.map { r in
            var note = ""
            if r.state != "pending_review" { note = "not waiting in review: will be skipped" }
            else if approve && r.approvalsNeeded == 2 { note = "four eyes: will be skipped (approve it on its own page)" }
            return ["id": r.id, "version": r.version, "merchantName": r.merchantName, "amountText": Views.amount(r.amount, r.decimals), "symbol": r.symbol,
                    "address": r.address, "state": r.state, "note": note]
        }
        return html(.ok, "bulk_confirm", title: "Confirm", user: user,
                    ["action": approve ? "approve" : "reject", "actionLabel": approve ? "Approve" : "Reject", "count": items.count, "items": items,
                     "reason": reason])
    }

    /// One bulk item: re-checked and decided alone.
    func bulkDecide(_ id: Int64, version: Int, approve: Bool, reason: String, user: ConsoleUser) async -> (Bool, String) {
        do {
            try await database.transaction { c in
                let status = try await Reviews.status([id], on: c, logger: logger)[id]
                if approve, status?.approvalsNeeded == 2 {
                    throw ConsoleRefusal(status: .conflict, heading: "", text: "four eyes: approve it on its own page, with your TOTP code")
                }
                _ = try await Reviews.decide(id, approve: approve, reason: reason.isEmpty ? nil : reason, expectedVersion: version, reviewer: user.reviewer,
                                             channel: "console", on: c, logger: logger)
            }
            return (true, approve ? "approved" : "rejected")
        } catch let e as ConsoleRefusal {
            return (false, e.text)
        } catch let e as ServiceError {
            return (false, await staleText(id, version: version) ?? e.description)
        } catch let e as ReviewNotAllowed {
            return (false, e.description)
        } catch {
            logger.error("bulk decision failed", metadata: ["withdrawal.id": "\(id)", "error": "\(DatabaseErrors.describe(error))"])
            return (false, "the database did not answer; try it again")
        }
    }

    /// "already decided by X at T" when the withdrawal moved on from `version`; nil when it did not.
    func staleText(_ id: Int64, version: Int) async -> String? {
        guard let (w, last) = try? await database.withConnection({ c in
            (try await Withdrawals.find(id, on: c, logger: logger), try await ConsoleQueries.lastDecision(id, on: c, logger: logger))
        }), let w, w.version != version else { return nil }
        guard let last else { return "changed since you loaded it (now \(w.state)); nothing was changed" }
        let who = last.actor.split(separator: ":").last.map(String.init) ?? last.actor
        let what = ["approve": "approved", "reject": "rejected", "first_approval": "first approval given", "escalate": "escalated", "review": "sent to review"][last.decision]
            ?? last.decision
        return "already decided by \(who) at \(Views.time(last.at)) (\(what); now \(w.state)); nothing was changed"
    }
}
