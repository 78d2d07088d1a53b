import Foundation

/// Why a broadcast was refused, mapped from the node's error (EVM message text, TRON `Return.response_code`).
public enum BroadcastRejection: Sendable, Equatable, CustomStringConvertible {
    /// EVM "nonce too low": a transaction with this nonce is already mined (perhaps this one — check its status).
    case nonceTooLow(String)
    /// EVM "nonce too high" / gapped nonce.
    case nonceTooHigh(String)
    /// EVM "replacement transaction underpriced": another transaction with this nonce is pending and this one does
    /// not pay enough more to replace it.
    case replacementUnderpriced(String)
    /// EVM "transaction underpriced" / fee cap below the base fee.
    case underpriced(String)
    /// EVM "insufficient funds for gas * price + value"; TRON balance checks.
    case insufficientFunds(String)
    /// Bad signature or signer (EVM "invalid sender"; TRON `SIGERROR`).
    case invalidSignature(String)
    /// TRON `TAPOS_ERROR`: the reference block is not on this node's chain.
    case referenceBlock(String)
    /// TRON `TRANSACTION_EXPIRATION_ERROR`: expired; a rebuilt transaction is safe now.
    case expired(String)
    /// TRON `BANDWITH_ERROR`: not enough bandwidth or TRX for it; may succeed after funding, before expiration.
    case bandwidth(String)
    /// TRON `CONTRACT_VALIDATE_ERROR` / `CONTRACT_EXE_ERROR`, EVM intrinsic-gas and similar validation failures.
    case validation(String)
    /// Anything else, with the node's code and message.
    case other(code: String, message: String)

    /// A human-readable reason.
    public var description: String {
        switch self {
        case .nonceTooLow(let m): return "nonce too low (\(m))"
        case .nonceTooHigh(let m): return "nonce too high (\(m))"
        case .replacementUnderpriced(let m): return "replacement transaction underpriced (\(m))"
        case .underpriced(let m): return "fee too low (\(m))"
        case .insufficientFunds(let m): return "insufficient funds (\(m))"
        case .invalidSignature(let m): return "invalid signature (\(m))"
        case .referenceBlock(let m): return "reference block not on the node's chain (\(m))"
        case .expired(let m): return "transaction expired (\(m))"
        case .bandwidth(let m): return "not enough bandwidth (\(m))"
        case .validation(let m): return "rejected by validation (\(m))"
        case .other(let code, let m): return "rejected: \(code) \(m)"
        }
    }
}

/// Why a node call failed. Descriptions name the method (and field) and never contain the node URL, which may
/// carry an API key.
public enum ChainNodeError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The connection failed (refused, reset, closed early) on every attempt.
    case transport(method: String, reason: String)
    /// No answer within the request timeout on every attempt (a hung node).
    case timeout(method: String, after: Duration, attempts: Int)
    /// An HTTP status that is not success, with the start of the body.
    case httpStatus(method: String, status: Int, body: String)
    /// The node kept answering "rate limited" (HTTP 429, JSON-RPC -32005, TRON "lack of computing resources").
    case rateLimited(method: String, message: String)
    /// The answer is not what the protocol says: malformed JSON, a wrong type, a missing field, a non-hex quantity,
    /// or a value that contradicts the request.
    case malformedResponse(method: String, field: String, reason: String)
    /// The node answered with an error object (JSON-RPC `{code, message, data}`, TRON `{"Error": …}` or `Return`).
    case nodeError(method: String, code: Int, message: String)
    /// The thing asked for does not exist on the node (a block above the tip, an unknown contract).
    case notFound(method: String, what: String)
    /// `eth_getLogs` was refused for being too wide even for a single block.
    case rangeTooWide(method: String, from: UInt64, to: UInt64, message: String)
    /// The node refused a broadcast.
    case rejected(BroadcastRejection)
    /// A block changed between two reads of one scan (a reorganisation under us): scan again.
    case reorgDuringScan(height: UInt64, reason: String)
    /// The protocol has no such operation (e.g. nonces on TRON).
    case unsupported(String)
    /// The caller passed something unusable (e.g. an empty token list where one is needed).
    case invalidArgument(String)
    /// The task was cancelled while waiting for the node.
    case cancelled(method: String)

    /// A human-readable reason.
    public var description: String {
        switch self {
        case .transport(let method, let reason): return "\(method): cannot reach the node: \(reason)"
        case .timeout(let method, let after, let attempts):
            return "\(method): the node did not answer within \(after) (\(attempts) attempt\(attempts == 1 ? "" : "s"))"
        case .httpStatus(let method, let status, let body): return "\(method): HTTP \(status)\(body.isEmpty ? "" : ": \(body)")"
        case .rateLimited(let method, let message): return "\(method): rate limited by the node: \(message)"
        case .malformedResponse(let method, let field, let reason): return "\(method): malformed answer, \(field): \(reason)"
        case .nodeError(let method, let code, let message): return "\(method): node error \(code): \(message)"
        case .notFound(let method, let what): return "\(method): \(what) not found"
        case .rangeTooWide(let method, let from, let to, let message): return "\(method): range \(from)...\(to) refused: \(message)"
        case .rejected(let rejection): return "broadcast \(rejection)"
        case .reorgDuringScan(let height, let reason): return "block \(height) changed during the scan (\(reason)); scan again"
        case .unsupported(let what): return "unsupported: \(what)"
        case .invalidArgument(let what): return "invalid argument: \(what)"
        case .cancelled(let method): return "\(method): cancelled"
        }
    }

    /// The error's kind as a metric label (`gateway_node_errors_total{kind}`); nil for a cancellation, which is
    /// the caller stopping, not the node failing.
    public var metricKind: String? {
        switch self {
        case .transport: return "transport"
        case .timeout: return "timeout"
        case .httpStatus: return "http_status"
        case .rateLimited: return "rate_limited"
        case .malformedResponse: return "malformed_response"
        case .nodeError: return "node_error"
        case .notFound: return "not_found"
        case .rangeTooWide: return "range_too_wide"
        case .rejected: return "rejected"
        case .reorgDuringScan: return "reorg_during_scan"
        case .unsupported: return "unsupported"
        case .invalidArgument: return "invalid_argument"
        case .cancelled: return nil
        }
    }

    /// Every `metricKind`, so that each error counter exists (at 0) before its first error.
    public static let metricKinds = [
        "transport", "timeout", "http_status", "rate_limited", "malformed_response", "node_error", "not_found", "range_too_wide",
        "rejected", "reorg_during_scan", "unsupported", "invalid_argument",
    ]

    /// Whether waiting and trying again can help (used by the retry loop).
    public var isTransient: Bool {
        switch self {
        case .transport, .timeout, .rateLimited: return true
        case .httpStatus(_, let status, _): return status == 429 || status == 408 || (500...599).contains(status)
        default: return false
        }
    }
}
