import Foundation

/// The operator console (`console:`): its own listener, loopback by default, and how it guards
/// sign-in and sessions.
public struct ConsoleConfig: Sendable, Equatable {
    /// Where gateway-console listens. Keep it on loopback or a VPN address: put a TLS proxy in front
    /// for anything else (and set `secure_cookies`).
    public var listen: ListenAddress
    /// Sets `Secure` on the session cookie: required when browsers reach the console over TLS.
    public var secureCookies: Bool
    /// A session without a request for this long is signed out.
    public var idleTimeout: Duration
    /// Failed sign-ins allowed per user name, and (five times as many) per client address, within `signInWindow`.
    public var signInFailures: Int
    public var signInWindow: Duration
    /// bcrypt cost of new passwords (4…16).
    public var bcryptCost: Int
    /// A withdrawal left approved/signed/broadcast this long without a change is listed as stuck.
    public var stuckAfter: Duration
    /// Most rows a queue page shows (the CSV export and bulk "all matching" go up to 10 000).
    public var pageSize: Int
    /// US dollars per whole coin, by symbol (decimal text, at most 8 decimals), shown beside amounts.
    /// Configured by hand: the console fetches no prices.
    public var usdRates: [String: String] = [:]
    /// The console's address as operators' browsers reach it (`https://console.example/`), without a
    /// trailing slash; nil: operator notifications carry no link.
    public var publicURL: String?
    /// Where the key sealing console users' TOTP secrets comes from (64 hex digits): an environment
    /// variable's name (wins when set) and a file (a relative path is relative to the configuration
    /// file); neither: secrets are stored in the clear.
    public var totpKeyEnv: String?
    public var totpKeyFile: String?
    /// A systemd credential holding the same key (`LoadCredential=`): wins over the file, not over the variable.
    public var totpKeyCredential: String?

    public init(listen: ListenAddress = .init(host: "127.0.0.1", port: 8090), secureCookies: Bool = false, idleTimeout: Duration = .seconds(1800),
                signInFailures: Int = 5, signInWindow: Duration = .seconds(900), bcryptCost: Int = 12, stuckAfter: Duration = .seconds(900),
                pageSize: Int = 200) {
        self.listen = listen
        self.secureCookies = secureCookies
        self.idleTimeout = idleTimeout
        self.signInFailures = signInFailures
        self.signInWindow = signInWindow
        self.bcryptCost = bcryptCost
        self.stuckAfter = stuckAfter
        self.pageSize = pageSize
    }

    static func read(_ r: ConfigReader) throws -> ConsoleConfig {
        var c = ConsoleConfig()
        if let listen = try r.optionalString("listen") { c.listen = try ListenAddress(parsing: listen, key: r.keyPath("listen")) }
        c.secureCookies = try r.bool("secure_cookies", default: c.secureCookies)
        c.idleTimeout = try r.duration("idle_timeout", default: c.idleTimeout, minimum: .seconds(60))
        guard c.idleTimeout <= .seconds(86_400) else { throw ConfigError(key: r.keyPath("idle_timeout"), "at most 24h") }
        c.signInFailures = try r.int("sign_in_failures", default: c.signInFailures, in: 1...1000)
        c.signInWindow = try r.duration("sign_in_window", default: c.signInWindow, minimum: .seconds(10))
        c.bcryptCost = try r.int("bcrypt_cost", default: c.bcryptCost, in: 4...16)
        c.stuckAfter = try r.duration("stuck_after", default: c.stuckAfter, minimum: .seconds(10))
        c.pageSize = try r.int("page_size", default: c.pageSize, in: 10...5000)
        let rates = try r.section("usd_rates")
        c.usdRates = try ReviewRulesConfig.readLimits(rates)
        for (symbol, rate) in c.usdRates where (try? CoinAmount.parse(rate, decimals: 8)) == nil {
            throw ConfigError(key: rates.keyPath(symbol), "expected a positive rate with at most 8 decimals, found '\(rate)'")
        }
        if let url = try r.optionalString("public_url") {
            guard let parts = URLComponents(string: url), ["http", "https"].contains(parts.scheme?.lowercased() ?? ""), let host = parts.host, !host.isEmpty,
                  parts.query == nil, parts.fragment == nil, parts.user == nil
            else { throw ConfigError(key: r.keyPath("public_url"), "expected an http:// or https:// URL such as https://console.example/, found '\(url)'") }
            c.publicURL = url.hasSuffix("/") ? String(url.dropLast()) : url
        }
        c.totpKeyEnv = try r.optionalString("totp_key_env")
        c.totpKeyFile = try r.optionalString("totp_key_file")
        if let name = try r.optionalString("totp_key_credential") {
            try SystemdCredentials.validate(name, key: r.keyPath("totp_key_credential"))
            c.totpKeyCredential = name
        }
        try r.finish()
        return c
    }
}
