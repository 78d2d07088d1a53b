import BigInt
import Foundation
import GatewayCore
import GatewayRuntime
import GatewayServices
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import PostgresNIO

/// The admin API under `/admin/*`: bearer tokens separate from merchant keys; every action audited.
struct AdminAPI: Sendable {
    let database: Database
    let logger: Logger

    /// The admin routes (method, path) — the OpenAPI test compares them with the document.
    static let routes: [(method: String, path: String)] = [
        ("GET", "/admin/merchants"),
        ("GET", "/admin/withdrawals"),
        ("GET", "/admin/withdrawals/{id}"),
        ("POST", "/admin/withdrawals/{id}/approve"),
        ("POST", "/admin/withdrawals/{id}/reject"),
        ("GET", "/admin/callbacks"),
        ("POST", "/admin/callbacks/{id}/resend"),
    ]

    func add<Context: RequestContext>(to router: Router<Context>) {
        let admin = router.group("admin")
        admin.get("merchants") { req, _ in await self.run(req) { c, _ in
            .array(try await Merchants.list(on: c, logger: self.logger).map(Self.json))
        } }
        admin.get("withdrawals") { req, _ in await self.run(req) { c, _ in
            let q = req.uri.queryParameters
            let rows = try await Withdrawals.list(merchantID: q["merchant"].flatMap { Int64(String($0)) }, state: q["state"].map(String.init),
                                                  limit: min(q["limit"].flatMap { Int(String($0)) } ?? 100, 1000), on: c, logger: self.logger)
            return .array(rows.map(Self.json))
        } }
        admin.get("withdrawals/:id") { req, ctx in await self.run(req) { c, _ in
            let id = try Self.id(ctx)
            guard let w = try await Withdrawals.find(id, on: c, logger: self.logger) else { throw ServiceError.notFound("withdrawal \(id)") }
            return Self.json(w)
        } }
        for approve in [true, false] {
            admin.post("withdrawals/:id/\(approve ? "approve" : "reject")") { req, ctx in
                let body = try? await req.body.collect(upTo: 65536)
                return await self.run(req, write: true) { c, actor in
                    let input = body.flatMap { try? JSONValue.parse(Array($0.readableBytesView)) } ?? .object([])
                    let version: Int? = { if case .number(let n)? = input["version"] { return Int(n) } else { return nil } }()
                    let reason: String? = { if case .string(let s)? = input["reason"] { return s } else { return nil } }()
                    // The token's name is the reviewer; its level bounds what it may decide (403 above it).
                    let name = String(actor.dropFirst("admin:".count))
                    guard let reviewer = try await Reviews.reviewer(named: name, on: c, logger: self.logger) else {
                        throw ReviewNotAllowed("admin token \(name) is not an enabled reviewer")
                    }
                    let outcome = try await Reviews.decide(try Self.id(ctx), approve: approve, reason: reason, expectedVersion: version,
                                                           reviewer: reviewer, channel: "admin", on: c, logger: self.logger)
                    return Self.json(outcome.withdrawal)
                }
            }
        }
        admin.get("callbacks") { req, _ in await self.run(req) { c, _ in
            let q = req.uri.queryParameters
            let rows = try await Callbacks.list(merchantID: q["merchant"].flatMap { Int64(String($0)) }, state: q["state"].map(String.init),
                                                limit: min(q["limit"].flatMap { Int(String($0)) } ?? 100, 1000), on: c, logger: self.logger)
            return .array(rows.map { cb in
                .object([("id", .int(cb.id)), ("merchantId", .int(cb.merchantID)), ("tradeType", .int(cb.tradeType)), ("tradeId", .string(String(cb.tradeID))),
                         ("status", .int(cb.status)), ("url", .string(cb.url)), ("state", .string(cb.state)), ("attempts", .int(cb.attempts)),
                         ("lastError", cb.lastError.map(JSONValue.string) ?? .null), ("createdAt", .string(Self.iso(cb.createdAt)))])
            })
        } }
        admin.post("callbacks/:id/resend") { req, ctx in await self.run(req, write: true) { c, actor in
            try await Callbacks.resend(try Self.id(ctx), actor: actor, on: c, logger: self.logger)
            return .object([("resent", .bool(true))])
        } }
    }

    /// Authenticates the bearer token, then runs `body` (in a transaction for writes).
    func run(_ request: Request, write: Bool = false,
             _ body: @escaping @Sendable (DatabaseConnection, String) async throws -> JSONValue) async -> Response {
        do {
            guard let header = request.headers[.authorization], header.hasPrefix("Bearer ") else {
                return Self.error(.unauthorized, "missing bearer token")
            }
            let token = String(header.dropFirst("Bearer ".count))
            let name = try await database.withConnection { c in try await AdminTokens.authenticate(token, on: c, logger: self.logger) }
            guard let name else { return Self.error(.unauthorized, "invalid or disabled token") }
            let actor = "admin:\(name)"
            let value: JSONValue
            if write {
                value = try await database.transaction { c in try await body(c, actor) }
            } else {
                value = try await database.withConnection { c in try await body(c, actor) }
            }
            var buffer = ByteBuffer()
            buffer.writeString(value.serialized)
            return Response(status: .ok, headers: [.contentType: "application/json; charset=utf-8"], body: .init(byteBuffer: buffer))
        } catch let e as ServiceError {
            switch e {
            case .notFound: return Self.error(.notFound, e.description)
            case .conflict: return Self.error(.conflict, e.description)
            case .invalid: return Self.error(.unprocessableContent, e.description)
            }
        } catch let e as ReviewNotAllowed {
            return Self.error(.forbidden, e.description)
        } catch let e as BadRequest {
            return Self.error(.badRequest, e.message)
        } catch {
            logger.error("admin API request failed", metadata: ["error": "\(DatabaseErrors.describe(error))"])
            return Self.error(.serviceUnavailable, "service temporarily unavailable; retry")
        }
    }

    struct BadRequest: Error { var message: String }

    static func id<Context: RequestContext>(_ ctx: Context) throws -> Int64 {
        guard let text = ctx.parameters.get("id"), let id = Int64(text), id > 0 else { throw BadRequest(message: "id must be a positive integer") }
        return id
    }

    static func error(_ status: HTTPResponse.Status, _ message: String) -> Response {
        var buffer = ByteBuffer()
        buffer.writeString(JSONValue.object([("error", .string(message))]).serialized)
        return Response(status: status, headers: [.contentType: "application/json; charset=utf-8"], body: .init(byteBuffer: buffer))
    }

    static func iso(_ d: Date) -> String { ISO8601DateFormatter().string(from: d) }

    static func json(_ m: Merchant) -> JSONValue {
        .object([("id", .int(m.id)), ("name", .string(m.name)), ("active", .bool(m.active)), ("autoPayment", .bool(m.autoPayment)),
                 ("maxAddresses", m.maxAddresses.map { .int($0) } ?? .null), ("createdAt", .string(iso(m.createdAt)))])
    }

    static func json(_ w: Withdrawal) -> JSONValue {
        .object([("id", .int(w.id)), ("merchantId", .int(w.merchantID)), ("businessId", .string(w.businessID)), ("coinId", .int(w.coinID)),
                 ("chain", .string(w.chain)), ("address", .string(w.address)), ("amount", .string(w.amount.description)),
                 ("fee", .string(w.fee.description)), ("state", .string(w.state)), ("stateReason", w.stateReason.map(JSONValue.string) ?? .null),
                 ("txHash", w.txHash.map(JSONValue.string) ?? .null), ("proxypay", .bool(w.proxypay)), ("memo", .string(w.memo)),
                 ("remark", .string(w.remark)), ("version", .int(w.version)), ("createdAt", .string(iso(w.createdAt))),
                 ("updatedAt", .string(iso(w.updatedAt)))])
    }
}
