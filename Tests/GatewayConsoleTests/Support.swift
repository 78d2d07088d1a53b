import BigInt
import ChainKit
import Foundation
import GatewayConsole
import GatewayCore
import GatewayRuntime
import GatewayServices
import GatewayTesting
import HTTPTypes
import Hummingbird
import HummingbirdOTP
import HummingbirdTesting
import Logging
import NIOCore
import PostgresNIO
import Testing

let log = TestDatabase.logger

enum Vectors {
    static let tronXpub = "xpub6D1AabNHCupeiLM65ZR9UStMhJ1vCpyV4XbZdyhMZBiJXALQtmn9p42VTQckoHVn8WNqS7dqnJokZHAHcHGoaQgmv8D45oNUKx6DZMNZBCd"
    static let ethXpub = "xpub6DCoCpSuQZB2jawqnGMEPS63ePKWkwWPH4TU45Q7LPXWuNd8TMtVxRrgjtEshuqpK3mdhaWHPFsBngh5GFZaM6si3yZdUsT8ddYM3PwnATt"
    static let usdtTRC20 = "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"
    static let usdtERC20 = "0xdac17f958d2ee523a2206206994597c13d831ec7"
    /// Valid TRON addresses that belong to nobody here.
    static let tronDestinations = ["TLng7RobC5jcNtw1XPxoyMiiifEksYEosp", "TUEZSdKsoDHQMeZwihtdoBiN46zxhGWYdH", "TSeJkUh4Qv67VNFwY8LaAxERygNdy6NQZK"]
    static let ethDestination = "0x9858EfFD232B4033E47d90003D41EC34EcaEda94"
}

/// A migrated database with two merchants (funded), TRON and Ethereum USDT, console users, and the
/// console's router on it.
struct ConsoleFixture: Sendable {
    let db: Database
    let alpha: Int64
    let beta: Int64
    let usdtTron: Coin
    let usdtEth: Coin
    let config: GatewayConfig

    static let password = "correct horse battery"

    static func make(_ db: Database, configure: (inout GatewayConfig) -> Void = { _ in }) async throws -> ConsoleFixture {
        try await db.transaction { c in
            let (a, _) = try await Merchants.create(name: "Alpha Exchange", actor: "test", on: c, logger: log)
            let (b, _) = try await Merchants.create(name: "Beta Games", actor: "test", on: c, logger: log)
            let tron = try await Coins.add(Coin(chain: "tron", mainCoinType: "195", coinType: Vectors.usdtTRC20, symbol: "USDT", name: "USDT", coinName: "TRON",
                                                mainSymbol: "TRX", decimals: 6, isToken: true, withdrawalFee: 1_000_000),
                                           directory: .standard, actor: "test", on: c, logger: log)
            let eth = try await Coins.add(Coin(chain: "ethereum", mainCoinType: "60", coinType: Vectors.usdtERC20, symbol: "USDT", name: "USDT",
                                               coinName: "Ethereum", mainSymbol: "ETH", decimals: 6, isToken: true),
                                          directory: .standard, actor: "test", on: c, logger: log)
            // Beta's wallets are account 1 of another seed: two wallets never share an xpub (their
            // deposit, hot and gas addresses would be the same).
            let other = try ExtendedPrivateKey(seed: Data(repeating: 7, count: 64))
            let betaTron = try other.derived(path: AddressScheme.tron.accountPath(account: 1)).extendedPublicKey.serialized()
            let betaEth = try other.derived(path: AddressScheme.evm.accountPath(account: 1)).extendedPublicKey.serialized()
            for m in [a.id, b.id] {
                _ = try await Wallets.attach(merchantID: m, chain: "tron", xpub: m == a.id ? Vectors.tronXpub : betaTron, accountIndex: m == a.id ? 0 : 1,
                                             coldAddress: nil, directory: .standard, actor: "test", on: c, logger: log)
                _ = try await Wallets.attach(merchantID: m, chain: "ethereum", xpub: m == a.id ? Vectors.ethXpub : betaEth, accountIndex: m == a.id ? 0 : 1,
                                             coldAddress: nil, directory: .standard, actor: "test", on: c, logger: log)
                for coin in [tron.id, eth.id] {
                    try await Ledger.post([LedgerTransfer(reason: "deposit", ref: "test", legs: [
                        LedgerLeg(merchantID: nil, coinID: coin, kind: LedgerAccountKind.chain, amount: -1_000_000_000_000),
                        LedgerLeg(merchantID: m, coinID: coin, kind: LedgerAccountKind.available, amount: 1_000_000_000_000),
                    ])], on: c, logger: log)
                }
            }
            var config = GatewayConfig()
            config.console.bcryptCost = 4
            configure(&config)
            return ConsoleFixture(db: db, alpha: a.id, beta: b.id, usdtTron: tron, usdtEth: eth, config: config)
        }
    }

    /// The key of the fixture's configuration (none unless a test configures one).
    var secrets: TOTPSecretBox {
        get throws { try TOTPSecretBox.load(config.console) }
    }

    var app: some ApplicationProtocol {
        get throws { try buildConsoleApplication(config: config, database: db, logger: log) }
    }

    /// Adds a console user with the fixture's password.
    func user(_ name: String, _ role: ConsoleRole, level: Int = 0) async throws {
        _ = try await db.transaction { c in
            try await ConsoleAccounts.add(name: name, role: role, reviewLevel: level, password: Self.password, bcryptCost: 4, secrets: secrets, actor: "test",
                                          on: c, logger: log)
        }
    }

    /// The current TOTP code of `name`, as their authenticator shows it 30 s after the last one they
    /// used: the user's used-step mark is cleared first (a code is good once, and a test uses several
    /// within one 30-second step).
    func code(_ name: String) async throws -> String {
        var stored = ""
        try await db.transaction { c in
            for try await s in try await c.query("""
                UPDATE gateway.console_users SET totp_last_step = 0 WHERE name = \(name) RETURNING totp_secret
                """, logger: log).decode(String.self) { stored = s }
        }
        let secret = try stored.isEmpty ? "" : secrets.open(stored, name: name)
        try #require(!secret.isEmpty, "no console user \(name)")
        return String(format: "%06d", TOTP(secret: secret).compute(date: Date()))
    }

    /// A withdrawal of `amount` whole USDT waiting in review (level 1, or `level` after escalation).
    @discardableResult
    func pending(_ amount: String, merchant: Int64? = nil, coin: Coin? = nil, to address: String = Vectors.tronDestinations[0], businessID: String? = nil,
                 remark: String = "", fourEyes: Bool = false, level: Int = 1, deadlineIn: Int = 3600, rule: String = "manual") async throws -> Int64 {
        let coin = coin ?? usdtTron
        let merchant = merchant ?? alpha
        return try await db.transaction { c in
            let v = Withdrawals.Validated(merchantID: merchant, businessID: businessID ?? UUID().uuidString, coinID: coin.id, chain: coin.chain,
                                          address: address, amount: try CoinAmount.parse(amount, decimals: 6).description, fee: "0",
                                          callURL: "http://127.0.0.1:9/callback", memo: "", remark: remark, walletRef: "", proxypay: false, sign: "")
            let id = try (try await Withdrawals.insert([v], on: c, logger: log))[0].get(businessID: v.businessID)
            let levels = [ReviewLevel(name: "ops", sla: .seconds(3600)), ReviewLevel(name: "finance", sla: .seconds(7200))]
            _ = try await Withdrawals.sendToReview(id, reason: "rule said so", rule: rule, levels: levels, approvalsNeeded: fourEyes ? 2 : 1, on: c, logger: log)
            try await c.query("""
                UPDATE gateway.withdrawal_reviews SET level = \(Int32(level)), level_name = \(level == 1 ? "ops" : "finance"),
                       deadline = now() + make_interval(secs => \(Double(deadlineIn))) WHERE withdrawal_id = \(id)
                """, logger: log)
            try await c.query("DELETE FROM gateway.jobs WHERE ref = \("withdrawal:\(id)") AND stage = 'review'", logger: log)
            return id
        }
    }

    func state(_ id: Int64) async throws -> (String, Int) {
        var out = ("", 0)
        for try await (s, v) in try await db.query("SELECT state, version FROM gateway.withdrawals WHERE id = \(id)").decode((String, Int32).self) {
            out = (s, Int(v))
        }
        return out
    }

    func count(_ sql: PostgresQuery) async throws -> Int64 {
        var n: Int64 = -1
        for try await v in try await db.query(sql).decode(Int64.self) { n = v }
        return n
    }
}

/// A browser's view of the console through the test client: a cookie jar of one cookie.
struct Browser {
    let client: any TestClientProtocol
    var cookie: String?

    struct Page {
        var status: Int
        var body: String
        var headers: HTTPFields
        var location: String? { headers[.location] }
    }

    init(_ client: any TestClientProtocol) { self.client = client }

    func get(_ path: String) async throws -> Page {
        var headers: HTTPFields = [:]
        if let cookie { headers[.cookie] = "\(Console.cookieName)=\(cookie)" }
        return try await client.execute(uri: path, method: .get, headers: headers, body: nil) { r in
            Page(status: Int(r.status.code), body: String(buffer: r.body), headers: r.headers)
        }
    }

    /// A form POST as a same-origin page sends it (`Sec-Fetch-Site: same-origin` unless `site` says otherwise).
    func post(_ path: String, _ fields: [(String, String)], site: String? = "same-origin", origin: String? = nil) async throws -> Page {
        var headers: HTTPFields = [.contentType: "application/x-www-form-urlencoded"]
        if let site { headers[HTTPField.Name("Sec-Fetch-Site")!] = site }
        if let origin { headers[.origin] = origin }
        if let cookie { headers[.cookie] = "\(Console.cookieName)=\(cookie)" }
        let body = fields.map { "\(Self.enc($0.0))=\(Self.enc($0.1))" }.joined(separator: "&")
        return try await client.execute(uri: path, method: .post, headers: headers, body: ByteBuffer(string: body)) { r in
            Page(status: Int(r.status.code), body: String(buffer: r.body), headers: r.headers)
        }
    }

    static func enc(_ s: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return s.addingPercentEncoding(withAllowedCharacters: allowed) ?? ""
    }

    /// Signs in; keeps the session cookie. Returns the sign-in response.
    @discardableResult
    mutating func signIn(_ f: ConsoleFixture, _ name: String, password: String = ConsoleFixture.password, code: String? = nil) async throws -> Page {
        let given = code
        let code: String
        if let given { code = given } else { code = try await f.code(name) }
        let page = try await post("/signin", [("name", name), ("password", password), ("code", code), ("next", "/queue")])
        if let setCookie = page.headers[.setCookie], let value = setCookie.split(separator: ";").first?.split(separator: "=", maxSplits: 1).last {
            cookie = String(value)
        }
        return page
    }
}

/// Runs `body` with a fixture and a browser on the console's router.
func withConsole(configure: @escaping @Sendable (inout GatewayConfig) -> Void = { _ in },
                 _ body: @escaping @Sendable (ConsoleFixture, any TestClientProtocol) async throws -> Void) async throws {
    try await TestDatabase.withDatabase { db in
        let f = try await ConsoleFixture.make(db, configure: configure)
        try await f.app.test(.router) { client in try await body(f, client) }
    }
}

extension String {
    /// Where `needle` first occurs (for order checks), or Int.max.
    func offset(of needle: String) -> Int {
        guard let r = range(of: needle) else { return Int.max }
        return distance(from: startIndex, to: r.lowerBound)
    }
}

/// The text of the HTML row with `id` (from its `<tr` to its `</tr>`), or "".
func row(_ html: String, id: String) -> String {
    guard let start = html.range(of: "id=\"\(id)\"") else { return "" }
    let rest = html[start.lowerBound...]
    guard let end = rest.range(of: "</tr>") else { return String(rest) }
    return String(rest[..<end.lowerBound])
}
