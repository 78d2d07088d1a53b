import AsyncHTTPClient
import BigInt
import Foundation
import Logging
import Synchronization

/// An Ethereum JSON-RPC 2.0 client (geth, Erigon, anvil, hosted providers, devchain) behind `ChainNodeClient`.
///
/// Batches calls (chunks of `maxBatchSize`), reads token transfers with `eth_getLogs` on the token contracts and the
/// `Transfer` topic (splitting the block range when the provider refuses it as too wide or too large), and native
/// transfers from full blocks whose transactions are then checked by receipt status.
public final class EVMNodeClient: ChainNodeClient {
    /// `.evm`.
    public let kind = ChainKind.evm
    let transport: NodeTransport
    private let nextID = Atomic<Int>(1)
    /// The widest log range the node accepted lately (narrowed when it refuses one).
    private let logRange: Mutex<UInt64>

    /// A client for the node at `options.url`; `httpClient` is shared by the process (default `HTTPClient.shared`).
    public init(options: NodeClientOptions, httpClient: HTTPClient = .shared, logger: Logger = Logger(label: "gateway.chain.evm")) {
        transport = NodeTransport(http: httpClient, options: options, logger: logger)
        logRange = Mutex(options.maxLogBlockRange)
    }

    // MARK: JSON-RPC

    /// One JSON-RPC call.
    public struct Call: Sendable {
        /// Method name.
        public var method: String
        /// Positional parameters.
        public var params: [JSONValue]

        /// A call.
        public init(_ method: String, _ params: [JSONValue] = []) {
            self.method = method
            self.params = params
        }
    }

    /// The answer to one call: its result, or the node's error object.
    public enum Outcome: Sendable {
        /// `result` (may be `null`).
        case result(JSONValue)
        /// `error: {code, message, data}`.
        case error(code: Int, message: String, data: JSONValue?)
    }

    /// Sends one call (retried on transient failures) and returns its result, or throws the node's error mapped.
    public func call(_ method: String, _ params: [JSONValue] = []) async throws(ChainNodeError) -> JSONValue {
        let outcome = try await batch([Call(method, params)], asBatch: false)[0]
        switch outcome {
        case .result(let value): return value
        case .error(let code, let message, let data): throw Self.mapError(method: method, code: code, message: message, data: data)
        }
    }

    /// Sends calls as JSON-RPC batches of at most `maxBatchSize`, concurrently; outcomes in call order.
    public func batch(_ calls: [Call]) async throws(ChainNodeError) -> [Outcome] {
        try await batch(calls, asBatch: true)
    }

    private func batch(_ calls: [Call], asBatch: Bool) async throws(ChainNodeError) -> [Outcome] {
        // Small batches go in one request; large ones are spread over the allowed concurrent requests.
        let concurrency = transport.options.maxConcurrentRequests
        let size =
            calls.count <= 8 ? transport.options.maxBatchSize : min(transport.options.maxBatchSize, (calls.count + concurrency - 1) / concurrency)
        let chunks = stride(from: 0, to: calls.count, by: size).map { Array(calls[$0..<min($0 + size, calls.count)]) }
        let results = try await concurrentMap(chunks, limit: transport.options.maxConcurrentRequests) { chunk throws(ChainNodeError) in
            try await self.transport.withRetries(chunk.count == 1 ? chunk[0].method : "batch of \(chunk.count)") { () throws(ChainNodeError) in
                try await self.sendOnce(chunk, asBatch: asBatch || chunk.count > 1)
            }
        }
        return results.flatMap { $0 }
    }

    private func sendOnce(_ calls: [Call], asBatch: Bool) async throws(ChainNodeError) -> [Outcome] {
        let label = calls.count == 1 ? calls[0].method : "batch of \(calls.count) (\(calls[0].method)…)"
        var ids: [Int] = []
        var requests: [JSONValue] = []
        for call in calls {
            let id = nextID.wrappingAdd(1, ordering: .relaxed).oldValue
            ids.append(id)
            requests.append(.object(["jsonrpc": .string("2.0"), "id": .int(id), "method": .string(call.method), "params": .array(call.params)]))
        }
        let body = asBatch ? JSONValue.array(requests).encoded() : requests[0].encoded()
        let bytes = try await transport.post(path: "", body: body, method: label)
        let reader = ResponseReader(method: label)
        let document: JSONValue
        do {
            document = try JSONValue.parse(bytes)
        } catch {
            throw reader.fail("body", "\(error) (starts: \(NodeTransport.snippet(bytes, limit: 60)))")
        }
        var byID: [Int: Outcome] = [:]
        let responses: [JSONValue]
        switch document {
        case .array(let items) where asBatch:
            responses = items
        case .object where asBatch:
            // A whole-batch failure (e.g. "batch too large", rate limit) comes back as one error object.
            let outcome = try parseResponse(document, reader: reader).1
            if case .error(let code, let message, let data) = outcome {
                throw Self.mapError(method: label, code: code, message: message, data: data)
            }
            throw reader.fail("body", "a single response to a batch request")
        case .object:
            responses = [document]
        default:
            throw reader.fail("body", "expected \(asBatch ? "an array" : "an object"), found \(document.typeName)")
        }
        for response in responses {
            let (id, outcome) = try parseResponse(response, reader: reader)
            guard let id, ids.contains(id) else {
                throw reader.fail("id", "answer to a request that was not sent (\(id.map(String.init) ?? "null"))")
            }
            guard byID[id] == nil else { throw reader.fail("id", "two answers for id \(id)") }
            // A rate-limit answer inside a batch fails the whole attempt so that it is retried.
            if case .error(let code, let message, let data) = outcome,
                case .rateLimited = Self.mapError(method: label, code: code, message: message, data: data)
            {
                throw ChainNodeError.rateLimited(method: label, message: message)
            }
            byID[id] = outcome
        }
        return try ids.enumerated().map { (i, id) throws(ChainNodeError) in
            guard let outcome = byID[id] else { throw reader.fail("id", "no answer for \(calls[i].method) (id \(id))") }
            return outcome
        }
    }

    private func parseResponse(_ response: JSONValue, reader: ResponseReader) throws(ChainNodeError) -> (Int?, Outcome) {
        guard case .object = response else { throw reader.fail("response", "expected an object, found \(response.typeName)") }
        guard response["jsonrpc"]?.stringValue == "2.0" else { throw reader.fail("jsonrpc", "expected \"2.0\"") }
        let idValue = response["id"]
        var id: Int?
        switch idValue {
        case .number(let n)?: id = Int(n)
        case .null?, nil: id = nil
        default: throw reader.fail("id", "expected a number, found \(idValue!.typeName)")
        }
        if let error = response["error"], !error.isNull {
            guard case .object = error else { throw reader.fail("error", "expected an object, found \(error.typeName)") }
            guard let codeText = error["code"]?.numberText, let code = Int(codeText) else {
                throw reader.fail("error.code", "missing or not an integer")
            }
            let message = try reader.string(error["message"], "error.message")
            return (id, .error(code: code, message: message, data: error["data"]))
        }
        guard let result = response["result"] else { throw reader.fail("result", "neither result nor error") }
        return (id, .result(result))
    }

    static func mapError(method: String, code: Int, message: String, data: JSONValue?) -> ChainNodeError {
        let text = message.lowercased()
        let isRateLimit =
            code == -32029 || code == 429 || text.contains("rate limit") || text.contains("too many requests") || text.contains("request count")
            || text.contains("requests per") || text.contains("rate exceeded")
            || (code == -32005 && text.contains("exceeded") && !Self.isRangeText(text))
        if isRateLimit && !(method == "eth_getLogs" && isRangeText(text)) { return .rateLimited(method: method, message: message) }
        var full = message
        if let data, !data.isNull { full += " (data: \(ResponseReader.clip(data.description)))" }
        return .nodeError(method: method, code: code, message: full)
    }

    /// Phrases providers use to refuse an `eth_getLogs` range (Infura, Alchemy, QuickNode, geth/Erigon configs…).
    static func isRangeText(_ text: String) -> Bool {
        [
            "block range", "range is too", "range too", "more than", "too many results", "results", "response size", "too large", "range of",
            "limited to", "exceeds limit", "exceed maximum", "max block range", "bigger than range", "query timeout", "range limit",
        ]
        .contains { text.contains($0) }
    }

    static func isRangeRefusal(_ error: ChainNodeError) -> Bool {
        switch error {
        case .nodeError(_, _, let message): return isRangeText(message.lowercased())
        case .httpStatus(_, let status, let body): return status == 413 || (status == 400 && isRangeText(body.lowercased()))
        default: return false
        }
    }

    // MARK: ChainNodeClient

    /// `eth_chainId`.
    public func chainID() async throws(ChainNodeError) -> UInt64 {
        try ResponseReader(method: "eth_chainId").quantity64(try await call("eth_chainId"), "result")
    }

    /// `eth_blockNumber`.
    public func tipHeight() async throws(ChainNodeError) -> UInt64 {
        try ResponseReader(method: "eth_blockNumber").quantity64(try await call("eth_blockNumber"), "result")
    }

    /// `eth_getBlockByNumber(n, false)` for each height, batched.
    public func blockRefs(_ heights: ClosedRange<UInt64>) async throws(ChainNodeError) -> [BlockRef] {
        try await blocks(heights, full: false).map(\.ref)
    }

    struct Block: Sendable {
        var ref: BlockRef
        var transactions: [Transaction]
        var baseFee: BigUInt?
    }

    struct Transaction: Sendable {
        var hash: String
        var index: Int
        var from: AccountID
        var to: AccountID?
        var value: BigUInt
    }

    func blocks(_ heights: ClosedRange<UInt64>, full: Bool) async throws(ChainNodeError) -> [Block] {
        let calls = heights.map { Call("eth_getBlockByNumber", [.string(EthHex.quantity($0)), .bool(full)]) }
        let outcomes = try await batch(calls)
        var blocks: [Block] = []
        blocks.reserveCapacity(outcomes.count)
        for (height, outcome) in zip(heights, outcomes) {
            let value: JSONValue
            switch outcome {
            case .result(let v): value = v
            case .error(let code, let message, let data):
                throw Self.mapError(method: "eth_getBlockByNumber", code: code, message: message, data: data)
            }
            if value.isNull { throw .notFound(method: "eth_getBlockByNumber", what: "block \(height)") }
            let block = try Self.parseBlock(value, full: full, method: "eth_getBlockByNumber")
            guard block.ref.number == height else {
                throw ChainNodeError.malformedResponse(
                    method: "eth_getBlockByNumber",
                    field: "number",
                    reason: "asked for \(height), got \(block.ref.number)"
                )
            }
            blocks.append(block)
        }
        return blocks
    }

    static func parseBlock(_ value: JSONValue, full: Bool, method: String) throws(ChainNodeError) -> Block {
        let r = ResponseReader(method: method)
        let block = try r.object(value, "result")
        let number = try r.quantity64(block["number"], "number")
        let hash = try r.hash(block["hash"], "hash")
        let parent = try r.hash(block["parentHash"], "parentHash")
        let timestamp = try r.quantity64(block["timestamp"], "timestamp")
        guard timestamp < UInt64(Int64.max / 1000) else { throw r.fail("timestamp", "out of range") }
        let baseFee: BigUInt? = try block["baseFeePerGas"].map { v throws(ChainNodeError) in try r.quantity(v, "baseFeePerGas") }
        let txValues = try r.array(block["transactions"], "transactions")
        var transactions: [Transaction] = []
        if full {
            transactions.reserveCapacity(txValues.count)
            for (i, tx) in txValues.enumerated() {
                let field = "transactions[\(i)]"
                _ = try r.object(tx, field)
                let txHash = try r.hash(tx["hash"], "\(field).hash")
                let from = try r.address(tx["from"], "\(field).from")
                let to: AccountID? = (tx["to"] == nil || tx["to"]!.isNull) ? nil : try r.address(tx["to"], "\(field).to")
                let value = try r.quantity(tx["value"], "\(field).value")
                if let bn = tx["blockNumber"], !bn.isNull, try r.quantity64(bn, "\(field).blockNumber") != number {
                    throw r.fail("\(field).blockNumber", "differs from the block's number")
                }
                let index = try tx["transactionIndex"].map { v throws(ChainNodeError) in Int(try r.quantity64(v, "\(field).transactionIndex")) } ?? i
                transactions.append(Transaction(hash: txHash, index: index, from: from, to: to, value: value))
            }
        } else {
            for (i, tx) in txValues.enumerated() { _ = try r.hash(tx, "transactions[\(i)]") }
        }
        let ref = BlockRef(number: number, hash: hash, parentHash: parent, timestampMillis: Int64(timestamp) * 1000)
        return Block(ref: ref, transactions: transactions, baseFee: baseFee)
    }

    struct TransferLog: Sendable {
        var token: AccountID
        var from: AccountID
        var to: AccountID
        var amount: BigUInt
        var blockNumber: UInt64
        var blockHash: String
        var txHash: String
        var logIndex: Int
    }

    /// `Transfer` logs of `tokens` in `heights`, in windows no wider than the node accepts.
    func transferLogs(_ heights: ClosedRange<UInt64>, tokens: [AccountID], watched: WatchedAddresses?) async throws(ChainNodeError) -> [TransferLog] {
        var logs: [TransferLog] = []
        var start = heights.lowerBound
        while start <= heights.upperBound {
            let width = logRange.withLock { $0 }
            let end = min(heights.upperBound, start &+ width &- 1 < start ? UInt64.max : start + width - 1)
            logs += try await transferLogsSplitting(start...end, tokens: tokens, watched: watched)
            if end == UInt64.max { break }
            start = end + 1
        }
        return logs
    }

    private func transferLogsSplitting(
        _ range: ClosedRange<UInt64>,
        tokens: [AccountID],
        watched: WatchedAddresses?
    ) async throws(ChainNodeError) -> [TransferLog] {
        do {
            return try await transferLogsOnce(range, tokens: tokens, watched: watched)
        } catch  where Self.isRangeRefusal(error) {
            guard range.count > 1 else {
                throw .rangeTooWide(method: "eth_getLogs", from: range.lowerBound, to: range.upperBound, message: "\(error)")
            }
            let half = UInt64(range.count / 2)
            logRange.withLock { $0 = max(1, min($0, half)) }
            transport.logger.debug("eth_getLogs range refused; splitting", metadata: ["range": "\(range)", "error": "\(error)"])
            let mid = range.lowerBound + half - 1
            let left = try await transferLogsSplitting(range.lowerBound...mid, tokens: tokens, watched: watched)
            let right = try await transferLogsSplitting((mid + 1)...range.upperBound, tokens: tokens, watched: watched)
            return left + right
        }
    }

    private func transferLogsOnce(
        _ range: ClosedRange<UInt64>,
        tokens: [AccountID],
        watched: WatchedAddresses?
    ) async throws(ChainNodeError) -> [TransferLog] {
        let method = "eth_getLogs"
        let address: JSONValue = tokens.count == 1 ? .string(EthHex.data(tokens[0].bytes)) : .array(tokens.map { .string(EthHex.data($0.bytes)) })
        let filter = JSONValue.object([
            "fromBlock": .string(EthHex.quantity(range.lowerBound)), "toBlock": .string(EthHex.quantity(range.upperBound)),
            "address": address, "topics": .array([.string(EthHex.data(ERC20.transferEventTopic))]),
        ])
        let result = try await call(method, [filter])
        let r = ResponseReader(method: method)
        let items = try r.array(result, "result")
        let tokenSet = Set(tokens)
        var logs: [TransferLog] = []
        for (i, item) in items.enumerated() {
            let field = "result[\(i)]"
            _ = try r.object(item, field)
            if item["removed"]?.boolValue == true { continue }
            let token = try r.address(item["address"], "\(field).address")
            guard tokenSet.contains(token) else { throw r.fail("\(field).address", "a log of a contract that was not asked for") }
            let topics = try r.array(item["topics"], "\(field).topics")
            guard let topic0 = topics.first else { throw r.fail("\(field).topics", "empty although filtered by the Transfer topic") }
            guard try r.hash(topic0, "\(field).topics[0]") == Self.transferTopicHex else {
                throw r.fail("\(field).topics[0]", "not the Transfer topic")
            }
            // ERC721-style Transfer(address,address,uint256 indexed) has four topics: not a token amount.
            guard topics.count == 3 else { continue }
            let number = try r.quantity64(item["blockNumber"], "\(field).blockNumber")
            guard range.contains(number) else { throw r.fail("\(field).blockNumber", "\(number) is outside \(range)") }
            let toText = try r.hash(topics[2], "\(field).topics[2]")
            guard let to = AccountID(hexSuffixOf: toText) else { throw r.fail("\(field).topics[2]", "not an address word") }
            if let watched, !watched.contains(to) { continue }
            let fromText = try r.hash(topics[1], "\(field).topics[1]")
            guard let from = AccountID(hexSuffixOf: fromText) else { throw r.fail("\(field).topics[1]", "not an address word") }
            let data = try r.data(item["data"], "\(field).data")
            guard data.count == 32 else { throw r.fail("\(field).data", "expected a 32-byte amount, found \(data.count) bytes") }
            logs.append(
                TransferLog(
                    token: token,
                    from: from,
                    to: to,
                    amount: BigUInt(data),
                    blockNumber: number,
                    blockHash: try r.hash(item["blockHash"], "\(field).blockHash"),
                    txHash: try r.hash(item["transactionHash"], "\(field).transactionHash"),
                    logIndex: Int(try r.quantity64(item["logIndex"], "\(field).logIndex"))
                )
            )
        }
        return logs
    }

    static let transferTopicHex = EthHex.data(ERC20.transferEventTopic)

    /// Token transfers from `eth_getLogs`, native ones from full blocks checked by receipt status.
    public func transfers(
        in heights: ClosedRange<UInt64>,
        to watched: WatchedAddresses,
        tokens: [AccountID],
        includeNative: Bool
    )
        async throws(ChainNodeError) -> TransferScan
    {
        async let blocksResult = capture { () throws(ChainNodeError) in try await self.blocks(heights, full: includeNative) }
        async let logsResult = capture { () throws(ChainNodeError) in
            tokens.isEmpty ? [] : try await self.transferLogs(heights, tokens: tokens, watched: watched)
        }
        let blocks = try await blocksResult.get()
        let logs = try await logsResult.get()
        try Self.checkContinuity(blocks)
        var hashes: [UInt64: String] = [:]
        for block in blocks { hashes[block.ref.number] = block.ref.hash }

        var transfers: [(order: (UInt64, Int, Int), transfer: ObservedTransfer)] = []
        for log in logs {
            guard hashes[log.blockNumber] == log.blockHash else {
                throw .reorgDuringScan(height: log.blockNumber, reason: "eth_getLogs and eth_getBlockByNumber name different block hashes")
            }
            let t = ObservedTransfer(
                asset: .token(log.token),
                txHash: log.txHash,
                logIndex: log.logIndex,
                blockNumber: log.blockNumber,
                blockHash: log.blockHash,
                from: log.from,
                to: log.to,
                amount: log.amount
            )
            transfers.append(((log.blockNumber, log.logIndex, 1), t))
        }
        if includeNative {
            var candidates: [(Block, Transaction)] = []
            for block in blocks {
                for tx in block.transactions where tx.value > 0 {
                    if let to = tx.to, watched.contains(to) { candidates.append((block, tx)) }
                }
            }
            if !candidates.isEmpty {
                let outcomes = try await batch(candidates.map { Call("eth_getTransactionReceipt", [.string($0.1.hash)]) })
                for ((block, tx), outcome) in zip(candidates, outcomes) {
                    let receipt = try Self.parseReceiptOutcome(outcome, hash: tx.hash)
                    guard let receipt else {
                        throw .reorgDuringScan(height: block.ref.number, reason: "no receipt for \(tx.hash) in a returned block")
                    }
                    guard receipt.blockHash == block.ref.hash else {
                        throw .reorgDuringScan(height: block.ref.number, reason: "receipt of \(tx.hash) names another block")
                    }
                    guard receipt.success else { continue }
                    let t = ObservedTransfer(
                        asset: .native,
                        txHash: tx.hash,
                        logIndex: nil,
                        blockNumber: block.ref.number,
                        blockHash: block.ref.hash,
                        from: tx.from,
                        to: tx.to!,
                        amount: tx.value
                    )
                    transfers.append(((block.ref.number, tx.index, 0), t))
                }
            }
        }
        transfers.sort { $0.order < $1.order }
        return TransferScan(blocks: blocks.map(\.ref), transfers: transfers.map(\.transfer))
    }

    static func checkContinuity(_ blocks: [Block]) throws(ChainNodeError) {
        for (previous, next) in zip(blocks, blocks.dropFirst()) where next.ref.parentHash != previous.ref.hash {
            throw .reorgDuringScan(height: next.ref.number, reason: "its parent hash is not the hash of block \(previous.ref.number)")
        }
    }

    struct Receipt: Sendable {
        var success: Bool
        var blockNumber: UInt64
        var blockHash: String
        var fee: BigUInt
    }

    static func parseReceiptOutcome(_ outcome: Outcome, hash: String) throws(ChainNodeError) -> Receipt? {
        let method = "eth_getTransactionReceipt"
        let value: JSONValue
        switch outcome {
        case .result(let v): value = v
        case .error(let code, let message, let data): throw mapError(method: method, code: code, message: message, data: data)
        }
        if value.isNull { return nil }
        let r = ResponseReader(method: method)
        _ = try r.object(value, "result")
        guard try r.hash(value["transactionHash"], "transactionHash") == hash.lowercased() else {
            throw r.fail("transactionHash", "not the hash asked for")
        }
        let status = try r.quantity64(value["status"], "status")
        guard status <= 1 else { throw r.fail("status", "expected 0x0 or 0x1, found \(status)") }
        let gasUsed = try r.quantity(value["gasUsed"], "gasUsed")
        let price = try r.quantity(value["effectiveGasPrice"], "effectiveGasPrice")
        return Receipt(
            success: status == 1,
            blockNumber: try r.quantity64(value["blockNumber"], "blockNumber"),
            blockHash: try r.hash(value["blockHash"], "blockHash"),
            fee: gasUsed * price
        )
    }

    /// Receipt (status 0x1 confirmed, 0x0 failed); without one, the transaction itself tells pending from unknown.
    public func transactionStatus(_ txHash: String) async throws(ChainNodeError) -> TransactionStatus {
        try await transactionStatuses([txHash])[0]
    }

    /// `transactionStatus` of many transactions: their receipts and transactions in JSON-RPC batches.
    public func transactionStatuses(_ txHashes: [String]) async throws(ChainNodeError) -> [TransactionStatus] {
        var hashes: [String] = []
        for txHash in txHashes {
            guard let hash = EthHex.parseHash(txHash) else { throw .invalidArgument("transaction hash must be 0x + 64 hex digits") }
            hashes.append(hash)
        }
        // Receipts first; only a transaction without one is asked about again (pending, or unknown to
        // the node). Most looks find their transactions mined: one call each instead of two.
        let receipts = try await batch(hashes.map { Call("eth_getTransactionReceipt", [.string($0)]) })
        var statuses = [TransactionStatus](repeating: .notFound, count: hashes.count)
        var unmined: [Int] = []
        for (i, hash) in hashes.enumerated() {
            if let status = try Self.status(receipt: receipts[i], hash: hash) { statuses[i] = status } else { unmined.append(i) }
        }
        guard !unmined.isEmpty else { return statuses }
        let transactions = try await batch(unmined.map { Call("eth_getTransactionByHash", [.string(hashes[$0])]) })
        for (k, i) in unmined.enumerated() {
            statuses[i] = try Self.status(transaction: transactions[k], hash: hashes[i])
        }
        return statuses
    }

    /// The status a receipt gives; nil when the node has none (not mined).
    static func status(receipt: Outcome, hash: String) throws(ChainNodeError) -> TransactionStatus? {
        guard let receipt = try parseReceiptOutcome(receipt, hash: hash) else { return nil }
        let r = TransactionReceipt(
            blockNumber: receipt.blockNumber,
            blockHash: receipt.blockHash,
            fee: receipt.fee,
            failureReason: receipt.success ? nil : "execution failed (receipt status 0x0)"
        )
        return receipt.success ? .confirmed(r) : .failed(r)
    }

    /// The status of a transaction without a receipt: pending when the node knows it (it may have
    /// been mined since the receipt was asked for: the next look sees its receipt), else not found.
    static func status(transaction: Outcome, hash: String) throws(ChainNodeError) -> TransactionStatus {
        switch transaction {
        case .result(let tx) where tx.isNull: return .notFound
        case .result(let tx):
            let r = ResponseReader(method: "eth_getTransactionByHash")
            _ = try r.object(tx, "result")
            guard try r.hash(tx["hash"], "hash") == hash else { throw r.fail("hash", "not the hash asked for") }
            return .pending
        case .error(let code, let message, let data):
            throw mapError(method: "eth_getTransactionByHash", code: code, message: message, data: data)
        }
    }

    /// `eth_getTransactionCount` at `latest` and `pending`, in one batch.
    public func nonce(of account: AccountID) async throws(ChainNodeError) -> AccountNonce {
        let address = JSONValue.string(EthHex.data(account.bytes))
        let outcomes = try await batch([
            Call("eth_getTransactionCount", [address, .string("latest")]), Call("eth_getTransactionCount", [address, .string("pending")]),
        ])
        let r = ResponseReader(method: "eth_getTransactionCount")
        let values = try outcomes.map { (outcome) throws(ChainNodeError) -> UInt64 in
            switch outcome {
            case .result(let v): return try r.quantity64(v, "result")
            case .error(let code, let message, let data):
                throw Self.mapError(method: "eth_getTransactionCount", code: code, message: message, data: data)
            }
        }
        return AccountNonce(latest: values[0], pending: values[1])
    }

    /// `eth_getBalance(address, "latest")`.
    public func nativeBalance(of account: AccountID) async throws(ChainNodeError) -> NativeBalance {
        let result = try await call("eth_getBalance", [.string(EthHex.data(account.bytes)), .string("latest")])
        return NativeBalance(amount: try ResponseReader(method: "eth_getBalance").quantity(result, "result"), accountExists: true)
    }

    /// `eth_call` of `balanceOf(account)` on `token` at `latest`.
    public func tokenBalance(of account: AccountID, token: AccountID) async throws(ChainNodeError) -> BigUInt {
        let call = JSONValue.object([
            "to": .string(EthHex.data(token.bytes)), "data": .string(EthHex.data(ERC20.balanceOfCalldata(owner: account.evmAddress))),
        ])
        let result = try await self.call("eth_call", [call, .string("latest")])
        let r = ResponseReader(method: "eth_call balanceOf")
        let data = try r.data(result, "result")
        if data.isEmpty {
            throw .notFound(method: "eth_call balanceOf", what: "token contract at \(ChainKind.evm.format(token)) (empty return data)")
        }
        guard data.count == 32 else { throw r.fail("result", "expected a 32-byte uint256, found \(data.count) bytes") }
        return BigUInt(data)
    }

    /// Balances of many accounts in JSON-RPC batches: per query `eth_getBalance` (no `token`) or `balanceOf` on
    /// `token`, at `latest`. Each query gets its own outcome: a node error on one leaves the others standing; a
    /// transport failure of the whole request throws.
    public func balances(_ queries: [(account: AccountID, token: AccountID?)]) async throws(ChainNodeError) -> [Result<BigUInt, ChainNodeError>] {
        let calls = queries.map { q -> Call in
            if let token = q.token {
                let call = JSONValue.object([
                    "to": .string(EthHex.data(token.bytes)), "data": .string(EthHex.data(ERC20.balanceOfCalldata(owner: q.account.evmAddress))),
                ])
                return Call("eth_call", [call, .string("latest")])
            }
            return Call("eth_getBalance", [.string(EthHex.data(q.account.bytes)), .string("latest")])
        }
        let outcomes = try await batch(calls)
        return zip(queries, outcomes).map { q, outcome in
            let method = q.token == nil ? "eth_getBalance" : "eth_call balanceOf"
            switch outcome {
            case .error(let code, let message, let data): return .failure(Self.mapError(method: method, code: code, message: message, data: data))
            case .result(let v):
                let r = ResponseReader(method: method)
                guard let token = q.token else { return Result { () throws(ChainNodeError) in try r.quantity(v, "result") } }
                return Result { () throws(ChainNodeError) -> BigUInt in
                    let data = try r.data(v, "result")
                    if data.isEmpty {
                        throw .notFound(method: method, what: "token contract at \(ChainKind.evm.format(token)) (empty return data)")
                    }
                    guard data.count == 32 else { throw r.fail("result", "expected a 32-byte uint256, found \(data.count) bytes") }
                    return BigUInt(data)
                }
            }
        }
    }

    /// `eth_getTransactionCount(account, "pending")` of many accounts in JSON-RPC batches; per account its outcome.
    public func pendingNonces(of accounts: [AccountID]) async throws(ChainNodeError) -> [Result<UInt64, ChainNodeError>] {
        let outcomes = try await batch(accounts.map { Call("eth_getTransactionCount", [.string(EthHex.data($0.bytes)), .string("pending")]) })
        return outcomes.map { outcome in
            switch outcome {
            case .error(let code, let message, let data):
                return .failure(Self.mapError(method: "eth_getTransactionCount", code: code, message: message, data: data))
            case .result(let v): return Result { () throws(ChainNodeError) in try ResponseReader(method: "eth_getTransactionCount").quantity64(v, "result") }
            }
        }
    }

    /// Gas prices (`eth_gasPrice`, `eth_maxPriorityFeePerGas`, the latest base fee) and `eth_estimateGas`, in one batch.
    public func feeEstimate(_ query: FeeQuery) async throws(ChainNodeError) -> FeeEstimate {
        let tx: JSONValue
        switch query {
        case .native(let from, let to, let amount):
            tx = .object(["from": .string(EthHex.data(from.bytes)), "to": .string(EthHex.data(to.bytes)), "value": .string(EthHex.quantity(amount))])
        case .token(let token, let from, let to, let amount):
            tx = .object([
                "from": .string(EthHex.data(from.bytes)), "to": .string(EthHex.data(token.bytes)),
                "data": .string(EthHex.data(ERC20.transferCalldata(to: to.evmAddress, amount: amount))),
            ])
        }
        let outcomes = try await batch([
            Call("eth_gasPrice"), Call("eth_maxPriorityFeePerGas"), Call("eth_getBlockByNumber", [.string("latest"), .bool(false)]),
            Call("eth_estimateGas", [tx]),
        ])
        func result(_ i: Int, _ method: String) throws(ChainNodeError) -> JSONValue {
            switch outcomes[i] {
            case .result(let v): return v
            case .error(let code, let message, let data): throw Self.mapError(method: method, code: code, message: message, data: data)
            }
        }
        let gasPrice = try ResponseReader(method: "eth_gasPrice").quantity(try result(0, "eth_gasPrice"), "result")
        let latest = try Self.parseBlock(try result(2, "eth_getBlockByNumber"), full: false, method: "eth_getBlockByNumber")
        let estimate = try ResponseReader(method: "eth_estimateGas").quantity64(try result(3, "eth_estimateGas"), "result")
        var tip: BigUInt
        if case .result(let v) = outcomes[1] {
            tip = try ResponseReader(method: "eth_maxPriorityFeePerGas").quantity(v, "result")
        } else {
            // Not every node has eth_maxPriorityFeePerGas: the gas price minus the base fee is the tip it implies.
            let base = latest.baseFee ?? 0
            tip = gasPrice > base ? gasPrice - base : 0
        }
        let maxFee = (latest.baseFee ?? gasPrice) * 2 + tip
        if latest.baseFee == nil { tip = gasPrice }
        let gasLimit = estimate == 21_000 ? estimate : estimate + estimate / 5
        return .evm(
            EVMFeeEstimate(
                baseFeePerGas: latest.baseFee,
                maxPriorityFeePerGas: tip,
                maxFeePerGas: maxFee,
                gasPrice: gasPrice,
                gasEstimate: estimate,
                gasLimit: gasLimit
            )
        )
    }

    /// `eth_sendRawTransaction`; "already known" is success, the usual refusals are typed.
    public func broadcast(_ signed: Data) async throws(ChainNodeError) -> BroadcastResult {
        let method = "eth_sendRawTransaction"
        let expected = EthHex.data(Keccak256.hash(signed))
        do throws(ChainNodeError) {
            let result = try await call(method, [.string(EthHex.data(signed))])
            let hash = try ResponseReader(method: method).hash(result, "result")
            guard hash == expected else {
                throw ChainNodeError.malformedResponse(method: method, field: "result", reason: "hash \(hash) is not the transaction's \(expected)")
            }
            return BroadcastResult(txHash: hash, alreadyKnown: false)
        } catch {
            guard case .nodeError(_, let code, let message) = error else { throw error }
            return try Self.classifyBroadcastRefusal(code: code, message: message, expected: expected).get()
        }
    }

    /// Many `eth_sendRawTransaction` in JSON-RPC batches (one round trip per `maxBatchSize`); per transaction, what
    /// `broadcast` would have answered. The batches may reach the node in any order: nodes queue future nonces.
    public func broadcast(all signed: [Data]) async throws(ChainNodeError) -> [Result<BroadcastResult, ChainNodeError>] {
        let outcomes = try await batch(signed.map { Call("eth_sendRawTransaction", [.string(EthHex.data($0))]) })
        return zip(signed, outcomes).map { raw, outcome in
            let expected = EthHex.data(Keccak256.hash(raw))
            switch outcome {
            case .result(let v):
                guard (try? ResponseReader(method: "eth_sendRawTransaction").hash(v, "result")) == expected else {
                    return .failure(.malformedResponse(method: "eth_sendRawTransaction", field: "result", reason: "not the transaction's hash \(expected)"))
                }
                return .success(BroadcastResult(txHash: expected, alreadyKnown: false))
            case .error(let code, let message, _):
                return Self.classifyBroadcastRefusal(code: code, message: message, expected: expected)
            }
        }
    }

    /// What a node's refusal of `eth_sendRawTransaction` means: "already known" is success, the usual refusals typed.
    static func classifyBroadcastRefusal(code: Int, message: String, expected: String) -> Result<BroadcastResult, ChainNodeError> {
        let text = message.lowercased()
        if text.contains("already known") || text.contains("known transaction") || text.contains("alreadyknown")
            || text.contains("already imported")
            || text.contains("already exists")
        {
            return .success(BroadcastResult(txHash: expected, alreadyKnown: true))
        }
        if text.contains("nonce too low") || text.contains("oldnonce") { return .failure(.rejected(.nonceTooLow(message))) }
        if text.contains("nonce too high") { return .failure(.rejected(.nonceTooHigh(message))) }
        if text.contains("replacement transaction underpriced") || text.contains("replacement") {
            return .failure(.rejected(.replacementUnderpriced(message)))
        }
        if text.contains("insufficient funds") { return .failure(.rejected(.insufficientFunds(message))) }
        if text.contains("underpriced") || text.contains("less than block base fee") || text.contains("fee cap") || text.contains("feetoolow") {
            return .failure(.rejected(.underpriced(message)))
        }
        if text.contains("invalid sender") || text.contains("invalid signature") { return .failure(.rejected(.invalidSignature(message))) }
        if text.contains("intrinsic gas") || text.contains("chain id") || text.contains("gas limit") || text.contains("eip-155") {
            return .failure(.rejected(.validation(message)))
        }
        return .failure(.rejected(.other(code: String(code), message: message)))
    }
}

/// Runs `operation` and captures its outcome (for `async let` with typed errors).
func capture<T: Sendable>(_ operation: () async throws(ChainNodeError) -> T) async -> Result<T, ChainNodeError> {
    do {
        return .success(try await operation())
    } catch {
        return .failure(error)
    }
}

/// Maps `items` with at most `limit` operations in flight; results in input order; the first error wins.
func concurrentMap<T: Sendable, R: Sendable>(
    _ items: [T],
    limit: Int,
    _ operation: @escaping @Sendable (T) async throws(ChainNodeError) -> R
)
    async throws(ChainNodeError) -> [R]
{
    if items.count == 1 { return [try await operation(items[0])] }
    let outcome: Result<[R], ChainNodeError> = await withTaskGroup(of: (Int, Result<R, ChainNodeError>).self) { group in
        var results = [R?](repeating: nil, count: items.count)
        var next = 0
        func add() {
            let index = next
            let item = items[index]
            group.addTask { (index, await capture { () throws(ChainNodeError) in try await operation(item) }) }
            next += 1
        }
        while next < min(limit, items.count) { add() }
        while let (index, result) = await group.next() {
            switch result {
            case .success(let r): results[index] = r
            case .failure(let e):
                group.cancelAll()
                return .failure(e)
            }
            if next < items.count { add() }
        }
        return .success(results.map { $0! })
    }
    return try outcome.get()
}
