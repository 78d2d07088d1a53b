import Foundation

/// Line charts of the last hour as inline SVG, drawn on the server: they need no JavaScript and no
/// build step, refresh with the fragment they are in, and carry their own words (a title, a summary,
/// a tooltip per point) for screen readers and for hovering. Colours come from console.css classes:
/// the CSP allows no inline style.
enum Charts {
    /// How a series' values read.
    enum Unit {
        /// Jobs, blocks: whole numbers.
        case count
        /// Seconds, shown as an age ("2 min").
        case seconds

        func text(_ v: Double) -> String {
            switch self {
            case .count: return v == v.rounded() ? Views.count(Int64(v)) : String(format: "%.1f", v)
            case .seconds: return v == 0 ? "0" : Views.age(v)
            }
        }
    }

    /// The drawing area inside the 320 × 120 view box: room on the left for the value labels, below
    /// for the times.
    static let (left, right, top, bottom) = (46.0, 312.0, 8.0, 94.0)

    /// The chart's template values: `values[i]` is minute `start + i` (nil: no sample that minute, a
    /// gap in the line). `limit` draws a dashed line at a warning threshold when it is in range.
    static func chart(id: String, title: String, unit: Unit, start: Date, minutes: Int, values: [Int: Double], limit: Double? = nil,
                      what: String) -> [String: Any] {
        let present = values.filter { (0..<minutes).contains($0.key) }
        let highest = present.values.max() ?? 0
        // At least 2 jobs or blocks (1 s): an idle chart's labels stay whole numbers.
        let scale = niceMaximum(max(highest, unit == .count ? 2 : 1), unit: unit)
        func x(_ i: Int) -> Double { left + (right - left) * Double(i) / Double(max(1, minutes - 1)) }
        func y(_ v: Double) -> Double { bottom - (bottom - top) * min(v, scale) / scale }
        func f(_ d: Double) -> String { String(format: "%.1f", d) }

        // One path; a missing minute lifts the pen.
        var path = ""
        var penDown = false
        var points: [[String: Any]] = []
        for i in 0..<minutes {
            guard let v = present[i] else {
                penDown = false
                continue
            }
            path += (penDown ? " L" : (path.isEmpty ? "M" : " M")) + "\(f(x(i))) \(f(y(v)))"
            penDown = true
            let minute = start.addingTimeInterval(Double(i) * 60)
            // A dot only where there is something to point at; zeros are the baseline.
            if v > 0 {
                points.append(["x": f(x(i)), "y": f(y(v)), "minute": Views.clock(minute), "value": unit.text(v),
                               "raw": v == v.rounded() ? String(Int64(v)) : String(format: "%.3f", v)])
            }
        }
        let latestIndex = present.keys.max()
        var summary: String
        if present.isEmpty {
            summary = "No samples in the last hour."
        } else {
            let peak = present.max { a, b in a.value < b.value || (a.value == b.value && a.key > b.key) }!
            summary = "Highest \(unit.text(peak.value)) at \(Views.clock(start.addingTimeInterval(Double(peak.key) * 60))) UTC"
            if let latestIndex, let latest = present[latestIndex] {
                summary += "; latest \(unit.text(latest)) at \(Views.clock(start.addingTimeInterval(Double(latestIndex) * 60))) UTC"
            }
            let missing = minutes - present.count
            if missing > 0 { summary += "; \(missing) of \(minutes) minutes without a sample" }
            summary += "."
        }
        var out: [String: Any] = [
            "id": id, "title": title, "what": what, "summary": summary, "path": path, "points": points, "empty": present.isEmpty,
            "yTop": unit.text(scale), "yMid": unit.text(scale / 2), "yTopAt": f(top + 4), "yMidAt": f((top + bottom) / 2 + 4), "yZeroAt": f(bottom + 4),
            "midY": f((top + bottom) / 2), "top": f(top), "bottom": f(bottom), "left": f(left), "right": f(right), "labelX": f(left - 4),
            "xStart": Views.clock(start), "xMid": Views.clock(start.addingTimeInterval(Double(minutes / 2) * 60)),
            "xEnd": Views.clock(start.addingTimeInterval(Double(minutes - 1) * 60)) + " UTC", "midX": f(x(minutes / 2)), "timeY": f(bottom + 18),
        ]
        if let limit, limit < scale { out["limit"] = ["y": f(y(limit)), "text": unit.text(limit)] }
        return out
    }

    /// The smallest round value at or above `v`: 1, 2, 5 × 10ⁿ for counts; whole seconds, minutes or
    /// hours for ages, so the top label reads "5 min", not "4 min 48 s".
    static func niceMaximum(_ v: Double, unit: Unit) -> Double {
        switch unit {
        case .count:
            var step = 1.0
            while true {
                for m in [1.0, 2.0, 5.0] where m * step >= v { return m * step }
                step *= 10
            }
        case .seconds:
            let steps: [Double] = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14_400, 28_800, 86_400]
            if let s = steps.first(where: { $0 >= v }) { return s }
            return (v / 86_400).rounded(.up) * 86_400
        }
    }
}
