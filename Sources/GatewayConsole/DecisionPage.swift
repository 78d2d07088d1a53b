import BigInt
import Foundation
import GatewayCore
import GatewayRuntime
import GatewayServices
import HTTPTypes
import Hummingbird
import Logging
import PostgresNIO

/// An approval that needs four eyes came without a good TOTP code.
struct StepUpRequired: Error {}

extension Console {
    /// The decision page: everything needed to decide, the actions the user may take, the timeline.
    func decisionPage(_ id: Int64, user: ConsoleUser, status: HTTPResponse.Status, message: String?, done: String?) async throws -> Response {
        guard let d = try await database.withConnection({ c in try await ConsoleQueries.detail(id, on: c, logger: logger) }) else {
            throw ServiceError.notFound("withdrawal \(id)")
        }
        let w = d.withdrawal
        var data: [String: Any] = [
            "id": w.id, "state": w.state, "amount": w.amount.description, "amountText": Views.amount(w.amount, d.decimals), "symbol": d.symbol,
            "feeText": Views.amount(w.fee, d.decimals), "merchantName": d.merchantName, "merchantID": w.merchantID, "businessID": w.businessID,
            "address": w.address, "chain": w.chain, "remark": w.remark, "endpoint": w.proxypay ? "/mch/withdraw/proxypay" : "/mch/withdraw",
            "stateReason": w.stateReason ?? "", "rule": d.rule ?? "—", "created": Views.time(w.createdAt), "version": w.version,
            "dayText": Views.amount(d.merchantDay, d.decimals), "firstPayout": d.destination.firstPayout, "merchantCount": d.destination.merchantCount,
            "paidCount": d.destination.paidCount, "otherMerchants": d.destination.otherMerchants,
            "hasOtherMerchants": !d.destination.otherMerchants.isEmpty,
        ]
        if !w.memo.isEmpty { data["memo"] = w.memo }
        if let usd = Views.usd(w.amount, decimals: d.decimals, rate: settings.usdRates[d.symbol.uppercased()]) { data["usd"] = usd }
        if let detail = d.ruleDetail, !detail.isEmpty { data["ruleDetail"] = detail }
        if let last = d.destination.lastPaidAt { data["lastPaid"] = Views.time(last) }
        data["limits"] = limitRows(d)
        if let message { data["message"] = message }
        if let done { data["done"] = done }
        data["hot"] = d.hotWallets.map { h -> [String: Any] in
            let free = h.expected - h.inFlight
            return ["address": h.address.isEmpty ? "no hot wallet recorded" : h.address, "expectedText": Views.amount(h.expected, d.decimals),
                    "inFlightText": Views.amount(h.inFlight, d.decimals), "unpaidText": Views.amount(h.approvedUnpaid, d.decimals), "symbol": d.symbol,
                    "short": free < h.approvedUnpaid]
        }
        let pending = w.state == "pending_review"
        if let r = d.review {
            data["review"] = [
                "level": r.level, "levelName": r.levelName, "sla": DurationText.format(r.sla), "deadline": Views.time(r.deadline),
                "deadlineEpoch": Int64(r.deadline.timeIntervalSince1970), "countdown": pending ? Views.countdown(r.deadline) : "decided",
                "fourEyes": r.approvalsNeeded == 2,
                "approvalsText": Views.approvals(needed: r.approvalsNeeded, first: r.firstApprover, firstAt: firstApprovalAt(d), viewer: user.name),
            ]
        }
        // What this user may do here, or why not.
        let level = d.review?.level ?? 1
        let fourEyes = d.review?.approvalsNeeded == 2
        var cannot: String?
        if !pending {
            cannot = nil
        } else if !user.canDecide {
            cannot = "You (\(user.role.rawValue)) decide no reviews."
        } else if user.reviewLevel < level {
            cannot = "This waits at level \(level); you decide up to level \(user.reviewLevel)."
        }
        let isFirst = fourEyes && d.review?.firstApprover == user.name
        if pending && cannot == nil {
            data["canAct"] = true
            if isFirst {
                // Four eyes by person: the first approver may still reject, never approve again.
                data["canApprove"] = false
                data["cannotApprove"] = "You gave the first approval; four eyes: a second, different reviewer must approve."
            } else {
                data["canApprove"] = true
            }
            data["needsCode"] = fourEyes && !isFirst
            let hotShort = w.stateReason == Payments.hotWalletReason
            data["approveLabel"] = hotShort ? "Release (pay again)" : (fourEyes ? (d.review?.firstApprover == nil ? "Give first approval" : "Give second approval") : "Approve")
            data["approveConfirm"] = "Approve withdrawal \(w.id): \(Views.amount(w.amount, d.decimals)) \(d.symbol) to \(w.address)?"
        }
        if let cannot { data["cannotAct"] = cannot }
        // After approval: the payment's progress.
        if ["approved", "signed", "broadcast", "confirmed", "failed"].contains(w.state) {
            let needed = config.chains.first { $0.name == w.chain }?.confirmations ?? 0
            let mined = d.txs.last { $0.blockHeight != nil }?.blockHeight
            let depth = mined.flatMap { m in d.scannedHeight.map { max(0, $0 - m + 1) } }
            let order = ["approved", "signed", "broadcast", "confirmed"]
            let reached = order.firstIndex(of: w.state) ?? 0
            var steps: [[String: Any]] = [
                ["label": "approved", "reached": reached >= 0], ["label": "signed", "reached": reached >= 1], ["label": "broadcast", "reached": reached >= 2],
            ]
            steps.append(["label": depth.map { "confirming \(min(Int($0), needed))/\(needed)" } ?? "confirming", "reached": depth != nil || reached >= 3])
            steps.append(["label": w.state == "failed" ? "failed" : "confirmed", "reached": reached >= 3 || w.state == "failed"])
            data["payment"] = [
                "steps": steps, "txHash": w.txHash as Any,
                "txs": d.txs.map { t -> [String: Any] in
                    ["hash": t.hash, "state": t.state, "nonce": t.nonce.map { String($0) } ?? "", "replaces": t.replaces.map { "#\($0)" } ?? "",
                     "broadcasts": t.broadcasts, "block": t.blockHeight.map { String($0) } ?? "", "error": t.lastError ?? ""]
                },
            ] as [String: Any]
        }
        // Dead jobs and callbacks of this withdrawal can be retried by an admin (audited).
        var deadJobs: [String: Int64] = [:]
        var deadCallbacks: [String: Int64] = [:]
        if user.canRetry {
            try await database.withConnection { c in
                for try await (jid, stage, kind) in try await c.query("""
                    SELECT id, stage, kind FROM gateway.jobs WHERE ref = \("withdrawal:\(id)") AND state = 'dead'
                    """, logger: logger).decode((Int64, String, String).self) { deadJobs["\(stage) \(kind)"] = jid }
                for try await (cid, status) in try await c.query("""
                    SELECT id, status FROM gateway.callbacks WHERE trade_type = 2 AND trade_id = \(id) AND state = 'dead'
                    """, logger: logger).decode((Int64, Int16).self) { deadCallbacks["callback status \(status)"] = cid }
            }
        }
        data["timeline"] = d.timeline.map { e -> [String: Any] in
            var row: [String: Any] = ["at": Views.time(e.at), "kind": e.kind, "title": e.title, "actor": e.actor, "detail": e.detail, "id": id]
            if e.kind == "job", e.detail.hasPrefix("dead"), let jid = deadJobs[e.title] { row["retryJob"] = jid }
            if e.kind == "callback", e.detail.hasPrefix("dead"), let cid = deadCallbacks[e.title] { row["resendCallback"] = cid }
            return row
        }
        return html(status, "decision", title: "Withdrawal \(id)", user: user, data)
    }

    /// Every limit the review rules apply to this withdrawal (the merchant's and the destination's
    /// daily limits, the per-hour velocity to the address, the automatic approval ceiling, the four-eyes
    /// threshold), with what is used against it now. Limits not configured for the coin are left out.
    func limitRows(_ d: WithdrawalDetail) -> [[String: Any]] {
        let w = d.withdrawal, symbol = d.symbol.uppercased(), rules = config.review
        func units(_ text: String?) -> BigUInt? { text.flatMap { try? CoinAmount.parse($0, decimals: d.decimals) } }
        func coins(_ u: BigUInt) -> String { "\(Views.amount(u, d.decimals)) \(d.symbol)" }
        var rows: [[String: Any]] = []
        func add(_ id: String, _ label: String, used: String, limit: String, over: Bool, note: String) {
            rows.append(["id": id, "label": label, "used": used, "limit": limit, "over": over, "note": note])
        }
        if let limit = units(rules.amountRule(\.dailyLimitPerMerchant, symbol: symbol, merchant: w.merchantID)) {
            let used = d.usage.merchantDay + w.amount
            add("merchant-day", "merchant, 24 h", used: coins(used), limit: coins(limit), over: used > limit,
                note: "\(coins(d.usage.merchantDay)) approved or paid in 24 h + this one")
        }
        if let limit = units(rules.amountRule(\.dailyLimitPerAddress, symbol: symbol, merchant: w.merchantID)) {
            let used = d.usage.addressDay + w.amount
            add("address-day", "destination, 24 h", used: coins(used), limit: coins(limit), over: used > limit,
                note: "\(coins(d.usage.addressDay)) approved or paid to it in 24 h (any merchant) + this one")
        }
        if let perHour = rules.maxPerAddressPerHour(merchant: w.merchantID) {
            add("velocity", "withdrawals to this address, 1 h", used: "\(d.usage.addressHour)", limit: "\(perHour)", over: d.usage.addressHour > Int64(perHour),
                note: "any merchant, any state but rejected")
        }
        let autoText = rules.limit(symbol: symbol, merchant: w.merchantID)
        if let limit = units(autoText) {
            add("auto-approve", "automatic approval up to", used: coins(w.amount), limit: coins(limit), over: w.amount > limit,
                note: w.amount > limit ? "above: people decide" : "within")
        } else {
            add("auto-approve", "automatic approval up to", used: coins(w.amount), limit: "none", over: false, note: "no automatic approval of \(d.symbol): people decide")
        }
        if let limit = units(rules.amountRule(\.fourEyesAbove, symbol: symbol, merchant: w.merchantID)) {
            add("four-eyes", "four eyes above", used: coins(w.amount), limit: coins(limit), over: w.amount > limit,
                note: w.amount > limit ? "above: two reviewers" : "within: one reviewer")
        }
        return rows
    }

    func firstApprovalAt(_ d: WithdrawalDetail) -> Date? {
        d.timeline.last(where: { $0.kind == "decision" && $0.title == "first_approval" })?.at
    }

    /// Approve or reject from the decision page. The form's version must still be the row's; a
    /// four-eyes approval needs a fresh TOTP code. Nothing changes on any refusal.
    func decide(_ req: Request, id: Int64, approve: Bool, user: ConsoleUser) async throws -> Response {
        guard user.canDecide else {
            throw ConsoleRefusal(status: .forbidden, heading: "Not allowed", text: "\(user.name) (\(user.role.rawValue)) decides no reviews.")
        }
        let form = try await Form.read(req)
        guard let version = Int(form["version"]) else { throw ServiceError.invalid("the form carries no version; reload the page") }
        let text = (approve ? form["comment"] : form["reason"]).trimmingCharacters(in: .whitespacesAndNewlines)
        if !approve && text.isEmpty {
            return try await decisionPage(id, user: user, status: .unprocessableContent, message: "A rejection needs a reason; nothing was changed.", done: nil)
        }
        do {
            let outcome = try await database.transaction { c -> ReviewOutcome in
                // Lock the withdrawal first: the four-eyes check below reads what the decision will use.
                for try await _ in try await c.query("SELECT id FROM gateway.withdrawals WHERE id = \(id) FOR UPDATE", logger: logger).decode(Int64.self) {}
                if approve, let status = try await Reviews.status([id], on: c, logger: logger)[id], status.approvalsNeeded == 2,
                   status.firstApprover != user.name
                {
                    guard try await ConsoleAccounts.useTOTP(userID: user.id, code: form["code"], secrets: secrets, on: c, logger: logger) else { throw StepUpRequired() }
                }
                return try await Reviews.decide(id, approve: approve, reason: text.isEmpty ? nil : text, expectedVersion: version, reviewer: user.reviewer,
                                                channel: "console", on: c, logger: logger)
            }
            let done: String
            switch outcome {
            case .firstApproval: done = "first_approval"
            case .decided(let w): done = w.state == "approved" ? "approved" : "rejected"
            }
            return Self.redirect("/withdrawals/\(id)?done=\(done)")
        } catch is StepUpRequired {
            return try await decisionPage(id, user: user, status: .forbidden,
                                          message: "This approval needs four eyes: enter a current code from your authenticator (each code works once). Nothing was changed.",
                                          done: nil)
        } catch let e as ServiceError {
            if case .notFound = e { throw e }
            let text = await staleText(id, version: version) ?? "\(e.description); nothing was changed"
            return try await decisionPage(id, user: user, status: .conflict, message: Self.capitalized(text), done: nil)
        } catch let e as ReviewNotAllowed {
            return try await decisionPage(id, user: user, status: .forbidden, message: e.description, done: nil)
        }
    }

    static func capitalized(_ s: String) -> String { s.prefix(1).uppercased() + s.dropFirst() }
}
