import BigInt
import Foundation
import GatewayCore
import GatewayRuntime
import GatewayServices
import Hummingbird
import Logging
import NIOCore
import PostgresNIO
import Synchronization

/// The Open API endpoints (udun-protocol.md §3).
public enum MerchantEndpoint: String, CaseIterable, Sendable {
    case createAddress = "/mch/address/create"
    case createAddressBatch = "/mch/address/create/batch"
    case withdraw = "/mch/withdraw"
    case proxypay = "/mch/withdraw/proxypay"
    case checkAddress = "/mch/check/address"
    case existAddress = "/mch/exist/address"
    case supportCoins = "/mch/support-coins"
    case transaction = "/mch/transaction"
}

/// Serves the merchant Open API: envelope, signature, security checks, then the endpoint, all in
/// one transaction so that a request either wholly happens or changes nothing.
struct MerchantAPI: Sendable {
    let database: Database
    let config: APIConfig
    let directory: ChainDirectory
    let logger: Logger
    let limiter: RateLimiter
    let merchants: TTLCache<Int64, MerchantAuth?>
    let coins: TTLCache<String, Coin?>
    let walletChains: TTLCache<Int64, Set<String>>
    let writer: WithdrawalWriter

    init(database: Database, config: APIConfig, directory: ChainDirectory, logger: Logger, limiter: RateLimiter) {
        self.database = database
        self.config = config
        self.directory = directory
        self.logger = logger
        self.limiter = limiter
        self.merchants = TTLCache(ttl: config.cacheTTL)
        self.coins = TTLCache(ttl: config.cacheTTL)
        self.walletChains = TTLCache(ttl: config.cacheTTL)
        self.writer = WithdrawalWriter(database: database, logger: logger)
    }

    /// The answer, and the Udun result code it carries (for the request metrics).
    func respond(_ request: Request, endpoint: MerchantEndpoint) async -> (Response, code: Int) {
        do {
            let data = try await process(request, endpoint: endpoint)
            return (Self.reply(code: 200, message: "SUCCESS", data: data), 200)
        } catch let e as UdunError {
            return (Self.reply(code: e.code.rawValue, message: e.message, data: nil), e.code.rawValue)
        } catch {
            logger.error("open API request failed", metadata: ["endpoint": "\(endpoint.rawValue)", "error": "\(DatabaseErrors.describe(error))"])
            var r = Self.reply(code: -1, message: "service temporarily unavailable; retry", data: nil)
            r.status = .serviceUnavailable
            return (r, -1)
        }
    }

    /// `data` is `.some(nil)` for an explicit `"data": null` and `nil` for no data key.
    static func reply(code: Int, message: String, data: JSONValue??) -> Response {
        var members: [(key: String, value: JSONValue)] = [("code", .int(code)), ("message", .string(message))]
        if let data { members.append(("data", data ?? .null)) }
        var buffer = ByteBuffer()
        buffer.writeString(JSONValue.object(members).serialized)
        return Response(status: .ok, headers: [.contentType: "application/json; charset=utf-8"], body: .init(byteBuffer: buffer))
    }

    private func process(_ request: Request, endpoint: MerchantEndpoint) async throws -> JSONValue?? {
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: config.maxBodyBytes)
        } catch {
            throw UdunError(.invalidParameters, "request body exceeds \(config.maxBodyBytes) bytes")
        }
        let envelope = try UdunEnvelope.parse(Array(buffer.readableBytesView))
        let fields = endpoint == .supportCoins ? try UdunFields.object(fromBody: envelope.body) : try UdunFields.single(fromBody: envelope.body)
        guard let idText = try fields.string("merchantId"), let merchantID = Int64(idText), merchantID > 0 else {
            throw UdunError(.merchantNotFound, "merchant does not exist")
        }
        let auth = try await merchants.value(merchantID) {
            try await database.withConnection { c in try await Merchants.auth(merchantID, on: c, logger: self.logger) }
        }
        guard let auth else { throw UdunError(.merchantNotFound, "merchant does not exist") }
        guard UdunSignature.verify(envelope, key: auth.apiKey) else { throw UdunError(.signatureWrong, "signature is wrong") }
        guard auth.active else { throw UdunError(.merchantDisabled, "merchant is disabled") }
        let window = config.timestampWindow
        if window > .zero {
            guard let ts = envelope.timestampSeconds, abs(Int64(Date().timeIntervalSince1970) - ts) <= window.components.seconds else {
                throw UdunError(.timestampOutOfWindow, "timestamp is outside ±\(DurationText.format(window)) of server time")
            }
        }
        guard limiter.allow(merchantID, perMinute: auth.rateLimitPerMinute ?? config.rateLimitPerMinute) else {
            throw UdunError(.rateLimited, "too many requests; slow down")
        }
        let replay = config.replayProtection
        if endpoint == .withdraw || endpoint == .proxypay {
            return try await withdraw(fields, merchantID: merchantID, proxypay: endpoint == .proxypay, signature: replay ? envelope.sign : nil)
        }
        let made = Mutex<(chain: String, addresses: [String], answer: JSONValue??)?>(nil)
        do {
            return try await database.transaction { c -> JSONValue?? in
                if replay {
                    var fresh = false
                    for try await _ in try await c.query("""
                        INSERT INTO gateway.request_signatures (merchant_id, sign) VALUES (\(merchantID), \(envelope.sign))
                        ON CONFLICT DO NOTHING RETURNING 1
                        """, logger: self.logger).decode(Int32.self) { fresh = true }
                    guard fresh else { throw UdunError(.replayed, "this request was already received (replayed signature)") }
                }
                return try await self.run(endpoint, fields: fields, merchantID: merchantID, on: c, made: made)
            }
        } catch let unknown as CommitOutcomeUnknown {
            // A new address may only be answered once it is surely stored (a deposit to an unstored address would be
            // missed): read the addresses back on the node that takes writes now. All there: answer them. None: 503.
            guard let m = made.withLock({ $0 }), !m.addresses.isEmpty else { throw unknown }
            let deadline = ContinuousClock.now + .seconds(10)
            while true {
                do {
                    let stored = try await database.transaction { c in
                        try await Addresses.stored(chain: m.chain, addresses: m.addresses, merchantID: merchantID, on: c, logger: self.logger)
                    }
                    logger.notice("an address commit's outcome was unknown; resolved by address",
                                  metadata: ["addresses": "\(m.addresses.count)", "stored": "\(stored)"])
                    if stored == m.addresses.count { return m.answer }
                    throw unknown
                } catch where DatabaseErrors.isFailover(error) && !(error is CommitOutcomeUnknown) && ContinuousClock.now < deadline {
                    try? await Task.sleep(for: .milliseconds(200))
                }
            }
        }
    }

    /// `/mch/withdraw` and `/mch/withdraw/proxypay`: the coin and the merchant's wallets from the
    /// cache, then one statement (withdrawal, review job, replay record), committed together with
    /// the withdrawals of the requests in flight beside it (`WithdrawalWriter`).
    private func withdraw(_ fields: UdunFields, merchantID: Int64, proxypay: Bool, signature: String?) async throws -> JSONValue?? {
        let request = WithdrawalRequest(
            merchantID: merchantID, mainCoinType: try fields.required("mainCoinType"),
            coinType: try fields.string("coinType") ?? fields.required("mainCoinType"), address: try fields.required("address"),
            amount: try fields.string("amount") ?? "", callURL: try fields.required("callUrl"), businessID: try fields.required("businessId"),
            memo: try fields.string("memo") ?? "", remark: try fields.string("remark") ?? "", walletRef: try fields.string("walletId") ?? "",
            proxypay: proxypay)
        guard !request.amount.isEmpty else { throw UdunError(.badAmount, "amount is required") }
        let logger = self.logger
        let coinKey = request.mainCoinType + "\u{0}" + Coins.canonicalCoinType(request.coinType)
        let coin = try await coins.value(coinKey) {
            try await database.withConnection { c in
                try await Coins.find(mainCoinType: request.mainCoinType, coinType: request.coinType, on: c, logger: logger)
            }
        }
        guard let coin else { throw UdunError(.unknownCoin, "unknown coin \(request.mainCoinType)/\(request.coinType)") }
        let chains = try await walletChains.value(merchantID) {
            try await database.withConnection { c in try await Wallets.chains(merchantID: merchantID, on: c, logger: logger) }
        }
        let valid = try Withdrawals.validate(request, coin: coin, merchantChains: chains, replaySignature: signature, directory: directory,
                                             callbackPolicy: config.callbackURLs)
        _ = try await writer.store(valid).get(businessID: request.businessID)
        return nil
    }

    /// - Parameter made: receives the addresses a create request derived and its answer, for `process` to read them back
    ///   should the commit's outcome be unknown.
    private func run(_ endpoint: MerchantEndpoint, fields: UdunFields, merchantID: Int64, on c: DatabaseConnection,
                     made: borrowing Mutex<(chain: String, addresses: [String], answer: JSONValue??)?>) async throws -> JSONValue?? {
        switch endpoint {
        case .createAddress, .createAddressBatch:
            guard let main = try fields.string("mainCoinType") ?? fields.string("coinType") else {
                throw UdunError(.invalidParameters, "mainCoinType is required")
            }
            guard let coin = try await Coins.find(mainCoinType: main, coinType: nil, on: c, logger: logger) else {
                if try await Coins.find(mainCoinType: main, coinType: nil, includeDisabled: true, on: c, logger: logger) != nil {
                    throw UdunError(.walletDoesNotSupportCoin, "coin \(main) is disabled on this gateway")
                }
                throw UdunError(.unknownCoin, "unknown coin \(main)")
            }
            let callURL = try fields.required("callUrl")
            if let reason = config.callbackURLs.refusal(for: callURL) { throw UdunError(.invalidParameters, reason) }
            let alias = try fields.string("alias") ?? ""
            guard alias.count <= 200 else { throw UdunError(.invalidParameters, "alias is longer than 200 characters") }
            var count = 1
            if endpoint == .createAddressBatch {
                guard let n = Int(try fields.required("count")), (1...1000).contains(n) else {
                    throw UdunError(.invalidParameters, "count must be between 1 and 1000")
                }
                count = n
            }
            let maxAddresses = try await Merchants.find(merchantID, on: c, logger: logger)?.maxAddresses
            let addresses = try await Addresses.create(
                merchantID: merchantID, chain: coin.chain, callURL: callURL, alias: alias, walletRef: try fields.string("walletId") ?? "",
                count: count, maxAddresses: maxAddresses, directory: directory, on: c, logger: logger)
            let coinType = JSONValue.number(coin.mainCoinType)
            let answer: JSONValue?? = endpoint == .createAddress
                ? .some(.object([("coinType", coinType), ("address", .string(addresses[0]))]))
                : .some(.array(addresses.map { .object([("address", .string($0)), ("coinType", coinType)]) }))
            made.withLock { $0 = (coin.chain, addresses, answer) }
            return answer

        case .withdraw, .proxypay:
            throw ServiceError.invalid("withdrawals are served by withdraw(_:), not here")  // unreachable: process() routes them first

        case .checkAddress, .existAddress:
            let main = try fields.required("mainCoinType")
            guard let coin = try await Coins.find(mainCoinType: main, coinType: nil, on: c, logger: logger) else {
                throw UdunError(.unknownCoin, "unknown coin \(main)")
            }
            let address: String
            switch directory.canonicalAddress(try fields.required("address"), chain: coin.chain) {
            case .success(let a): address = a
            case .failure(let e): throw UdunError(.invalidAddress, "invalid \(coin.chain) address: \(e)")
            }
            if endpoint == .existAddress, !(try await Addresses.belongs(address: address, chain: coin.chain, merchantID: merchantID, on: c, logger: logger)) {
                throw UdunError(.addressNotMerchants, "address is not one of this merchant's")
            }
            return .some(.null)

        case .supportCoins:
            let showBalance = try fields.bool("showBalance")
            let chains = try await Wallets.chains(merchantID: merchantID, on: c, logger: logger)
            let balances = showBalance ? try await Ledger.available(merchantID: merchantID, on: c, logger: logger) : [:]
            let coins = try await Coins.list(on: c, logger: logger).filter { $0.enabled && chains.contains($0.chain) }
            return .some(.array(coins.map { coin in
                let balance = balances[coin.id].map { $0 > 0 ? CoinAmount.format(BigUInt($0), decimals: coin.decimals) : "0" } ?? "0"
                return .object([
                    ("coinType", .string(coin.coinType)), ("symbol", .string(coin.symbol)), ("tokenStatus", .int(coin.isToken ? 1 : 0)),
                    ("mainCoinType", .string(coin.mainCoinType)), ("balance", .number(balance)), ("decimals", .string(String(coin.decimals))),
                    ("name", .string(coin.name)), ("logo", .string(coin.logo)), ("coinName", .string(coin.coinName)),
                    ("mainSymbol", .string(coin.mainSymbol)),
                ])
            }))

        case .transaction:
            // Legacy history: the merchant's withdrawals and confirmed deposits, newest first (a businessId
            // filter names a withdrawal, so it leaves deposits out).
            let limit = min(max(Int(try fields.string("pageSize") ?? "50") ?? 50, 1), 500)
            let business = try fields.string("businessId")
            var rows = try await Withdrawals.list(merchantID: merchantID, state: nil, limit: limit, on: c, logger: logger)
            if let business { rows = rows.filter { $0.businessID == business } }
            let deposits = business != nil ? [] : try await Deposits.list(merchantID: merchantID, chain: nil, status: "confirmed", limit: limit,
                                                                          on: c, logger: logger)
            let coins = Dictionary(uniqueKeysWithValues: try await Coins.list(on: c, logger: logger).map { ($0.id, $0) })
            let iso = ISO8601DateFormatter()
            var trades: [(at: Date, value: JSONValue)] = rows.map { w in
                (w.createdAt, .object([
                    ("tradeId", .string(String(w.id))), ("tradeType", .int(2)), ("businessId", .string(w.businessID)),
                    ("address", .string(w.address)), ("amount", .string(w.amount.description)),
                    ("coinType", .string(coins[w.coinID]?.coinType ?? "")), ("mainCoinType", .string(coins[w.coinID]?.mainCoinType ?? "")),
                    ("status", .int(Self.udunStatus(w.state))), ("txId", .string(w.txHash ?? "")),
                    ("createdAt", .string(iso.string(from: w.createdAt))),
                ]))
            }
            trades += deposits.map { d in
                (d.createdAt, .object([
                    ("tradeId", .string(String(d.id))), ("tradeType", .int(1)), ("address", .string(d.address)),
                    ("amount", .string(d.amount.description)), ("coinType", .string(coins[d.coinID]?.coinType ?? "")),
                    ("mainCoinType", .string(coins[d.coinID]?.mainCoinType ?? "")), ("status", .int(3)), ("txId", .string(d.txHash)),
                    ("blockHigh", .string(String(d.blockHeight))), ("createdAt", .string(iso.string(from: d.createdAt))),
                ]))
            }
            trades.sort { $0.at > $1.at }
            return .some(.array(trades.prefix(limit).map(\.value)))
        }
    }

    /// The callback status a withdrawal state corresponds to.
    static func udunStatus(_ state: String) -> Int {
        switch state {
        case "rejected": return 2
        case "approved", "signed", "broadcast": return 1
        case "confirmed": return 3
        case "failed": return 4
        default: return 0
        }
    }
}

/// Per-merchant token buckets (per process): `perMinute` requests a minute, bursts up to that.
final class RateLimiter: Sendable {
    struct Bucket {
        var tokens: Double
        var at: ContinuousClock.Instant
    }

    private let buckets = Mutex<[Int64: Bucket]>([:])

    func allow(_ merchant: Int64, perMinute: Int) -> Bool {
        let now = ContinuousClock.now
        let capacity = Double(perMinute)
        return buckets.withLock { b in
            var bucket = b[merchant] ?? Bucket(tokens: capacity, at: now)
            let elapsed = now - bucket.at
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            bucket.tokens = min(capacity, bucket.tokens + seconds * capacity / 60)
            bucket.at = now
            let ok = bucket.tokens >= 1
            if ok { bucket.tokens -= 1 }
            b[merchant] = bucket
            return ok
        }
    }
}
