import BigInt
import Foundation
import GatewayAPI
import GatewayCore
import GatewayRuntime
import GatewayServices
import GatewayTesting
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import PostgresNIO
import Testing

let log = TestDatabase.logger

/// Account xpubs and their first deposit addresses from vectors/hd_wallet.json (abandon … about).
enum Vectors {
    static let tronXpub = "xpub6D1AabNHCupeiLM65ZR9UStMhJ1vCpyV4XbZdyhMZBiJXALQtmn9p42VTQckoHVn8WNqS7dqnJokZHAHcHGoaQgmv8D45oNUKx6DZMNZBCd"
    static let tronAddresses = ["TUEZSdKsoDHQMeZwihtdoBiN46zxhGWYdH", "TSeJkUh4Qv67VNFwY8LaAxERygNdy6NQZK"]
    static let ethXpub = "xpub6DCoCpSuQZB2jawqnGMEPS63ePKWkwWPH4TU45Q7LPXWuNd8TMtVxRrgjtEshuqpK3mdhaWHPFsBngh5GFZaM6si3yZdUsT8ddYM3PwnATt"
    static let ethAddresses = ["0x9858EfFD232B4033E47d90003D41EC34EcaEda94", "0x6Fac4D18c912343BF86fa7049364Dd4E424Ab9C0"]
    static let usdtTRC20 = "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"
    static let usdtERC20 = "0xdac17f958d2ee523a2206206994597c13d831ec7"
    /// A valid TRON address that belongs to nobody here.
    static let foreignTron = "TLng7RobC5jcNtw1XPxoyMiiifEksYEosp"
}

/// A migrated database with two merchants, four coins and wallets, and the API built on it.
struct APIFixture: Sendable {
    let db: Database
    let merchantA: Int64
    let keyA: String
    let merchantB: Int64
    let keyB: String
    let coins: [String: Coin]
    let config: GatewayConfig

    static func make(_ db: Database, api: APIConfig = APIConfig(callbackURLs: .init(allowLoopback: true), cacheTTL: .zero)) async throws -> APIFixture {
        try await db.transaction { c in
            let (a, sa) = try await Merchants.create(name: "Alpha Exchange", actor: "test", on: c, logger: log)
            let (b, sb) = try await Merchants.create(name: "Beta Games", actor: "test", on: c, logger: log)
            var coins: [String: Coin] = [:]
            for coin in [
                Coin(chain: "tron", mainCoinType: "195", coinType: "195", symbol: "TRX", name: "TRX", coinName: "TRON", decimals: 6, isToken: false),
                Coin(chain: "tron", mainCoinType: "195", coinType: Vectors.usdtTRC20, symbol: "USDT", name: "USDT", coinName: "TRON",
                     mainSymbol: "TRX", decimals: 6, isToken: true, withdrawalFee: 1_000_000),
                Coin(chain: "ethereum", mainCoinType: "60", coinType: "60", symbol: "ETH", name: "ETH", coinName: "Ethereum", decimals: 18, isToken: false),
                Coin(chain: "ethereum", mainCoinType: "60", coinType: Vectors.usdtERC20, symbol: "USDT", name: "USDT", coinName: "Ethereum",
                     mainSymbol: "ETH", decimals: 6, isToken: true),
            ] {
                let added = try await Coins.add(coin, directory: .standard, actor: "test", on: c, logger: log)
                coins["\(added.chain).\(added.symbol)"] = added
            }
            _ = try await Wallets.attach(merchantID: a.id, chain: "tron", xpub: Vectors.tronXpub, accountIndex: 0, coldAddress: nil,
                                         directory: .standard, actor: "test", on: c, logger: log)
            _ = try await Wallets.attach(merchantID: a.id, chain: "ethereum", xpub: Vectors.ethXpub, accountIndex: 0, coldAddress: nil,
                                         directory: .standard, actor: "test", on: c, logger: log)
            var config = GatewayConfig()
            config.api = api
            return APIFixture(db: db, merchantA: a.id, keyA: sa.apiKey, merchantB: b.id, keyB: sb.apiKey, coins: coins, config: config)
        }
    }

    var app: some ApplicationProtocol { buildApplication(config: config, database: db, directory: .standard, logger: log) }

    func count(_ sql: PostgresQuery) async throws -> Int64 {
        var n: Int64 = -1
        do {
            for try await v in try await db.query(sql).decode(Int64.self) { n = v }
        } catch {
            Issue.record("\(sql.sql): \(DatabaseErrors.describe(error))")
            throw error
        }
        return n
    }
}

/// How a client writes the envelope: the official SDKs differ (udun-protocol.md §1).
enum Client {
    case php, java, go, raw(timestamp: JSONValue, nonce: JSONValue)

    var now: Int64 { Int64(Date().timeIntervalSince1970) }

    /// The envelope's JSON text for a business body string, signed with `key`.
    func envelope(body: String, key: String, nonceOverride: String? = nil, timestampOverride: JSONValue? = nil, signOverride: String? = nil) -> String {
        let (timestamp, nonce): (JSONValue, JSONValue)
        switch self {
        case .php: (timestamp, nonce) = (.int(now), .int(Int.random(in: 100_000...999_999)))
        case .java:
            let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789")
            (timestamp, nonce) = (.string(String(now * 1000 + Int64.random(in: 0...999))), .string(String((0..<6).map { _ in alphabet.randomElement()! })))
        case .go: (timestamp, nonce) = (.int(now), .int(1000))
        case .raw(let t, let n): (timestamp, nonce) = (t, n)
        }
        let ts = timestampOverride ?? timestamp
        let n: JSONValue = nonceOverride.map { .string($0) } ?? nonce
        func text(_ v: JSONValue) -> String {
            switch v {
            case .string(let s): return s
            case .number(let s): return s
            default: return v.serialized
            }
        }
        let sign = signOverride ?? UdunSignature.sign(body: body, key: key, nonce: text(n), timestamp: text(ts))
        var out = JSONValue.object([("timestamp", ts), ("nonce", n), ("sign", .string(sign)), ("body", .string(body))]).serialized
        if case .php = self { out = out.replacingOccurrences(of: "/", with: "\\/") }  // json_encode escapes slashes
        return out
    }

    /// The business body as this client's JSON encoder writes it.
    func body(_ fields: [(String, JSONValue)], array: Bool = true) -> String {
        var text = JSONValue.object(fields).serialized
        switch self {
        case .php: text = text.replacingOccurrences(of: "/", with: "\\/")
        case .go:
            text = text.replacingOccurrences(of: "&", with: "\\u0026").replacingOccurrences(of: "<", with: "\\u003c")
                .replacingOccurrences(of: ">", with: "\\u003e")
        default: break
        }
        return array ? "[\(text)]" : text
    }
}

/// The parsed reply of the Open API.
struct Reply {
    var status: Int
    var code: Int
    var message: String
    var data: JSONValue?
    var raw: String
}

extension TestClientProtocol {
    func post(_ path: String, _ envelope: String) async throws -> Reply {
        try await execute(uri: path, method: .post, headers: [.contentType: "application/json"], body: ByteBuffer(string: envelope)) { r in
            let raw = String(buffer: r.body)
            let v = try? JSONValue.parse(raw)
            var code = -999
            if case .number(let n)? = v?["code"] { code = Int(n) ?? -999 }
            var message = ""
            if case .string(let m)? = v?["message"] { message = m }
            return Reply(status: Int(r.status.code), code: code, message: message, data: v?["data"], raw: raw)
        }
    }
}
