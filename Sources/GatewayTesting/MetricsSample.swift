import GatewayRuntime

/// Reads this process's metrics as a scrape would: the registry's Prometheus text, parsed, for tests to compare
/// a value before and after something happened (the registry is process-wide, so other tests' counts are there
/// too).
public enum MetricsSample {
    /// The value of the series `name` whose labels include every pair of `labels`, summed over the matching
    /// series; nil when none matches. Makes swift-metrics report to the registry first (a metric created before
    /// that goes nowhere).
    public static func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        Observability.bootstrapMetrics()
        let text = Observability.exposition()
        var total: Double?
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let (series, value) = parse(line), series.name == name,
                  labels.allSatisfy({ series.labels[$0.key] == $0.value }) else { continue }
            total = (total ?? 0) + value
        }
        return total
    }

    /// `name{a="x",b="y"} 1.5` → its name, labels and value. Label values here never hold `"` or `,` escapes
    /// that matter to tests, but escaped quotes are honoured.
    static func parse(_ line: Substring) -> ((name: String, labels: [String: String]), Double)? {
        guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { return nil }
        let head = line[..<space]
        guard let brace = head.firstIndex(of: "{") else { return ((String(head), [:]), value) }
        var labels: [String: String] = [:]
        var rest = head[head.index(after: brace)...].dropLast()  // without the closing brace
        while let eq = rest.firstIndex(of: "=") {
            let key = String(rest[..<eq].drop { $0 == "," || $0 == " " })
            var i = rest.index(eq, offsetBy: 2)  // past ="
            var text = ""
            while i < rest.endIndex, rest[i] != "\"" {
                if rest[i] == "\\", rest.index(after: i) < rest.endIndex { i = rest.index(after: i) }
                text.append(rest[i])
                i = rest.index(after: i)
            }
            labels[key] = text
            rest = i < rest.endIndex ? rest[rest.index(after: i)...] : rest[rest.endIndex...]
        }
        return ((String(head[..<brace]), labels), value)
    }
}
