import BigInt
import Foundation
import GatewayCore
import GatewayRuntime
import GatewayServices

/// Turning service values into what the templates show (text already formatted; escaping is the
/// templates' job).
enum Views {
    /// `2026-11-26 21:17:26Z`.
    static func time(_ d: Date) -> String {
        d.formatted(Date.ISO8601FormatStyle(timeZone: .gmt)).replacingOccurrences(of: "T", with: " ")
    }

    /// `21:17` (UTC), for "alice 21:17".
    static func clock(_ d: Date) -> String {
        let t = time(d)
        return String(t.dropFirst(11).prefix(5))
    }

    /// "12m left", "overdue 3m".
    static func countdown(_ deadline: Date, now: Date = Date()) -> String {
        let s = Int64(deadline.timeIntervalSince(now).rounded())
        let text = DurationText.format(.seconds(abs(s) >= 120 ? abs(s) / 60 * 60 : abs(s)))
        return s >= 0 ? "\(text) left" : "overdue \(text)"
    }

    /// A duration in seconds for people: "82 ms", "4 s", "2 min", "1 h 5 min", "3 d 4 h" (rounded down
    /// to the unit shown: it says how long at least).
    static func age(_ seconds: Double) -> String {
        guard seconds.isFinite else { return "-" }
        let s = max(0, seconds)
        if s < 1 {
            let ms = Int(s * 1000)
            return ms < 1 ? "< 1 ms" : "\(ms) ms"
        }
        let whole = Int64(s)
        if whole < 120 { return "\(whole) s" }
        if whole < 3600 { return "\(whole / 60) min" }
        if whole < 86_400 { return "\(whole / 3600) h" + (whole % 3600 / 60 > 0 ? " \(whole % 3600 / 60) min" : "") }
        return "\(whole / 86_400) d" + (whole % 86_400 / 3600 > 0 ? " \(whole % 86_400 / 3600) h" : "")
    }

    /// "3 s ago", or `none` when there is no time.
    static func ago(_ seconds: Double?, none: String = "never") -> String { seconds.map { age($0) + " ago" } ?? none }

    /// A count with thousands separated: "12,345".
    static func count(_ n: Int64) -> String {
        var digits = String(n.magnitude)
        var grouped = ""
        while digits.count > 3 {
            grouped = "," + digits.suffix(3) + grouped
            digits = String(digits.dropLast(3))
        }
        return (n < 0 ? "-" : "") + digits + grouped
    }

    /// A state name in words: `pending_review` → "pending review".
    static func words(_ name: String) -> String { name.replacingOccurrences(of: "_", with: " ") }

    static func amount(_ units: BigUInt, _ decimals: Int) -> String { CoinAmount.format(units, decimals: decimals) }

    static func amount(_ units: BigInt, _ decimals: Int) -> String {
        units < 0 ? "-" + CoinAmount.format(units.magnitude, decimals: decimals) : CoinAmount.format(units.magnitude, decimals: decimals)
    }

    /// "≈ 1,234.50 USD" for base units of a coin at a configured rate (USD per whole coin), rounded
    /// down to the cent; nil without a rate. Integer arithmetic only.
    static func usd(_ units: BigUInt, decimals: Int, rate: String?) -> String? {
        guard let rate, let scaled = try? CoinAmount.parse(rate, decimals: 8) else { return nil }
        let cents = units * scaled / BigUInt(10).power(decimals + 6)
        var whole = String(cents / 100)
        var grouped = ""
        while whole.count > 3 {
            grouped = "," + whole.suffix(3) + grouped
            whole = String(whole.dropLast(3))
        }
        let c = String(cents % 100)
        return "≈ \(whole)\(grouped).\(c.count == 1 ? "0" + c : c) USD"
    }

    /// "1 of 2 — alice 10:02; you cannot be the second".
    static func approvals(needed: Int, first: String?, firstAt: Date?, viewer: String?) -> String {
        guard needed == 2 else { return "1 approval needed" }
        guard let first else { return "0 of 2 — four eyes: two different reviewers" }
        var text = "1 of 2 — \(first)\(firstAt.map { " " + clock($0) } ?? "")"
        if let viewer, viewer == first { text += "; you cannot be the second" }
        return text
    }

    static func row(_ r: QueueRow, viewer: String, rates: [String: String] = [:]) -> [String: Any] {
        var flags: [String] = []
        if r.firstPayout { flags.append("new destination") }
        if r.approvalsNeeded == 2 { flags.append("four eyes") }
        let overdue = r.state == "pending_review" && (r.deadline.map { $0 < Date() } ?? false)
        if overdue { flags.append("overdue") }
        var out: [String: Any] = [
            "id": r.id, "merchantID": r.merchantID, "merchantName": r.merchantName, "businessID": r.businessID, "amountText": amount(r.amount, r.decimals),
            "symbol": r.symbol, "address": r.address, "chain": r.chain, "state": r.state, "remark": r.remark, "flags": flags, "needsMe": r.needsMe,
            "overdue": overdue, "rule": r.rule ?? "",
            "levelText": r.level.map { "\($0) \(r.levelName ?? "")" } ?? "",
            "approvalsText": r.state == "pending_review" ? approvals(needed: r.approvalsNeeded, first: r.firstApprover, firstAt: r.firstApprovedAt, viewer: viewer) : "",
        ]
        if let reason = r.stateReason { out["stateReason"] = reason }
        if let usd = usd(r.amount, decimals: r.decimals, rate: rates[r.symbol.uppercased()]) { out["usd"] = usd }
        if r.state == "pending_review", let d = r.deadline {
            out["countdown"] = countdown(d)
            out["deadlineEpoch"] = Int64(d.timeIntervalSince1970)
        } else {
            out["countdown"] = r.txHash.map { "tx " + String($0.prefix(12)) + "…" } ?? time(r.updatedAt)
        }
        return out
    }

    /// Percent-encodes a query value (RFC 3986 unreserved kept).
    static func encode(_ s: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return s.addingPercentEncoding(withAllowedCharacters: allowed) ?? ""
    }

    static func query(_ pairs: [(String, String)]) -> String {
        pairs.filter { !$0.1.isEmpty }.map { "\(encode($0.0))=\(encode($0.1))" }.joined(separator: "&")
    }

    /// A CSV cell: quoted, quotes doubled, and a leading = + - @ defused so spreadsheets do not run it.
    static func csvCell(_ s: String) -> String {
        var t = s
        if let first = t.first, "=+-@\t\r".contains(first) { t = "'" + t }
        return "\"" + t.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    static func csv(_ header: [String], _ rows: [[String]]) -> String {
        ([header] + rows).map { $0.map(csvCell).joined(separator: ",") }.joined(separator: "\r\n") + "\r\n"
    }
}
