import Foundation
import Logging

/// The pipeline stages that claim jobs from the queue; each has a section under `stages:`.
public enum Stage: String, CaseIterable, Sendable, Codable {
    case review, autopay, chain, callback, sweep

    /// The executable that runs this stage.
    public var executable: String { "\(rawValue)-worker" }
}

/// A host and port to listen on, written `host:port`.
public struct ListenAddress: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `host:port` (IPv6 as `[::1]:port`); port 0 means "any free port".
    public init(parsing text: String, key: String) throws {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard let colon = trimmed.lastIndex(of: ":") else {
            throw ConfigError(key: key, "expected host:port, found '\(text)'")
        }
        var host = String(trimmed[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty, let port = Int(trimmed[trimmed.index(after: colon)...]), (0...65535).contains(port) else {
            throw ConfigError(key: key, "expected host:port with a port from 0 to 65535, found '\(text)'")
        }
        self.host = host
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// Exponential backoff with full jitter: attempt n waits a uniformly random time in
/// `0 ... min(cap, base × factor^(n-1))`.
public struct BackoffPolicy: Sendable, Equatable {
    public var base: Duration
    public var factor: Double
    public var cap: Duration

    public init(base: Duration, factor: Double, cap: Duration) {
        self.base = base
        self.factor = factor
        self.cap = cap
    }

    /// The upper bound of the delay after failed attempt `attempt` (1-based).
    public func ceiling(attempt: Int) -> Duration {
        let baseMs = Double(base.components.seconds) * 1000 + Double(base.components.attoseconds) / 1e15
        let capMs = Double(cap.components.seconds) * 1000 + Double(cap.components.attoseconds) / 1e15
        let exponent = Double(max(0, attempt - 1))
        let raw = baseMs * pow(factor, exponent)
        let ms = raw.isFinite ? min(capMs, raw) : capMs
        return .milliseconds(Int64(ms.rounded(.down)))
    }

    /// A random delay in `0 ... ceiling(attempt)` (full jitter).
    public func delay<G: RandomNumberGenerator>(attempt: Int, using rng: inout G) -> Duration {
        let c = ceiling(attempt: attempt)
        let ms = c.components.seconds * 1000 + c.components.attoseconds / 1_000_000_000_000_000
        guard ms > 0 else { return .zero }
        return .milliseconds(Int64.random(in: 0...ms, using: &rng))
    }

    /// A random delay using the system generator.
    public func delay(attempt: Int) -> Duration {
        var rng = SystemRandomNumberGenerator()
        return delay(attempt: attempt, using: &rng)
    }
}

/// How one stage's worker process claims and runs jobs.
public struct WorkerConfig: Sendable, Equatable {
    /// Jobs run at once by one process.
    public var concurrency: Int
    /// Most jobs claimed by one statement.
    public var batchSize: Int
    /// How often an idle worker looks for due jobs when no notification arrives.
    public var pollInterval: Duration
    /// How long a claim is held before another worker may take the job over.
    public var lease: Duration
    /// Attempts before a failing job is dead.
    public var maxAttempts: Int
    public var backoff: BackoffPolicy
    /// How long in-flight jobs may run on after SIGTERM before they are released.
    public var shutdownGrace: Duration
    /// Where this process serves `/metrics`; nil serves none.
    public var metricsListen: ListenAddress?

    public init(concurrency: Int = 8, batchSize: Int = 10, pollInterval: Duration = .seconds(1), lease: Duration = .seconds(60),
                maxAttempts: Int = 20, backoff: BackoffPolicy = .init(base: .seconds(1), factor: 2, cap: .seconds(600)),
                shutdownGrace: Duration = .seconds(10), metricsListen: ListenAddress? = nil) {
        self.concurrency = concurrency
        self.batchSize = batchSize
        self.pollInterval = pollInterval
        self.lease = lease
        self.maxAttempts = maxAttempts
        self.backoff = backoff
        self.shutdownGrace = shutdownGrace
        self.metricsListen = metricsListen
    }

    static func read(_ r: ConfigReader) throws -> WorkerConfig {
        let d = WorkerConfig()
        var c = WorkerConfig()
        c.concurrency = try r.int("concurrency", default: d.concurrency, in: 1...10_000)
        c.batchSize = try r.int("batch_size", default: d.batchSize, in: 1...10_000)
        c.pollInterval = try r.duration("poll_interval", default: d.pollInterval, minimum: .milliseconds(10))
        c.lease = try r.duration("lease", default: d.lease, minimum: .seconds(1))
        c.maxAttempts = try r.int("max_attempts", default: d.maxAttempts, in: 1...1_000_000)
        let b = try r.section("backoff")
        c.backoff = BackoffPolicy(
            base: try b.duration("base", default: d.backoff.base, minimum: .milliseconds(1)),
            factor: try b.double("factor", default: d.backoff.factor, in: 1...100),
            cap: try b.duration("cap", default: d.backoff.cap, minimum: .milliseconds(1)))
        try b.finish()
        guard c.backoff.cap >= c.backoff.base else {
            throw ConfigError(key: b.keyPath("cap"), "must not be smaller than \(b.keyPath("base"))")
        }
        c.shutdownGrace = try r.duration("shutdown_grace", default: d.shutdownGrace)
        if let m = try r.optionalString("metrics_listen") { c.metricsListen = try ListenAddress(parsing: m, key: r.keyPath("metrics_listen")) }
        try r.finish()
        return c
    }
}

/// `gateway-api`: its listener (which also serves `/metrics` and `/healthz`) and the Open API's
/// protections beyond upstream Udun.
public struct APIConfig: Sendable, Equatable {
    public var listen: ListenAddress
    /// Larger request bodies are refused.
    public var maxBodyBytes: Int
    /// A request's timestamp must be within this of server time; zero turns the check off.
    public var timestampWindow: Duration
    /// Refuse a request whose signature was already seen from that merchant within the window.
    public var replayProtection: Bool
    /// Open API requests per merchant per minute (per gateway-api process); a merchant's own limit overrides it.
    public var rateLimitPerMinute: Int
    /// Which callback URLs merchants may register.
    public var callbackURLs: CallbackURLPolicy
    /// How long gateway-api keeps a merchant's key and status, the coins, and a merchant's wallets in
    /// memory before reading them again: a disabled merchant or rotated key takes effect within it.
    /// Zero reads them on every request.
    public var cacheTTL: Duration

    public init(listen: ListenAddress = .init(host: "127.0.0.1", port: 8080), maxBodyBytes: Int = 65536,
                timestampWindow: Duration = .seconds(300), replayProtection: Bool = true, rateLimitPerMinute: Int = 1200,
                callbackURLs: CallbackURLPolicy = .init(), cacheTTL: Duration = .seconds(1)) {
        self.cacheTTL = cacheTTL
        self.listen = listen
        self.maxBodyBytes = maxBodyBytes
        self.timestampWindow = timestampWindow
        self.replayProtection = replayProtection
        self.rateLimitPerMinute = rateLimitPerMinute
        self.callbackURLs = callbackURLs
    }
}

/// How the callback stage delivers (its queue settings are under `stages.callback`).
public struct CallbackSettings: Sendable, Equatable {
    /// How long one delivery may take before it counts as failed.
    public var requestTimeout: Duration
    /// Deliveries in flight to one merchant endpoint (scheme, host and port) per process.
    public var perEndpointConcurrency: Int
    /// A callback still undelivered this long after it was created is dead (listed, re-sendable).
    public var deadAfter: Duration

    public init(requestTimeout: Duration = .seconds(10), perEndpointConcurrency: Int = 4, deadAfter: Duration = .seconds(86_400)) {
        self.requestTimeout = requestTimeout
        self.perEndpointConcurrency = perEndpointConcurrency
        self.deadAfter = deadAfter
    }
}

/// Queue-wide settings.
public struct QueueConfig: Sendable, Equatable {
    /// How long per-minute completion counts are kept for the monitor views.
    public var statsRetention: Duration
    public init(statsRetention: Duration = .seconds(7 * 86_400)) { self.statsRetention = statsRetention }
}

/// Where operators hear about what needs them: a withdrawal that entered review, one past its SLA, a hot
/// wallet short, a stuck payment, a deep reorg.
public struct NotificationSettings: Sendable, Equatable {
    /// A webhook that takes a JSON POST `{"text": …}` (Slack, Mattermost, Discord-compatible, …); nil: log only.
    public var webhookURL: String?
    /// Each withdrawal the rules send to people is announced (false: only escalations and the rest).
    public var enteredReview: Bool

    public init(webhookURL: String? = nil, enteredReview: Bool = true) {
        self.webhookURL = webhookURL
        self.enteredReview = enteredReview
    }
}

/// One level of manual review: who looks at a withdrawal first (level 1), and after how long an
/// undecided one moves up (its SLA).
public struct ReviewLevel: Sendable, Equatable {
    public var name: String
    public var sla: Duration

    public init(name: String, sla: Duration) {
        self.name = name
        self.sla = sla
    }
}

/// Review rules that a merchant may override (`review:` and `review.merchants.<id>:`). Amounts are
/// whole coin units (decimal text) by coin symbol, upper case; an absent symbol has no such rule.
public struct ReviewRuleSet: Sendable, Equatable {
    /// Above it (approved and paid withdrawals of the merchant in the last 24 h plus this one), people decide.
    public var dailyLimitPerMerchant: [String: String]
    /// Above it (approved and paid withdrawals to the destination in the last 24 h, any merchant, plus this one), people decide.
    public var dailyLimitPerAddress: [String: String]
    /// Above it, two distinct reviewers must approve (and no rule approves).
    public var fourEyesAbove: [String: String]
    /// More withdrawals than this to one destination within an hour (any merchant, this one included) go to people; 0: no limit.
    public var maxPerAddressPerHour: Int?
    /// A first payout of the merchant to a destination it never had approved or paid goes to people.
    public var newDestinationToPeople: Bool?

    public init(dailyLimitPerMerchant: [String: String] = [:], dailyLimitPerAddress: [String: String] = [:], fourEyesAbove: [String: String] = [:],
                maxPerAddressPerHour: Int? = nil, newDestinationToPeople: Bool? = nil) {
        self.dailyLimitPerMerchant = dailyLimitPerMerchant
        self.dailyLimitPerAddress = dailyLimitPerAddress
        self.fourEyesAbove = fourEyesAbove
        self.maxPerAddressPerHour = maxPerAddressPerHour
        self.newDestinationToPeople = newDestinationToPeople
    }

    static let keys = ["daily_limit_per_merchant", "daily_limit_per_address", "four_eyes_above", "max_per_address_per_hour", "new_destination_to_people"]

    static func read(_ r: ConfigReader) throws -> ReviewRuleSet {
        var s = ReviewRuleSet()
        s.dailyLimitPerMerchant = try ReviewRulesConfig.readLimits(try r.section("daily_limit_per_merchant"))
        s.dailyLimitPerAddress = try ReviewRulesConfig.readLimits(try r.section("daily_limit_per_address"))
        s.fourEyesAbove = try ReviewRulesConfig.readLimits(try r.section("four_eyes_above"))
        if r.value("max_per_address_per_hour") != nil {
            s.maxPerAddressPerHour = try r.int("max_per_address_per_hour", in: 0...1_000_000)
        }
        if r.value("new_destination_to_people") != nil {
            s.newDestinationToPeople = try r.bool("new_destination_to_people", default: false)
        }
        return s
    }
}

/// The review stage's rules (`review:`): what a new withdrawal must pass to be approved without people,
/// and how people review the rest (levels with SLAs).
public struct ReviewRulesConfig: Sendable, Equatable {
    /// Whole coin units (decimal text) by coin symbol, upper case: withdrawals up to it may be approved by rule.
    public var autoApproveUpTo: [String: String]
    /// Per merchant overrides of `autoApproveUpTo` (a symbol absent there falls back to the global limit).
    public var merchantAutoApproveUpTo: [Int64: [String: String]]
    /// Destinations refused outright (rejected, callback 2).
    public var deny: [String]
    /// When not empty, only these destinations may be paid without people.
    public var allow: [String]
    /// The rules every merchant gets unless it overrides them.
    public var rules: ReviewRuleSet
    /// Per merchant overrides of `rules`, rule by rule (and, for amounts, coin by coin).
    public var merchantRules: [Int64: ReviewRuleSet]
    /// Manual review levels, lowest first; a withdrawal enters at the first.
    public var levels: [ReviewLevel]

    /// One level, `operations`, with a 24 h SLA: what a configuration without `levels` gets.
    public static let defaultLevels = [ReviewLevel(name: "operations", sla: .seconds(86_400))]

    public init(autoApproveUpTo: [String: String] = [:], merchantAutoApproveUpTo: [Int64: [String: String]] = [:], deny: [String] = [],
                allow: [String] = [], rules: ReviewRuleSet = ReviewRuleSet(), merchantRules: [Int64: ReviewRuleSet] = [:],
                levels: [ReviewLevel] = ReviewRulesConfig.defaultLevels) {
        self.autoApproveUpTo = autoApproveUpTo
        self.merchantAutoApproveUpTo = merchantAutoApproveUpTo
        self.deny = deny
        self.allow = allow
        self.rules = rules
        self.merchantRules = merchantRules
        self.levels = levels
    }

    /// The automatic approval limit of `symbol` for a merchant, as decimal text; nil: none (people decide).
    public func limit(symbol: String, merchant: Int64) -> String? {
        merchantAutoApproveUpTo[merchant]?[symbol.uppercased()] ?? autoApproveUpTo[symbol.uppercased()]
    }

    /// An amount rule of `symbol` for a merchant (its override, else the global one), as decimal text; nil: no such rule.
    public func amountRule(_ rule: KeyPath<ReviewRuleSet, [String: String]>, symbol: String, merchant: Int64) -> String? {
        merchantRules[merchant]?[keyPath: rule][symbol.uppercased()] ?? rules[keyPath: rule][symbol.uppercased()]
    }

    /// Most withdrawals to one destination per hour for a merchant's withdrawals; nil: no limit.
    public func maxPerAddressPerHour(merchant: Int64) -> Int? {
        let n = merchantRules[merchant]?.maxPerAddressPerHour ?? rules.maxPerAddressPerHour ?? 0
        return n > 0 ? n : nil
    }

    /// Whether a merchant's first payout to a destination goes to people.
    public func newDestinationToPeople(merchant: Int64) -> Bool {
        merchantRules[merchant]?.newDestinationToPeople ?? rules.newDestinationToPeople ?? false
    }

    static func readLimits(_ r: ConfigReader) throws -> [String: String] {
        var out: [String: String] = [:]
        for symbol in r.keys {
            let text = try r.string(symbol)
            guard text.range(of: #"^[0-9]+(\.[0-9]+)?$"#, options: .regularExpression) != nil else {
                throw ConfigError(key: r.keyPath(symbol), "expected an amount in whole coin units such as 1000 or 0.5, found '\(text)'")
            }
            out[symbol.uppercased()] = text
        }
        try r.finish()
        return out
    }

    static func readAddresses(_ r: ConfigReader, _ key: String) throws -> [String] {
        guard let v = r.value(key) else { return [] }
        guard case .sequence(let items, _) = v else { throw ConfigError(key: r.keyPath(key), "expected a list of addresses") }
        return try items.enumerated().map { i, item in
            guard case .scalar(let a, _) = item, !a.isEmpty else { throw ConfigError(key: r.keyPath(key) + "[\(i)]", "expected an address") }
            return a
        }
    }

    static func readLevels(_ r: ConfigReader) throws -> [ReviewLevel] {
        guard let v = r.value("levels") else { return defaultLevels }
        let key = r.keyPath("levels")
        guard case .sequence(let items, _) = v, !items.isEmpty else {
            throw ConfigError(key: key, "expected a list of levels such as [{name: operations, sla: 30m}, {name: finance, sla: 2h}]")
        }
        var out: [ReviewLevel] = []
        for (i, item) in items.enumerated() {
            let l = try ConfigReader(item, path: "\(key)[\(i)]")
            let name = try l.string("name").trimmingCharacters(in: .whitespaces)
            guard !name.isEmpty, name.count <= 100 else { throw ConfigError(key: l.keyPath("name"), "expected a name of 1 to 100 characters") }
            guard !out.contains(where: { $0.name == name }) else { throw ConfigError(key: l.keyPath("name"), "level \(name) is listed twice") }
            let sla = try l.duration("sla", minimum: .seconds(1))
            try l.finish()
            out.append(ReviewLevel(name: name, sla: sla))
        }
        return out
    }

    static func read(_ r: ConfigReader) throws -> ReviewRulesConfig {
        var c = ReviewRulesConfig()
        c.autoApproveUpTo = try readLimits(try r.section("auto_approve_up_to"))
        c.deny = try readAddresses(r, "deny")
        c.allow = try readAddresses(r, "allow")
        c.rules = try ReviewRuleSet.read(r)
        c.levels = try readLevels(r)
        let merchants = try r.section("merchants")
        for key in merchants.keys {
            guard let id = Int64(key), id > 0 else {
                _ = merchants.value(key)
                throw ConfigError(key: merchants.keyPath(key), "expected a merchant number")
            }
            let m = try merchants.section(key)
            c.merchantAutoApproveUpTo[id] = try readLimits(try m.section("auto_approve_up_to"))
            c.merchantRules[id] = try ReviewRuleSet.read(m)
            try m.finish()
        }
        try merchants.finish()
        try r.finish()
        return c
    }
}

/// Automatic payment settings (`autopay:`); per-chain fee settings are under `chains.<name>.payments`.
public struct AutopaySettings: Sendable, Equatable {
    /// A withdrawal sent back to review because the hot wallet was short is released again after this
    /// long (nil: only an operator releases it, with `gatewayctl review approve`).
    public var hotWalletRetry: Duration?
    /// Most payments one signing run takes (one transaction, one nonce allocation per hot address).
    public var maxBatch: Int = 200

    public init(hotWalletRetry: Duration? = nil, maxBatch: Int = 200) {
        self.hotWalletRetry = hotWalletRetry
        self.maxBatch = maxBatch
    }
}

/// The whole configuration, loaded once at start-up from `workers.yml` and the environment.
public struct GatewayConfig: Sendable {
    public var database: DatabaseConfig
    public var logLevel: Logger.Level
    public var queue: QueueConfig
    public var api: APIConfig
    public var callbacks: CallbackSettings
    /// Operator notifications (`notifications:`).
    public var notifications = NotificationSettings()
    /// The review rules (`review:`).
    public var review = ReviewRulesConfig()
    public var stages: [Stage: WorkerConfig]
    /// The chains (`chains:`), in file order.
    public var chains: [ChainConfig] = []
    /// Where the seed is (`wallet:`).
    public var wallet = WalletConfig()
    /// Automatic payment (`autopay:`).
    public var autopay = AutopaySettings()
    /// The operator console (`console:`).
    public var console = ConsoleConfig()
    /// Where the file was read from (for messages).
    public var source: String

    public init(database: DatabaseConfig = .init(), logLevel: Logger.Level = .info, queue: QueueConfig = .init(),
                api: APIConfig = .init(), callbacks: CallbackSettings = .init(), stages: [Stage: WorkerConfig] = [:],
                source: String = "(defaults)") {
        self.database = database
        self.logLevel = logLevel
        self.queue = queue
        self.api = api
        self.callbacks = callbacks
        self.stages = stages
        self.source = source
    }

    /// The worker settings of a stage (defaults where the file has no section).
    public func worker(_ stage: Stage) -> WorkerConfig { stages[stage] ?? WorkerConfig() }

    /// The environment variables that override the file: the database settings and secrets.
    public static let environmentKeys = ["DATABASE_URL", "POSTGRES_HOSTNAME", "POSTGRES_PORT", "POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"]

    /// Loads and validates a configuration file, then applies environment overrides.
    public static func load(path: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> GatewayConfig {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigError(key: "", "cannot read \(path): \(error.localizedDescription)")
        }
        do {
            var config = try parse(yaml: text, environment: environment)
            config.source = path
            return config
        } catch var e as ConfigError {
            e.problem += " (in \(path))"
            throw e
        }
    }

    /// Parses configuration text; see `load(path:environment:)`.
    public static func parse(yaml: String, environment: [String: String] = [:]) throws -> GatewayConfig {
        let root = try ConfigReader(try ConfigValue.parse(yaml: yaml))
        var config = GatewayConfig()

        let db = try root.section("database")
        if let url = try db.optionalString("url") { try config.database.apply(url: url, key: db.keyPath("url")) }
        // The nodes of a highly available formation, as a list (the URL's host list otherwise).
        let hostList = try db.strings("hosts")
        if !hostList.isEmpty {
            config.database.hosts = try hostList.enumerated().map { i, h in try DatabaseEndpoint(parsing: h, key: "\(db.keyPath("hosts"))[\(i)]") }
        }
        if let monitor = try db.optionalString("monitor_url") {
            let url = try PostgresURL.parse(monitor, key: db.keyPath("monitor_url"))
            guard url.hosts.count == 1 else { throw ConfigError(key: db.keyPath("monitor_url"), "the monitor is one server: give one host:port") }
            config.database.monitor = .init(endpoint: url.hosts[0], user: url.user ?? "autoctl_node", password: url.password,
                                            database: url.database ?? "pg_auto_failover", tls: url.tls ?? .disable,
                                            formation: try db.string("monitor_formation", default: "default"))
        } else if try db.optionalString("monitor_formation") != nil {
            throw ConfigError(key: db.keyPath("monitor_formation"), "needs database.monitor_url")
        }
        config.database.probeInterval = try db.duration("probe_interval", default: config.database.probeInterval, minimum: .milliseconds(100))
        config.database.probeTimeout = try db.duration("probe_timeout", default: config.database.probeTimeout, minimum: .milliseconds(100))
        config.database.poolSize = try db.int("pool_size", default: config.database.poolSize, in: 1...1000)
        config.database.connectTimeout = try db.duration("connect_timeout", default: config.database.connectTimeout, minimum: .seconds(1))
        if let name = try db.optionalString("password_credential") {
            try SystemdCredentials.validate(name, key: db.keyPath("password_credential"))
            config.database.passwordCredential = name
        }
        try db.finish()

        let level = try root.string("log_level", default: "info")
        guard let l = Logger.Level(rawValue: level) else {
            throw ConfigError(key: "log_level", "expected one of trace, debug, info, notice, warning, error, critical; found '\(level)'")
        }
        config.logLevel = l

        let q = try root.section("queue")
        config.queue.statsRetention = try q.duration("stats_retention", default: config.queue.statsRetention, minimum: .seconds(3600))
        try q.finish()

        let api = try root.section("api")
        if let listen = try api.optionalString("listen") { config.api.listen = try ListenAddress(parsing: listen, key: api.keyPath("listen")) }
        config.api.maxBodyBytes = try api.int("max_body_bytes", default: config.api.maxBodyBytes, in: 1024...16_777_216)
        config.api.timestampWindow = try api.duration("timestamp_window", default: config.api.timestampWindow)
        config.api.replayProtection = try api.bool("replay_protection", default: config.api.replayProtection)
        config.api.rateLimitPerMinute = try api.int("rate_limit_per_minute", default: config.api.rateLimitPerMinute, in: 1...10_000_000)
        config.api.cacheTTL = try api.duration("cache_ttl", default: config.api.cacheTTL)
        guard config.api.cacheTTL <= .seconds(60) else { throw ConfigError(key: "api.cache_ttl", "at most 60s (a disabled merchant must not keep working longer)") }
        let urls = try api.section("callback_urls")
        config.api.callbackURLs.allowLoopback = try urls.bool("allow_loopback", default: false)
        config.api.callbackURLs.allowPrivate = try urls.bool("allow_private", default: false)
        try urls.finish()
        try api.finish()

        let cb = try root.section("callbacks")
        config.callbacks.requestTimeout = try cb.duration("request_timeout", default: config.callbacks.requestTimeout, minimum: .seconds(1))
        config.callbacks.perEndpointConcurrency = try cb.int("per_endpoint_concurrency", default: config.callbacks.perEndpointConcurrency, in: 1...1000)
        config.callbacks.deadAfter = try cb.duration("dead_after", default: config.callbacks.deadAfter, minimum: .seconds(60))
        try cb.finish()

        let notifications = try root.section("notifications")
        if let url = try notifications.optionalString("webhook_url") {
            guard let u = URLComponents(string: url), let scheme = u.scheme, ["http", "https"].contains(scheme), !(u.host ?? "").isEmpty else {
                throw ConfigError(key: "notifications.webhook_url", "expected an http:// or https:// URL")
            }
            config.notifications.webhookURL = url
        }
        config.notifications.enteredReview = try notifications.bool("entered_review", default: true)
        try notifications.finish()
        config.review = try ReviewRulesConfig.read(try root.section("review"))

        let stages = try root.section("stages")
        for key in stages.keys {
            guard let stage = Stage(rawValue: key) else {
                _ = stages.value(key)
                throw ConfigError(key: stages.keyPath(key), "unknown stage; the stages are \(Stage.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            config.stages[stage] = try WorkerConfig.read(try stages.section(key))
        }
        try stages.finish()
        config.chains = try ChainConfig.readAll(try root.section("chains"), environment: environment)
        config.wallet = try WalletConfig.read(try root.section("wallet"))
        let autopay = try root.section("autopay")
        if let retry = try autopay.optionalString("hot_wallet_retry"), !retry.isEmpty {
            config.autopay.hotWalletRetry = try autopay.duration("hot_wallet_retry", minimum: .seconds(1))
            _ = retry
        }
        config.autopay.maxBatch = try autopay.int("max_batch", default: config.autopay.maxBatch, in: 1...10_000)
        try autopay.finish()
        config.console = try ConsoleConfig.read(try root.section("console"))
        try root.finish()

        try config.database.resolvePassword(environment)
        try config.applyEnvironment(environment)
        return config
    }

    /// Environment overrides of the database settings (see `DatabaseConfig.applyEnvironment`).
    public mutating func applyEnvironment(_ env: [String: String]) throws {
        try database.applyEnvironment(env)
    }
}
