import Foundation

/// The OpenAPI 3 document of both APIs, served at `/openapi.json` (a test checks it against the routes).
/// Built from one table of operations: every merchant call shares the envelope, the reply and the
/// 503; every admin call the bearer token and the error shape.
enum OpenAPIDocument {
    static let json: String = {
        let options: JSONSerialization.WritingOptions = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data = try! JSONSerialization.data(withJSONObject: document(), options: options)  // literals only: cannot fail
        return String(decoding: data, as: UTF8.self)
    }()

    /// An operation of the table below.
    private struct Operation {
        enum Kind { case merchant, admin, meta }
        var kind: Kind
        var method: String
        var path: String
        var id: String
        var summary: String
        var description: String? = nil
        var parameters: [[String: Any]] = []
        var body: [String: Any]? = nil
        /// Only reviewers' decisions can be refused for the token's review level.
        var decidesReviews = false
        /// meta: the 200 response's description.
        var result = "result"
    }

    // Computed (and read once, by `json`): `[String: Any]` is not Sendable, so it cannot be a stored static.
    private static var listFilters: [[String: Any]] {
        ["merchant", "state", "limit"].map { ["name": $0, "in": "query", "required": false, "schema": ["type": "string"]] }
    }
    private static var idParameter: [[String: Any]] { [["name": "id", "in": "path", "required": true, "schema": ["type": "integer"]]] }

    private static func merchant(_ path: String, _ summary: String, _ fields: String) -> Operation {
        Operation(kind: .merchant, method: "post", path: path, id: operationID(path), summary: summary,
                  description: "\(fields). Always HTTP 200 for business results; also reachable as /\(path).")
    }

    private static func operationID(_ path: String) -> String {
        path.dropFirst().replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "-", with: "_")
    }

    private static var operations: [Operation] { [
        merchant("/mch/address/create", "Create a deposit address",
                 "[{merchantId, mainCoinType | coinType, callUrl, walletId?, alias?}]; data {coinType (number), address}"),
        merchant("/mch/address/create/batch", "Create several deposit addresses (legacy)",
                 "[{merchantId, mainCoinType | coinType, callUrl, count (1-1000), alias?}]; data [{address, coinType}]"),
        merchant("/mch/withdraw", "Submit a withdrawal; it goes through review",
                 "[{merchantId, mainCoinType, coinType, address, amount (whole coin units), callUrl, businessId, memo?, walletId?, remark?}]; no data"),
        merchant("/mch/withdraw/proxypay", "Submit an automatic payment", "same as /mch/withdraw"),
        merchant("/mch/check/address", "Is this a valid address for the chain", "[{merchantId, mainCoinType, address}]; data null, or code 4183"),
        merchant("/mch/exist/address", "Does the address belong to this merchant",
                 "[{merchantId, mainCoinType, address}]; data null, or 4183 / 4184"),
        merchant("/mch/support-coins", "Coins enabled for the merchant",
                 "{merchantId, showBalance}; data [{coinType, symbol, tokenStatus, mainCoinType, balance, decimals, name, logo, coinName, mainSymbol}]"),
        merchant("/mch/transaction", "Recent withdrawals (legacy history query)",
                 "[{merchantId, businessId?, pageSize?}]; data [{tradeId, tradeType, businessId, address, amount, coinType, mainCoinType, status, txId, createdAt}]"),
        Operation(kind: .admin, method: "get", path: "/admin/merchants", id: "admin_merchants", summary: "List merchants"),
        Operation(kind: .admin, method: "get", path: "/admin/withdrawals", id: "admin_withdrawals", summary: "List withdrawals", parameters: listFilters),
        Operation(kind: .admin, method: "get", path: "/admin/withdrawals/{id}", id: "admin_withdrawal", summary: "Show a withdrawal", parameters: idParameter),
        Operation(kind: .admin, method: "post", path: "/admin/withdrawals/{id}/approve", id: "admin_withdrawal_approve",
                  summary: "Approve a withdrawal waiting in review",
                  description: "The token names the reviewer; it may decide reviews up to its review level (gatewayctl admin token add NAME --level N). "
                      + "Above review.four_eyes_above two different reviewers must approve: the first approval is recorded and the withdrawal "
                      + "stays pending_review (its version moves on); the same reviewer approving twice is a 409 that changes nothing.",
                  parameters: idParameter, body: ["type": "object", "properties": ["version": ["type": "integer"]]], decidesReviews: true),
        Operation(kind: .admin, method: "post", path: "/admin/withdrawals/{id}/reject", id: "admin_withdrawal_reject",
                  summary: "Reject a withdrawal waiting in review (reason required)", parameters: idParameter,
                  body: ["type": "object", "required": ["reason"], "properties": ["reason": ["type": "string"], "version": ["type": "integer"]]],
                  decidesReviews: true),
        Operation(kind: .admin, method: "get", path: "/admin/callbacks", id: "admin_callbacks", summary: "List callbacks", parameters: listFilters),
        Operation(kind: .admin, method: "post", path: "/admin/callbacks/{id}/resend", id: "admin_callback_resend",
                  summary: "Send a callback again (the same stored bytes)", parameters: idParameter),
        Operation(kind: .meta, method: "get", path: "/openapi.json", id: "openapi", summary: "This document", result: "OpenAPI 3 document"),
        Operation(kind: .meta, method: "get", path: "/healthz", id: "healthz", summary: "Liveness", result: "ok"),
        Operation(kind: .meta, method: "get", path: "/metrics", id: "metrics", summary: "Prometheus metrics", result: "text exposition format"),
    ] }

    private static func json(_ schema: [String: Any]) -> [String: Any] { ["application/json": ["schema": schema]] }
    private static func ref(_ name: String) -> [String: Any] { ["$ref": "#/components/schemas/\(name)"] }

    private static func item(_ op: Operation) -> [String: Any] {
        var out: [String: Any] = ["tags": ["\(op.kind)"], "summary": op.summary, "operationId": op.id]
        if let d = op.description { out["description"] = d }
        if !op.parameters.isEmpty { out["parameters"] = op.parameters }
        switch op.kind {
        case .merchant:
            out["requestBody"] = ["required": true, "content": json(ref("Envelope"))]
            out["responses"] = ["200": ["description": op.result, "content": json(ref("Reply"))],
                                "503": ["description": "database unavailable; retry"]]
        case .admin:
            out["security"] = [["bearer": [String]()]]
            if let body = op.body { out["requestBody"] = ["required": false, "content": json(body)] }
            var responses: [String: Any] = ["200": ["description": op.result, "content": json([:])]]
            for code in ["401", "404", "409", "422", "503"] { responses[code] = ["description": "error", "content": json(ref("Error"))] }
            if op.decidesReviews {
                responses["403"] = ["description": "the token's reviewer may not decide a review at this level", "content": json(ref("Error"))]
            }
            out["responses"] = responses
        case .meta:
            out["responses"] = ["200": ["description": op.result]]
        }
        return out
    }

    private static func document() -> [String: Any] {
        var paths: [String: [String: Any]] = [:]
        for op in operations { paths[op.path, default: [:]][op.method] = item(op) }
        let integerOrString: [String: Any] = ["oneOf": [["type": "integer"], ["type": "string"]]]
        return [
            "openapi": "3.0.3",
            "info": ["title": "usdt-gateway", "version": "1",
                     "description": "The merchant Open API (wire-compatible with Udun: see udun-protocol.md) and the admin API."],
            "paths": paths,
            "components": [
                "schemas": [
                    "Envelope": [
                        "type": "object", "required": ["timestamp", "nonce", "sign", "body"],
                        "properties": [
                            "timestamp": integerOrString.merging(["description":
                                "Unix seconds or milliseconds, as a number or a string; must be within the configured window of server time"]) { $1 },
                            "nonce": integerOrString.merging(["description": "any short number or string"]) { $1 },
                            "sign": ["type": "string", "pattern": "^[0-9a-fA-F]{32}$",
                                     "description": "lowercase hex md5(body + key + nonce + timestamp), over the exact body string and the literal nonce/timestamp text"],
                            "body": ["type": "string", "description":
                                "the business JSON: an array of exactly one object (a bare object is accepted); for /mch/support-coins a plain object"],
                        ],
                    ],
                    "Reply": [
                        "type": "object", "required": ["code", "message"],
                        "properties": ["code": ["type": "integer", "description": "200 success; otherwise a code of udun-protocol.md §4"],
                                       "message": ["type": "string"], "data": [String: Any]()],
                    ],
                    "Error": ["type": "object", "properties": ["error": ["type": "string"]]],
                ],
                "securitySchemes": ["bearer": ["type": "http", "scheme": "bearer", "description": "an admin token from `gatewayctl admin token add`"]],
            ],
        ]
    }
}
