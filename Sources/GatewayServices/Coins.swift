import BigInt
import Foundation
import GatewayCore
import GatewayRuntime
import Logging
import PostgresNIO

/// A coin the gateway handles.
public struct Coin: Sendable, Equatable {
    public var id: Int32
    public var chain: String
    /// The chain's SLIP-44 code, e.g. `195`.
    public var mainCoinType: String
    /// The token's contract address, or `mainCoinType` for the native coin.
    public var coinType: String
    public var symbol: String
    public var name: String
    public var coinName: String
    public var mainSymbol: String
    public var logo: String
    public var decimals: Int
    public var isToken: Bool
    public var minDeposit: BigUInt
    public var withdrawalFee: BigUInt
    public var enabled: Bool

    public init(id: Int32 = 0, chain: String, mainCoinType: String, coinType: String, symbol: String, name: String, coinName: String,
                mainSymbol: String = "", logo: String = "", decimals: Int, isToken: Bool, minDeposit: BigUInt = 0,
                withdrawalFee: BigUInt = 0, enabled: Bool = true) {
        self.id = id
        self.chain = chain
        self.mainCoinType = mainCoinType
        self.coinType = coinType
        self.symbol = symbol
        self.name = name
        self.coinName = coinName
        self.mainSymbol = mainSymbol
        self.logo = logo
        self.decimals = decimals
        self.isToken = isToken
        self.minDeposit = minDeposit
        self.withdrawalFee = withdrawalFee
        self.enabled = enabled
    }
}

/// Coin administration and lookups.
public enum Coins {
    static let columns = """
        id, chain, main_coin_type, coin_type, symbol, name, coin_name, main_symbol, logo, decimals, is_token,
        min_deposit::text, withdrawal_fee::text, enabled
        """

    static func decode(_ rows: PostgresRowSequence) async throws -> [Coin] {
        var out: [Coin] = []
        for try await row in rows {
            let r = try row.decode((Int32, String, String, String, String, String, String, String, String, Int32, Bool, String, String, Bool).self)
            out.append(Coin(id: r.0, chain: r.1, mainCoinType: r.2, coinType: r.3, symbol: r.4, name: r.5, coinName: r.6, mainSymbol: r.7,
                            logo: r.8, decimals: Int(r.9), isToken: r.10, minDeposit: BigUInt(r.11) ?? 0, withdrawalFee: BigUInt(r.12) ?? 0,
                            enabled: r.13))
        }
        return out
    }

    /// A token's canonical coin type: EVM contract addresses in lower case (as Udun writes them).
    public static func canonicalCoinType(_ coinType: String) -> String {
        coinType.hasPrefix("0x") || coinType.hasPrefix("0X") ? coinType.lowercased() : coinType
    }

    public static func add(_ coin: Coin, directory: ChainDirectory, actor: String, on c: DatabaseConnection, logger: Logger) async throws -> Coin {
        guard directory.kind(coin.chain) != nil else { throw ServiceError.invalid("chain '\(coin.chain)' is not configured") }
        guard !coin.mainCoinType.isEmpty, coin.mainCoinType.allSatisfy(\.isNumber) else {
            throw ServiceError.invalid("main coin type must be a SLIP-44 number such as 195")
        }
        let coinType = canonicalCoinType(coin.coinType)
        if coin.isToken {
            guard case .success = directory.canonicalAddress(coinType, chain: coin.chain) else {
                throw ServiceError.invalid("a token's coin type must be its contract address on \(coin.chain)")
            }
        } else {
            guard coinType == coin.mainCoinType else { throw ServiceError.invalid("a native coin's coin type must equal its main coin type") }
        }
        guard (0...36).contains(coin.decimals) else { throw ServiceError.invalid("decimals must be between 0 and 36") }
        let inserted: [Coin]
        do {
            inserted = try await decode(try await c.query("""
                INSERT INTO gateway.coins (chain, main_coin_type, coin_type, symbol, name, coin_name, main_symbol, logo, decimals, is_token,
                                           min_deposit, withdrawal_fee, enabled)
                VALUES (\(coin.chain), \(coin.mainCoinType), \(coinType), \(coin.symbol), \(coin.name), \(coin.coinName), \(coin.mainSymbol),
                        \(coin.logo), \(Int32(coin.decimals)), \(coin.isToken), \(coin.minDeposit.description)::numeric,
                        \(coin.withdrawalFee.description)::numeric, \(coin.enabled))
                RETURNING \(unescaped: columns)
                """, logger: logger))
        } catch where DatabaseErrors.sqlState(error) == "23505" {
            throw ServiceError.conflict("coin \(coin.mainCoinType)/\(coinType) already exists")
        }
        guard let added = inserted.first else { throw ServiceError.invalid("coin was not added") }
        try await Audit.record(actor: actor, action: "coin.add", target: "coin:\(added.id)",
                               detail: ["symbol": .string(added.symbol), "chain": .string(added.chain)], on: c, logger: logger)
        return added
    }

    public static func list(on c: DatabaseConnection, logger: Logger) async throws -> [Coin] {
        try await decode(try await c.query("SELECT \(unescaped: columns) FROM gateway.coins ORDER BY id", logger: logger))
    }

    /// A coin by its codes (enabled ones only unless `includeDisabled`); for the native coin
    /// `coinType` may be nil or equal to `mainCoinType`.
    public static func find(mainCoinType: String, coinType: String?, includeDisabled: Bool = false, on c: DatabaseConnection,
                            logger: Logger) async throws -> Coin? {
        let ct = canonicalCoinType(coinType ?? mainCoinType)
        return try await decode(try await c.query("""
            SELECT \(unescaped: columns) FROM gateway.coins
            WHERE main_coin_type = \(mainCoinType) AND coin_type = \(ct) AND (enabled OR \(includeDisabled))
            """, logger: logger)).first
    }

    public static func setEnabled(_ id: Int32, _ enabled: Bool, actor: String, on c: DatabaseConnection, logger: Logger) async throws -> Coin {
        guard let coin = try await decode(try await c.query(
            "UPDATE gateway.coins SET enabled = \(enabled) WHERE id = \(id) RETURNING \(unescaped: columns)", logger: logger)).first
        else { throw ServiceError.notFound("coin \(id)") }
        try await Audit.record(actor: actor, action: enabled ? "coin.enable" : "coin.disable", target: "coin:\(id)", on: c, logger: logger)
        return coin
    }
}
