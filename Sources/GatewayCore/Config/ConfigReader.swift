import Foundation
import Yams

/// An error in `workers.yml` or its environment overrides; the message names the key.
public struct ConfigError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The dotted path of the offending key, e.g. `stages.callback.lease`.
    public var key: String
    /// What is wrong with it, in words an operator understands.
    public var problem: String

    public init(key: String, _ problem: String) {
        self.key = key
        self.problem = problem
    }

    public var description: String {
        key.isEmpty ? "configuration: \(problem)" : "configuration key '\(key)': \(problem)"
    }
}

/// A parsed YAML value with the line it came from.
public indirect enum ConfigValue: Sendable, Equatable {
    case scalar(String, line: Int)
    case null(line: Int)
    case mapping([(key: String, value: ConfigValue)], line: Int)
    case sequence([ConfigValue], line: Int)

    public static func == (lhs: ConfigValue, rhs: ConfigValue) -> Bool {
        switch (lhs, rhs) {
        case (.scalar(let a, _), .scalar(let b, _)): return a == b
        case (.null, .null): return true
        case (.sequence(let a, _), .sequence(let b, _)): return a == b
        case (.mapping(let a, _), .mapping(let b, _)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        default: return false
        }
    }

    var line: Int {
        switch self {
        case .scalar(_, let l), .null(let l), .mapping(_, let l), .sequence(_, let l): return l
        }
    }

    var kindName: String {
        switch self {
        case .scalar: return "a value"
        case .null: return "nothing"
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        }
    }

    /// Parses YAML text; a syntax error names the line.
    public static func parse(yaml: String) throws -> ConfigValue {
        let node: Node?
        do {
            node = try Yams.compose(yaml: yaml)
        } catch {
            throw ConfigError(key: "", "YAML syntax error: \(error)")
        }
        guard let node else { return .mapping([], line: 1) }
        return try convert(node)
    }

    private static func convert(_ node: Node) throws -> ConfigValue {
        let line = (node.mark?.line ?? 0)
        switch node {
        case .scalar(let s):
            if s.style == .plain, ["", "~", "null", "Null", "NULL"].contains(s.string) { return .null(line: line) }
            return .scalar(s.string, line: line)
        case .mapping(let m):
            var pairs: [(key: String, value: ConfigValue)] = []
            var seen = Set<String>()
            for (k, v) in m {
                guard let key = k.string else { throw ConfigError(key: "", "line \(line): a key must be a plain string") }
                guard seen.insert(key).inserted else { throw ConfigError(key: key, "appears twice in one mapping (line \(k.mark?.line ?? line))") }
                pairs.append((key, try convert(v)))
            }
            return .mapping(pairs, line: line)
        case .sequence(let seq):
            return .sequence(try seq.map(convert), line: line)
        case .alias:
            throw ConfigError(key: "", "line \(line): YAML aliases are not supported")
        }
    }
}

/// Reads one mapping of the configuration strictly: every key must be consumed, so an unknown
/// (misspelt) key stops the process with its name instead of being ignored.
public final class ConfigReader {
    /// The dotted path of this mapping.
    public let path: String
    private let pairs: [(key: String, value: ConfigValue)]
    private var used = Set<String>()

    public init(_ value: ConfigValue, path: String = "") throws {
        self.path = path
        switch value {
        case .mapping(let pairs, _): self.pairs = pairs
        case .null: self.pairs = []
        default: throw ConfigError(key: path, "expected a mapping, found \(value.kindName)")
        }
    }

    /// The dotted path of a key of this mapping.
    public func keyPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    /// All keys present, in file order.
    public var keys: [String] { pairs.map(\.key) }

    /// The raw value of a key, marking it used; nil when absent or null.
    public func value(_ key: String) -> ConfigValue? {
        used.insert(key)
        guard let v = pairs.first(where: { $0.key == key })?.value else { return nil }
        if case .null = v { return nil }
        return v
    }

    /// A nested mapping; an absent key reads as an empty mapping.
    public func section(_ key: String) throws -> ConfigReader {
        try ConfigReader(value(key) ?? .null(line: 0), path: keyPath(key))
    }

    /// A nested mapping, or nil when the key is absent.
    public func optionalSection(_ key: String) throws -> ConfigReader? {
        guard let v = value(key) else { return nil }
        return try ConfigReader(v, path: keyPath(key))
    }

    /// A scalar string, or nil when absent.
    public func optionalString(_ key: String) throws -> String? {
        guard let v = value(key) else { return nil }
        guard case .scalar(let s, _) = v else { throw ConfigError(key: keyPath(key), "expected a value, found \(v.kindName)") }
        return s
    }

    /// A required scalar string.
    public func string(_ key: String) throws -> String {
        guard let s = try optionalString(key) else { throw ConfigError(key: keyPath(key), "is required") }
        return s
    }

    /// A string with a default for an absent key.
    public func string(_ key: String, default d: String) throws -> String { try optionalString(key) ?? d }

    /// An integer within `range`.
    public func int(_ key: String, default d: Int? = nil, in range: ClosedRange<Int> = Int.min...Int.max) throws -> Int {
        guard let s = try optionalString(key) else {
            guard let d else { throw ConfigError(key: keyPath(key), "is required") }
            return d
        }
        guard let n = Int(s.replacingOccurrences(of: "_", with: "")) else {
            throw ConfigError(key: keyPath(key), "expected a whole number, found '\(s)'")
        }
        guard range.contains(n) else {
            throw ConfigError(key: keyPath(key), "must be between \(range.lowerBound) and \(range.upperBound), found \(n)")
        }
        return n
    }

    /// A decimal number (for factors, not money) within `range`.
    public func double(_ key: String, default d: Double, in range: ClosedRange<Double>) throws -> Double {
        guard let s = try optionalString(key) else { return d }
        guard let n = Double(s), n.isFinite else { throw ConfigError(key: keyPath(key), "expected a number, found '\(s)'") }
        guard range.contains(n) else {
            throw ConfigError(key: keyPath(key), "must be between \(range.lowerBound) and \(range.upperBound), found \(s)")
        }
        return n
    }

    /// A boolean (`true`/`false`, `yes`/`no`, `on`/`off`).
    public func bool(_ key: String, default d: Bool) throws -> Bool {
        guard let s = try optionalString(key) else { return d }
        switch s.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: throw ConfigError(key: keyPath(key), "expected true or false, found '\(s)'")
        }
    }

    /// A duration such as `250ms`, `30s`, `5m`, `1h`, `7d`, at least `minimum`.
    public func duration(_ key: String, default d: Duration? = nil, minimum: Duration = .zero) throws -> Duration {
        guard let s = try optionalString(key) else {
            guard let d else { throw ConfigError(key: keyPath(key), "is required") }
            return d
        }
        guard let parsed = DurationText.parse(s) else {
            throw ConfigError(key: keyPath(key), "expected a duration like 250ms, 30s, 5m, 1h or 7d, found '\(s)'")
        }
        guard parsed >= minimum else {
            throw ConfigError(key: keyPath(key), "must be at least \(DurationText.format(minimum)), found '\(s)'")
        }
        return parsed
    }

    /// A list of scalar strings.
    public func strings(_ key: String, default d: [String] = []) throws -> [String] {
        guard let v = value(key) else { return d }
        guard case .sequence(let items, _) = v else { throw ConfigError(key: keyPath(key), "expected a list, found \(v.kindName)") }
        return try items.enumerated().map { i, item in
            guard case .scalar(let s, _) = item else { throw ConfigError(key: "\(keyPath(key))[\(i)]", "expected a value, found \(item.kindName)") }
            return s
        }
    }

    /// Throws for the first key that was never read: unknown keys are errors, not silently ignored.
    public func finish() throws {
        for (key, value) in pairs where !used.contains(key) {
            throw ConfigError(key: keyPath(key), "unknown key (line \(value.line + 1)); check its spelling and section")
        }
    }
}

/// Human duration text: `250ms`, `30s`, `5m`, `1h`, `7d` (one unit; whole numbers).
public enum DurationText {
    /// Parses duration text; nil when it is not of that form.
    public static func parse(_ text: String) -> Duration? {
        let t = text.trimmingCharacters(in: .whitespaces)
        let units: [(String, Int64)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000)]
        for (suffix, millis) in units where t.hasSuffix(suffix) {
            let number = t.dropLast(suffix.count)
            // "ms" also ends in "s": make sure the remaining part is a number.
            guard !number.isEmpty, number.allSatisfy(\.isNumber), let n = Int64(number) else { continue }
            let (product, overflow) = n.multipliedReportingOverflow(by: millis)
            guard !overflow else { return nil }
            return .milliseconds(product)
        }
        return nil
    }

    /// Formats a duration with the largest unit that divides it exactly.
    public static func format(_ d: Duration) -> String {
        let ms = d.components.seconds * 1000 + d.components.attoseconds / 1_000_000_000_000_000
        for (suffix, unit) in [("d", Int64(86_400_000)), ("h", 3_600_000), ("m", 60_000), ("s", 1000)] where ms != 0 && ms % unit == 0 {
            return "\(ms / unit)\(suffix)"
        }
        return "\(ms)ms"
    }
}

extension Duration {
    /// The duration in seconds, fractional.
    public var inSeconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
    /// The duration in whole milliseconds.
    public var inMilliseconds: Int64 { components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000 }
}
