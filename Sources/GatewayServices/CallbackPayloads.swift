import BigInt
import Crypto
import Foundation
import GatewayCore
import GatewayRuntime
import Logging
import PostgresNIO

/// The business fields of a callback (udun-protocol.md §5).
public struct CallbackFields: Sendable, Equatable {
    public var address: String
    /// Base units.
    public var amount: BigUInt
    /// Block height; nil writes `"-1"` (no chain transaction).
    public var blockHeight: Int64?
    /// Withdrawals only; absent on deposits.
    public var businessID: String?
    public var coinType: String
    public var decimals: Int
    /// Network fee in base units of the main coin.
    public var fee: BigUInt
    public var mainCoinType: String
    public var memo: String
    /// 0 pending review, 1 approved, 2 rejected, 3 success on chain, 4 failed on chain.
    public var status: Int
    public var tradeID: Int64
    /// 1 deposit, 2 withdrawal.
    public var tradeType: Int
    public var txID: String

    public init(address: String, amount: BigUInt, blockHeight: Int64?, businessID: String?, coinType: String, decimals: Int, fee: BigUInt,
                mainCoinType: String, memo: String, status: Int, tradeID: Int64, tradeType: Int, txID: String) {
        self.address = address
        self.amount = amount
        self.blockHeight = blockHeight
        self.businessID = businessID
        self.coinType = coinType
        self.decimals = decimals
        self.fee = fee
        self.mainCoinType = mainCoinType
        self.memo = memo
        self.status = status
        self.tradeID = tradeID
        self.tradeType = tradeType
        self.txID = txID
    }

    /// The `body` JSON: keys in alphabetical order, `status` and `tradeType` numbers, every other
    /// value a string, unset fields omitted.
    public var bodyJSON: String {
        var members: [(key: String, value: JSONValue)] = [
            ("address", .string(address)), ("amount", .string(amount.description)),
            ("blockHigh", .string(blockHeight.map(String.init) ?? "-1")),
        ]
        if let businessID { members.append(("businessId", .string(businessID))) }
        members += [
            ("coinType", .string(coinType)), ("decimals", .string(String(decimals))), ("fee", .string(fee.description)),
            ("mainCoinType", .string(mainCoinType)), ("memo", .string(memo)), ("status", .int(status)),
            ("tradeId", .string(String(tradeID))), ("tradeType", .int(tradeType)), ("txId", .string(txID)),
        ]
        return JSONValue.object(members).serialized
    }
}

/// Building, signing and storing callbacks.
public enum CallbackPayloads {
    /// `application/x-www-form-urlencoded` of the four Udun fields, signed with the merchant's key
    /// (`md5(body + key + nonce + timestamp)`, millisecond timestamp, 6-character nonce).
    public static func formBody(body: String, key: String, nonce: String, timestampMillis: Int64) -> String {
        let ts = String(timestampMillis)
        let sign = UdunSignature.sign(body: body, key: key, nonce: nonce, timestamp: ts)
        return [("body", body), ("nonce", nonce), ("sign", sign), ("timestamp", ts)].map { "\($0.0)=\(formEncode($0.1))" }.joined(separator: "&")
    }

    /// Form encoding (WHATWG): unreserved characters as is, space as `+`, the rest percent-encoded.
    public static func formEncode(_ s: String) -> String { FormEncoding.encode(s) }

    /// Six random letters and digits.
    public static func nonce() -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        var rng = SystemRandomNumberGenerator()
        return String((0..<6).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &rng)] })
    }

    /// The Standard Webhooks signature `v1,<base64 HMAC-SHA256(secret, id.timestamp.payload)>`.
    public static func webhookSignature(secret: String, id: String, timestamp: Int64, payload: String) -> String? {
        guard secret.hasPrefix("whsec_"), let key = Data(base64Encoded: String(secret.dropFirst(6))) else { return nil }
        let mac = HMAC<SHA256>.authenticationCode(for: Data("\(id).\(timestamp).\(payload)".utf8), using: SymmetricKey(data: key))
        return "v1," + Data(mac).base64EncodedString()
    }

    /// Creates a callback with its exact bytes and its delivery job, in the caller's transaction.
    /// A second callback for the same trade and status is a no-op (returns nil).
    @discardableResult
    public static func create(merchantID: Int64, url: String, fields: CallbackFields, on c: DatabaseConnection, logger: Logger) async throws -> Int64? {
        try await create([Pending(merchantID: merchantID, url: url, fields: fields)], on: c, logger: logger).first
    }

    /// One callback to create.
    public struct Pending: Sendable {
        public var merchantID: Int64
        public var url: String
        public var fields: CallbackFields

        public init(merchantID: Int64, url: String, fields: CallbackFields) {
            self.merchantID = merchantID
            self.url = url
            self.fields = fields
        }
    }

    /// How long a callback waiting behind an earlier one of its trade is parked at most.
    static let parkedFor: Duration = .seconds(5)

    /// Creates many callbacks and their delivery jobs in the caller's transaction, in a few
    /// statements whatever their number (the chain scanner credits a block's deposits at once).
    /// Existing (trade, status) pairs are skipped; returns the ids created.
    @discardableResult
    public static func create(_ items: [Pending], on c: DatabaseConnection, logger: Logger) async throws -> [Int64] {
        guard !items.isEmpty else { return [] }
        let merchantIDs = Array(Set(items.map(\.merchantID)))
        var keys: [Int64: String] = [:]
        for try await (id, key) in try await c.query(
            "SELECT id, api_key FROM gateway.merchants WHERE id = ANY(\(merchantIDs)::int8[])", logger: logger).decode((Int64, String).self) {
            keys[id] = key
        }
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        var merchants: [Int64] = [], tradeTypes: [Int16] = [], tradeIDs: [Int64] = [], statuses: [Int16] = [], urls: [String] = []
        var payloads: [String] = [], webhookIDs: [String] = []
        for item in items {
            guard let key = keys[item.merchantID] else { throw ServiceError.notFound("merchant \(item.merchantID)") }
            merchants.append(item.merchantID)
            tradeTypes.append(Int16(item.fields.tradeType))
            tradeIDs.append(item.fields.tradeID)
            statuses.append(Int16(item.fields.status))
            urls.append(item.url)
            payloads.append(formBody(body: item.fields.bodyJSON, key: key, nonce: nonce(), timestampMillis: now))
            webhookIDs.append("msg_\(UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: ""))")
        }
        var ids: [Int64] = []
        for try await id in try await c.query("""
            INSERT INTO gateway.callbacks (merchant_id, trade_type, trade_id, status, url, payload, webhook_id)
            SELECT * FROM unnest(\(merchants)::int8[], \(tradeTypes)::int2[], \(tradeIDs)::int8[], \(statuses)::int2[], \(urls)::text[],
                                 \(payloads)::text[], \(webhookIDs)::text[])
            ORDER BY 3, 4
            ON CONFLICT (trade_type, trade_id, status) DO NOTHING RETURNING id
            """, logger: logger).decode(Int64.self) { ids.append(id) }
        guard !ids.isEmpty else { return [] }
        // A callback whose trade still has an earlier one pending goes after it: its job is parked until
        // the earlier one is delivered (the recorder makes the next one due then), instead of being
        // claimed and put back again and again. `parkedFor` bounds the wait should that wake be missed.
        var waiting: Set<Int64> = []
        for try await id in try await c.query("""
            SELECT c.id FROM gateway.callbacks c WHERE c.id = ANY(\(ids)::int8[]) AND EXISTS (
                SELECT 1 FROM gateway.callbacks e WHERE e.trade_type = c.trade_type AND e.trade_id = c.trade_id AND e.id < c.id AND e.state = 'pending')
            """, logger: logger).decode(Int64.self) { waiting.insert(id) }
        _ = try await JobQueue.enqueue(
            ids.map {
                NewJob(stage: .callback, kind: Callbacks.deliverJobKind, ref: "callback:\($0)", runAt: waiting.contains($0) ? .after(parkedFor) : .now,
                       maxAttempts: 1_000_000, uniqueKey: "callback:\($0)")
            },
            on: c, logger: logger)
        return ids
    }
}
