import BigInt
import ChainKit
import Foundation

/// How one coin's deposits are swept (`chains.<name>.sweep.coins.<SYMBOL>`). Amounts in base units.
public struct SweepCoinConfig: Sendable, Equatable {
    /// The coin's symbol, upper case.
    public var symbol: String
    /// A deposit address is swept once its confirmed balance of the coin reaches this.
    public var threshold: BigUInt
    /// The merchant's hot address receives sweeps while it holds less than this; above it they go to
    /// the wallet's cold address (nil: no cap, always hot).
    public var hotCap: BigUInt?
    /// Dust rule, in millionths: a sweep whose gas would cost more than this fraction of its amount waits.
    public var dustFractionPPM: BigUInt
    /// Tokens only: what one whole native coin is worth in this token's base units, to weigh gas
    /// (native) against the amount (token) for the dust rule. nil: the dust rule does not apply to the token.
    public var nativePrice: BigUInt?

    public init(symbol: String, threshold: BigUInt, hotCap: BigUInt? = nil, dustFractionPPM: BigUInt = 1_000_000, nativePrice: BigUInt? = nil) {
        self.symbol = symbol.uppercased()
        self.threshold = threshold
        self.hotCap = hotCap
        self.dustFractionPPM = dustFractionPPM
        self.nativePrice = nativePrice
    }
}

/// Aggregation sweeps on one chain (`chains.<name>.sweep`): the planner's interval, the gas margin of
/// top-ups, and the coins swept.
public struct SweepConfig: Sendable, Equatable {
    /// How often the chain's planner looks for deposit addresses to sweep.
    public var interval: Duration = .seconds(30)
    /// Most sweeps one planner run starts.
    public var maxPerRun: Int = 500
    /// Between runs the planner looks only at addresses whose balance may have changed (a confirmed
    /// deposit, an ended sweep); every this long (and on a sweep-worker's first run) it looks at all of
    /// them, which picks up a lowered threshold or a newly swept coin.
    public var fullScanEvery: Duration = .seconds(6 * 3600)
    /// A gas top-up sends the estimated gas × this margin, in percent (100 to 1000).
    public var gasMarginPercent: Int = 150
    /// The coins swept, by upper-case symbol.
    public var coins: [String: SweepCoinConfig] = [:]
    /// Gas top-ups come from each wallet's dedicated gas address (`…/account'/2/0`, `gatewayctl wallet show`
    /// prints it) instead of its hot address.
    public var gasWallet: Bool = false

    public init(interval: Duration = .seconds(30), maxPerRun: Int = 500, gasMarginPercent: Int = 150, coins: [SweepCoinConfig] = [],
                gasWallet: Bool = false) {
        self.interval = interval
        self.maxPerRun = maxPerRun
        self.gasMarginPercent = gasMarginPercent
        self.gasWallet = gasWallet
        for c in coins { self.coins[c.symbol] = c }
    }

    static func read(_ r: ConfigReader, chain: ChainConfig) throws -> SweepConfig {
        var s = SweepConfig()
        s.interval = try r.duration("interval", default: s.interval, minimum: .milliseconds(10))
        s.maxPerRun = try r.int("max_per_run", default: s.maxPerRun, in: 1...100_000)
        s.fullScanEvery = try r.duration("full_scan_every", default: s.fullScanEvery, minimum: .seconds(1))
        s.gasMarginPercent = try r.int("gas_margin_percent", default: s.gasMarginPercent, in: 100...1000)
        s.gasWallet = try r.bool("gas_wallet", default: s.gasWallet)
        let coins = try r.section("coins")
        for symbol in coins.keys {
            let c = try coins.section(symbol)
            guard let decimals = chain.decimals(of: symbol) else {
                let known = chain.tokens.map(\.symbol) + [chain.nativeSymbol]
                throw ConfigError(key: coins.keyPath(symbol), "not a coin of this chain; expected one of \(known.joined(separator: ", "))")
            }
            let isToken = chain.token(symbol) != nil
            let threshold = try amount(c, "threshold", decimals: decimals, required: true)!
            guard threshold > 0 else { throw ConfigError(key: c.keyPath("threshold"), "must be above 0") }
            let cap = try amount(c, "hot_cap", decimals: decimals, required: false)
            let fraction = try amount(c, "dust_fraction", decimals: 6, required: false) ?? 1_000_000
            guard fraction > 0, fraction <= 1_000_000 else {
                throw ConfigError(key: c.keyPath("dust_fraction"), "a fraction above 0 and at most 1 (e.g. \"0.05\" for 5 %)")
            }
            var price: BigUInt?
            if isToken {
                price = try amount(c, "native_price", decimals: decimals, required: false)
            } else if try c.optionalString("native_price") != nil {
                throw ConfigError(key: c.keyPath("native_price"), "only tokens have a native price (the native coin weighs its own gas)")
            }
            try c.finish()
            let coin = SweepCoinConfig(symbol: symbol, threshold: threshold, hotCap: cap, dustFractionPPM: fraction, nativePrice: price)
            guard s.coins.updateValue(coin, forKey: coin.symbol) == nil else { throw ConfigError(key: coins.keyPath(symbol), "given twice") }
        }
        try coins.finish()
        guard !s.coins.isEmpty else { throw ConfigError(key: r.keyPath("coins"), "name at least one coin to sweep (e.g. USDT: {threshold: \"100\"})") }
        try r.finish()
        return s
    }

    /// A whole-coin amount ("100", "0.5") in base units.
    static func amount(_ r: ConfigReader, _ key: String, decimals: Int, required: Bool) throws -> BigUInt? {
        guard let text = try r.optionalString(key) else {
            if required { throw ConfigError(key: r.keyPath(key), "is required (a whole-coin amount such as \"100\")") }
            return nil
        }
        let cleaned = text.replacingOccurrences(of: "_", with: "")
        if cleaned.allSatisfy({ $0 == "0" || $0 == "." }) && cleaned.contains("0") { return 0 }
        do {
            return try CoinAmount.parse(cleaned, decimals: decimals)
        } catch .tooManyDecimals(let d) {
            throw ConfigError(key: r.keyPath(key), "at most \(d) decimal places, found '\(text)'")
        } catch {
            throw ConfigError(key: r.keyPath(key), "expected a whole-coin amount such as \"100\" or \"0.5\", found '\(text)'")
        }
    }
}
