import AsyncHTTPClient
import BigInt
import Foundation
import Logging

/// A block as the TRON HTTP API prints it (`getnowblock`, `getblockbynum`), reduced to what a gateway reads.
public struct TronBlock: Sendable {
    /// Number, `blockID` and `parentHash` (64 hex digits, no `0x`), timestamp in ms.
    public let ref: BlockRef
    /// The transactions (empty when the block has no `transactions` key).
    public let transactions: [TronBlockTransaction]

    /// A block.
    public init(ref: BlockRef, transactions: [TronBlockTransaction]) {
        self.ref = ref
        self.transactions = transactions
    }
}

/// One transaction of a block.
public struct TronBlockTransaction: Sendable {
    /// `txID`, lower-case hex.
    public let txID: String
    /// `ret[0].contractRet` (`SUCCESS`, `REVERT`, `OUT_OF_ENERGY`, …); nil when absent.
    public let contractRet: String?
    /// `raw_data.contract[0].type`.
    public let contractType: String
    /// `owner_address` of the contract, when it has one.
    public let owner: AccountID?
    /// For a `TransferContract`: recipient and amount in sun.
    public let trxTransfer: (to: AccountID, amount: Int64)?

    /// A transaction.
    public init(txID: String, contractRet: String?, contractType: String, owner: AccountID?, trxTransfer: (to: AccountID, amount: Int64)?) {
        self.txID = txID
        self.contractRet = contractRet
        self.contractType = contractType
        self.owner = owner
        self.trxTransfer = trxTransfer
    }
}

/// One event log of a transaction info.
public struct TronLog: Sendable, Equatable {
    /// The emitting contract (the log's 20-byte address).
    public let address: AccountID
    /// 32-byte topics as 64 lower-case hex digits.
    public let topics: [String]
    /// Non-indexed data as hex ("" when the key is absent).
    public let data: String
}

/// `TransactionInfo` (`gettransactioninfobyid`, `gettransactioninfobyblocknum`), tron-http-api.md §5.
public struct TronTransactionInfo: Sendable, Equatable {
    /// `id`, lower-case hex.
    public let id: String
    /// `blockNumber`.
    public let blockNumber: UInt64
    /// `blockTimeStamp` in ms.
    public let blockTimestamp: Int64
    /// `fee`: total sun burned (0 when absent).
    public let fee: Int64
    /// `contract_address` (VM transactions).
    public let contractAddress: AccountID?
    /// `receipt.result` (`SUCCESS`, `REVERT`, `OUT_OF_ENERGY`…); nil for system contracts such as TRX transfers.
    public let receiptResult: String?
    /// `receipt.energy_usage_total`.
    public let energyUsageTotal: Int64
    /// `receipt.net_usage` (bandwidth bytes from free/staked bandwidth).
    public let netUsage: Int64
    /// `receipt.net_fee` (sun burned for bandwidth).
    public let netFee: Int64
    /// `receipt.energy_fee` (sun burned for energy).
    public let energyFee: Int64
    /// True when `result` is `FAILED`.
    public let failed: Bool
    /// `resMessage` decoded from hex to text (or as given when it is not hex, e.g. with `visible`).
    public let resMessage: String?
    /// `log`, in order.
    public let logs: [TronLog]

    /// Whether the transaction succeeded: no `result: FAILED`, and a VM receipt (if any) says `SUCCESS`.
    public var succeeded: Bool { !failed && (receiptResult == nil || receiptResult == "SUCCESS") }
}

/// Parsing of java-tron's JSON, strict about shapes and encodings, lenient about what java-tron omits (zero values).
public enum TronNodeJSON {
    /// A TRON address in node JSON: `41…` hex (visible=false) or base58 `T…` (visible=true).
    static func address(_ value: JSONValue?, _ field: String, _ r: ResponseReader) throws(ChainNodeError) -> AccountID {
        let s = try r.string(value, field)
        if s.utf8.count == 42, s.hasPrefix("41"), let id = AccountID(hexSuffixOf: s), Hex.isHex(s) { return id }
        if s.utf8.count == 34, let a = try? TronAddress(s) { return AccountID(a) }
        throw r.fail(field, "not a TRON address: \(ResponseReader.clip(s))")
    }

    /// A log address: 20 bytes (40 hex digits) as java-tron stores it; also `41…` hex and base58 (visible=true).
    static func logAddress(_ value: JSONValue?, _ field: String, _ r: ResponseReader) throws(ChainNodeError) -> AccountID {
        let s = try r.string(value, field)
        if s.utf8.count == 40, Hex.isHex(s), let id = AccountID(hexSuffixOf: s) { return id }
        return try address(value, field, r)
    }

    /// Parses a block; with `transactions: false` only the header is read.
    public static func parseBlock(_ value: JSONValue, method: String, transactions: Bool = true) throws(ChainNodeError) -> TronBlock {
        let r = ResponseReader(method: method)
        _ = try r.object(value, "block")
        let blockID = try r.plainHex(value["blockID"], "blockID", bytes: 32)
        let header = try r.object(value["block_header"], "block_header")
        let raw = try r.object(header["raw_data"], "block_header.raw_data")
        let number = try r.uint64(raw["number"], "block_header.raw_data.number", absentAs: 0)
        guard UInt64(blockID.prefix(16), radix: 16) == number else {
            throw r.fail("blockID", "its first 8 bytes are not the block number \(number)")
        }
        let parent = try r.plainHex(raw["parentHash"], "block_header.raw_data.parentHash", bytes: 32)
        let timestamp = try r.int64(raw["timestamp"], "block_header.raw_data.timestamp", absentAs: 0)
        var txs: [TronBlockTransaction] = []
        if transactions, let list = value["transactions"] {
            let items = try r.array(list, "transactions")
            txs.reserveCapacity(items.count)
            for (i, tx) in items.enumerated() { txs.append(try parseBlockTransaction(tx, field: "transactions[\(i)]", r)) }
        }
        return TronBlock(ref: BlockRef(number: number, hash: blockID, parentHash: parent, timestampMillis: timestamp), transactions: txs)
    }

    static func parseBlockTransaction(_ tx: JSONValue, field: String, _ r: ResponseReader) throws(ChainNodeError) -> TronBlockTransaction {
        _ = try r.object(tx, field)
        let txID = try r.plainHex(tx["txID"], "\(field).txID", bytes: 32)
        var contractRet: String?
        if let ret = tx["ret"] {
            let rets = try r.array(ret, "\(field).ret")
            if let first = rets.first {
                _ = try r.object(first, "\(field).ret[0]")
                if let cr = first["contractRet"] { contractRet = try r.string(cr, "\(field).ret[0].contractRet") }
            }
        }
        let raw = try r.object(tx["raw_data"], "\(field).raw_data")
        let contracts = try r.array(raw["contract"], "\(field).raw_data.contract")
        guard contracts.count == 1 else { throw r.fail("\(field).raw_data.contract", "expected exactly one contract, found \(contracts.count)") }
        let contract = try r.object(contracts[0], "\(field).raw_data.contract[0]")
        let type = try r.string(contract["type"], "\(field).raw_data.contract[0].type")
        let valueField = "\(field).raw_data.contract[0].parameter.value"
        let value = try r.object(try r.object(contract["parameter"], "\(field).raw_data.contract[0].parameter")["value"], valueField)
        let owner: AccountID? = try value["owner_address"].map { v throws(ChainNodeError) in try address(v, "\(valueField).owner_address", r) }
        var transfer: (AccountID, Int64)?
        if type == "TransferContract" {
            let to = try address(value["to_address"], "\(valueField).to_address", r)
            let amount = try r.int64(value["amount"], "\(valueField).amount", absentAs: 0)
            guard amount >= 0 else { throw r.fail("\(valueField).amount", "negative") }
            transfer = (to, amount)
        }
        return TronBlockTransaction(txID: txID, contractRet: contractRet, contractType: type, owner: owner, trxTransfer: transfer)
    }

    /// Parses one `TransactionInfo` object (not `{}`).
    public static func parseTransactionInfo(_ info: JSONValue, method: String, field: String = "info") throws(ChainNodeError) -> TronTransactionInfo {
        let r = ResponseReader(method: method)
        _ = try r.object(info, field)
        let id = try r.plainHex(info["id"], "\(field).id", bytes: 32)
        let blockNumber = try r.uint64(info["blockNumber"], "\(field).blockNumber")
        let timestamp = try r.int64(info["blockTimeStamp"], "\(field).blockTimeStamp", absentAs: 0)
        let fee = try r.int64(info["fee"], "\(field).fee", absentAs: 0)
        guard fee >= 0 else { throw r.fail("\(field).fee", "negative") }
        let contractAddress: AccountID? = try info["contract_address"].map { v throws(ChainNodeError) in
            try address(v, "\(field).contract_address", r)
        }
        var receiptResult: String?
        var energyTotal: Int64 = 0
        var netUsage: Int64 = 0
        var netFee: Int64 = 0
        var energyFee: Int64 = 0
        if let receipt = info["receipt"] {
            _ = try r.object(receipt, "\(field).receipt")
            if let result = receipt["result"] { receiptResult = try r.string(result, "\(field).receipt.result") }
            energyTotal = try r.int64(receipt["energy_usage_total"], "\(field).receipt.energy_usage_total", absentAs: 0)
            netUsage = try r.int64(receipt["net_usage"], "\(field).receipt.net_usage", absentAs: 0)
            netFee = try r.int64(receipt["net_fee"], "\(field).receipt.net_fee", absentAs: 0)
            energyFee = try r.int64(receipt["energy_fee"], "\(field).receipt.energy_fee", absentAs: 0)
        }
        var failed = false
        if let result = info["result"] {
            let text = try r.string(result, "\(field).result")
            guard text == "FAILED" || text == "SUCESS" else { throw r.fail("\(field).result", "unknown value \(text)") }
            failed = text == "FAILED"
        }
        var resMessage: String?
        if let message = info["resMessage"] {
            let text = try r.string(message, "\(field).resMessage")
            if let bytes = try? Hex.decode(text, allowPrefix: false) {
                resMessage = String(decoding: bytes, as: UTF8.self)
            } else {
                resMessage = text
            }
        }
        var logs: [TronLog] = []
        if let list = info["log"] {
            for (i, log) in try r.array(list, "\(field).log").enumerated() {
                let lf = "\(field).log[\(i)]"
                _ = try r.object(log, lf)
                let address = try logAddress(log["address"], "\(lf).address", r)
                var topics: [String] = []
                for (j, topic) in try r.array(log["topics"] ?? .array([]), "\(lf).topics").enumerated() {
                    topics.append(try r.plainHex(topic, "\(lf).topics[\(j)]", bytes: 32))
                }
                let data = try log["data"].map { v throws(ChainNodeError) in try r.plainHex(v, "\(lf).data") } ?? ""
                logs.append(TronLog(address: address, topics: topics, data: data))
            }
        }
        return TronTransactionInfo(
            id: id,
            blockNumber: blockNumber,
            blockTimestamp: timestamp,
            fee: fee,
            contractAddress: contractAddress,
            receiptResult: receiptResult,
            energyUsageTotal: energyTotal,
            netUsage: netUsage,
            netFee: netFee,
            energyFee: energyFee,
            failed: failed,
            resMessage: resMessage,
            logs: logs
        )
    }

    static let transferTopic = Hex.encode(ERC20.transferEventTopic)

    /// Successful token transfers to `watched` in one block: `Transfer` logs of `tokens` in infos whose transaction
    /// succeeded (info and the block's `contractRet`). Throws `.reorgDuringScan` if the infos are not the block's.
    public static func tokenTransfers(
        block: TronBlock,
        infos: [TronTransactionInfo],
        watched: WatchedAddresses?,
        tokens: Set<AccountID>
    )
        throws(ChainNodeError) -> [ObservedTransfer]
    {
        var contractRet: [String: String?] = [:]
        contractRet.reserveCapacity(block.transactions.count)
        for tx in block.transactions { contractRet[tx.txID] = tx.contractRet }
        var transfers: [ObservedTransfer] = []
        for info in infos {
            guard info.blockNumber == block.ref.number, let ret = contractRet[info.id] else {
                throw .reorgDuringScan(height: block.ref.number, reason: "transaction info \(info.id) is not in block \(block.ref.hash)")
            }
            guard !info.logs.isEmpty, info.succeeded, ret == "SUCCESS" else { continue }
            for (index, log) in info.logs.enumerated() {
                guard tokens.contains(log.address), log.topics.count == 3, log.topics[0] == transferTopic else { continue }
                guard let to = AccountID(hexSuffixOf: log.topics[2]) else { continue }
                if let watched, !watched.contains(to) { continue }
                guard let from = AccountID(hexSuffixOf: log.topics[1]), log.data.utf8.count == 64, let amount = BigUInt(hexDigits: log.data) else {
                    throw ChainNodeError.malformedResponse(
                        method: "gettransactioninfobyblocknum",
                        field: "log[\(index)]",
                        reason: "a Transfer log without a 32-byte amount in \(info.id)"
                    )
                }
                transfers.append(
                    ObservedTransfer(
                        asset: .token(log.address),
                        txHash: info.id,
                        logIndex: index,
                        blockNumber: block.ref.number,
                        blockHash: block.ref.hash,
                        from: from,
                        to: to,
                        amount: amount
                    )
                )
            }
        }
        return transfers
    }

    /// Successful TRX transfers (`TransferContract`, `contractRet` SUCCESS) to `watched` in a block.
    public static func nativeTransfers(block: TronBlock, watched: WatchedAddresses?) -> [ObservedTransfer] {
        var transfers: [ObservedTransfer] = []
        for tx in block.transactions {
            guard let (to, amount) = tx.trxTransfer, amount > 0, tx.contractRet == "SUCCESS", let from = tx.owner else { continue }
            if let watched, !watched.contains(to) { continue }
            transfers.append(
                ObservedTransfer(
                    asset: .native,
                    txHash: tx.txID,
                    logIndex: nil,
                    blockNumber: block.ref.number,
                    blockHash: block.ref.hash,
                    from: from,
                    to: to,
                    amount: BigUInt(amount)
                )
            )
        }
        return transfers
    }
}

/// A java-tron HTTP API client (full node or TronGrid, `visible=false` throughout) behind `ChainNodeClient`.
public final class TronNodeClient: ChainNodeClient {
    /// `.tron`.
    public let kind = ChainKind.tron
    let transport: NodeTransport

    /// A client for the node at `options.url` (the root that `/wallet/…` is appended to).
    public init(options: NodeClientOptions, httpClient: HTTPClient = .shared, logger: Logger = Logger(label: "gateway.chain.tron")) {
        transport = NodeTransport(http: httpClient, options: options, logger: logger)
    }

    /// POSTs `body` to `path` (e.g. `/wallet/getblockbynum`), with retries, and returns the parsed answer. A
    /// `{"Error": …}` answer is a node error ("lack of computing resources" is a rate limit, retried).
    public func post(_ path: String, _ body: JSONValue) async throws(ChainNodeError) -> JSONValue {
        let bytes = body.encoded()
        return try await transport.withRetries(Self.methodName(path)) { () throws(ChainNodeError) in try await self.postOnce(path, bytes) }
    }

    static func methodName(_ path: String) -> String { String(path.split(separator: "/").last ?? Substring(path)) }

    /// One POST without retries.
    func postOnce(_ path: String, _ bytes: [UInt8]) async throws(ChainNodeError) -> JSONValue {
        let method = Self.methodName(path)
        let answer = try await transport.post(path: path, body: bytes, method: method)
        let document: JSONValue
        do {
            document = try JSONValue.parse(answer)
        } catch {
            throw ChainNodeError.malformedResponse(method: method, field: "body", reason: "not JSON: \(NodeTransport.snippet(answer, limit: 80))")
        }
        if case .object = document, let error = document["Error"] {
            let message = error.stringValue ?? error.description
            if message.contains("lack of computing resources") { throw ChainNodeError.rateLimited(method: method, message: message) }
            throw ChainNodeError.nodeError(method: method, code: 0, message: message)
        }
        return document
    }

    /// The latest block (header and transactions).
    public func nowBlock(solidified: Bool = false) async throws(ChainNodeError) -> TronBlock {
        let path = solidified ? "/walletsolidity/getnowblock" : "/wallet/getnowblock"
        let value = try await post(path, .object([]))
        if value.isEmptyObject { throw .notFound(method: "getnowblock", what: "head block") }
        return try TronNodeJSON.parseBlock(value, method: "getnowblock", transactions: false)
    }

    /// The reference block and time to build a transaction against: the latest solidified block by default
    /// (tron-http-api.md §11.4: it cannot be forked out); expire transactions relative to `timestampMillis`.
    public func referenceBlock(solidified: Bool = true) async throws(ChainNodeError) -> (reference: TronReferenceBlock, timestampMillis: Int64) {
        let block = try await nowBlock(solidified: solidified)
        guard let reference = try? TronReferenceBlock(blockID: block.ref.hash) else {
            throw .malformedResponse(method: "getnowblock", field: "blockID", reason: "not 32 bytes")
        }
        return (reference, block.ref.timestampMillis)
    }

    /// `getnowblock` number.
    public func tipHeight() async throws(ChainNodeError) -> UInt64 {
        try await nowBlock().ref.number
    }

    /// One block by number; `{}` (not found) is an error.
    public func block(_ height: UInt64, transactions: Bool = true) async throws(ChainNodeError) -> TronBlock {
        let value = try await post("/wallet/getblockbynum", .object(["num": .int(height), "visible": .bool(false)]))
        if value.isEmptyObject { throw .notFound(method: "getblockbynum", what: "block \(height)") }
        let block = try TronNodeJSON.parseBlock(value, method: "getblockbynum", transactions: transactions)
        guard block.ref.number == height else {
            throw .malformedResponse(
                method: "getblockbynum",
                field: "block_header.raw_data.number",
                reason: "asked for \(height), got \(block.ref.number)"
            )
        }
        return block
    }

    /// The transaction infos of one block, in block order (`[]` for an empty block).
    public func transactionInfos(_ height: UInt64) async throws(ChainNodeError) -> [TronTransactionInfo] {
        let method = "gettransactioninfobyblocknum"
        let value = try await post("/wallet/gettransactioninfobyblocknum", .object(["num": .int(height), "visible": .bool(false)]))
        let r = ResponseReader(method: method)
        if value.isEmptyObject { return [] }
        let items = try r.array(value, "body")
        var infos: [TronTransactionInfo] = []
        infos.reserveCapacity(items.count)
        for (i, item) in items.enumerated() { infos.append(try TronNodeJSON.parseTransactionInfo(item, method: method, field: "[\(i)]")) }
        return infos
    }

    /// `getblockbynum` per height, `maxConcurrentRequests` at a time.
    public func blockRefs(_ heights: ClosedRange<UInt64>) async throws(ChainNodeError) -> [BlockRef] {
        let blocks = try await concurrentMap(Array(heights), limit: transport.options.maxConcurrentRequests) { h throws(ChainNodeError) in
            try await self.block(h, transactions: false).ref
        }
        try Self.checkContinuity(blocks)
        return blocks
    }

    static func checkContinuity(_ blocks: [BlockRef]) throws(ChainNodeError) {
        for (previous, next) in zip(blocks, blocks.dropFirst()) where next.parentHash != previous.hash {
            throw .reorgDuringScan(height: next.number, reason: "its parentHash is not the blockID of block \(previous.number)")
        }
    }

    /// Per block: `getblockbynum` (header, TRX transfers, `contractRet`) and `gettransactioninfobyblocknum`
    /// (Transfer logs, receipts), cross-checked; only successful transfers are reported.
    public func transfers(
        in heights: ClosedRange<UInt64>,
        to watched: WatchedAddresses,
        tokens: [AccountID],
        includeNative: Bool
    )
        async throws(ChainNodeError) -> TransferScan
    {
        let tokenSet = Set(tokens)
        let perBlock = try await concurrentMap(Array(heights), limit: max(1, transport.options.maxConcurrentRequests / 2)) {
            height throws(ChainNodeError) -> (BlockRef, [ObservedTransfer]) in
            async let blockResult = capture { () throws(ChainNodeError) in try await self.block(height) }
            async let infosResult = capture { () throws(ChainNodeError) in tokens.isEmpty ? [] : try await self.transactionInfos(height) }
            let block = try await blockResult.get()
            let infos = try await infosResult.get()
            var found = try TronNodeJSON.tokenTransfers(block: block, infos: infos, watched: watched, tokens: tokenSet)
            if includeNative { found += TronNodeJSON.nativeTransfers(block: block, watched: watched) }
            return (block.ref, found)
        }
        let blocks = perBlock.map(\.0)
        try Self.checkContinuity(blocks)
        return TransferScan(blocks: blocks, transfers: perBlock.flatMap(\.1))
    }

    /// `gettransactioninfobyid`; without an info, `gettransactionbyid` tells pending (in the node's pool) from unknown.
    public func transactionStatus(_ txHash: String) async throws(ChainNodeError) -> TransactionStatus {
        var id = txHash.lowercased()
        if id.hasPrefix("0x") { id.removeFirst(2) }
        guard id.utf8.count == 64, Hex.isHex(id) else {
            throw .invalidArgument("transaction id must be 64 hex digits")
        }
        let value = try await post("/wallet/gettransactioninfobyid", .object(["value": .string(id)]))
        if value.isEmptyObject {
            let tx = try await post("/wallet/gettransactionbyid", .object(["value": .string(id)]))
            if tx.isEmptyObject { return .notFound }
            let r = ResponseReader(method: "gettransactionbyid")
            guard try r.plainHex(tx["txID"], "txID", bytes: 32) == id else { throw r.fail("txID", "not the id asked for") }
            return .pending
        }
        let info = try TronNodeJSON.parseTransactionInfo(value, method: "gettransactioninfobyid")
        guard info.id == id else { throw .malformedResponse(method: "gettransactioninfobyid", field: "info.id", reason: "not the id asked for") }
        var reason: String?
        if !info.succeeded {
            reason = [info.receiptResult, info.resMessage].compactMap { $0 }.joined(separator: ": ")
            if reason!.isEmpty { reason = "FAILED" }
        }
        let receipt = TransactionReceipt(blockNumber: info.blockNumber, blockHash: nil, fee: BigUInt(info.fee), failureReason: reason)
        return info.succeeded ? .confirmed(receipt) : .failed(receipt)
    }

    /// TRON accounts have no nonce.
    public func nonce(of account: AccountID) async throws(ChainNodeError) -> AccountNonce {
        throw .unsupported("TRON accounts have no nonce (transactions are bound by reference block and expiration)")
    }

    /// `getaccount`: `{}` is an unactivated account (0), an absent `balance` is 0.
    public func nativeBalance(of account: AccountID) async throws(ChainNodeError) -> NativeBalance {
        let value = try await post("/wallet/getaccount", .object(["address": .string(account.tronAddress.hex), "visible": .bool(false)]))
        return try TronNodeJSON.parseAccount(value, account: account)
    }

    /// Runs a constant (read-only) contract call and returns `constant_result[0]` and `energy_used`; a revert or
    /// validation error is a node error with the decoded message.
    public func constantCall(
        owner: AccountID,
        contract: AccountID,
        selector: String,
        parameter: Data
    ) async throws(ChainNodeError)
        -> (result: Data, energyUsed: UInt64)
    {
        let method = "triggerconstantcontract \(selector)"
        let body = JSONValue.object([
            "owner_address": .string(owner.tronAddress.hex), "contract_address": .string(contract.tronAddress.hex),
            "function_selector": .string(selector), "parameter": .string(Hex.encode(parameter)), "visible": .bool(false),
        ])
        let value = try await post("/wallet/triggerconstantcontract", body)
        return try TronNodeJSON.parseConstantCall(value, method: method, contract: contract)
    }

    /// `triggerconstantcontract` `balanceOf(address)`, called as the account itself.
    public func tokenBalance(of account: AccountID, token: AccountID) async throws(ChainNodeError) -> BigUInt {
        let (data, _) = try await constantCall(
            owner: account,
            contract: token,
            selector: "balanceOf(address)",
            parameter: ABI.word(account.evmAddress)
        )
        guard data.count == 32 else {
            throw .malformedResponse(
                method: "triggerconstantcontract balanceOf(address)",
                field: "constant_result[0]",
                reason: "expected 32 bytes, found \(data.count)"
            )
        }
        return BigUInt(data)
    }

    /// `getchainparameters` as a dictionary (values absent in the answer are 0).
    public func chainParameters() async throws(ChainNodeError) -> [String: Int64] {
        try TronNodeJSON.parseChainParameters(try await post("/wallet/getchainparameters", .object([])))
    }

    /// Energy price and bandwidth price from `getchainparameters`; energy from a simulated `transfer` (token);
    /// the activation fee when a TRX transfer goes to an unactivated address.
    public func feeEstimate(_ query: FeeQuery) async throws(ChainNodeError) -> FeeEstimate {
        let parameters = try await chainParameters()
        guard let energyPrice = parameters["getEnergyFee"], let bandwidthPrice = parameters["getTransactionFee"], energyPrice >= 0,
            bandwidthPrice >= 0
        else {
            throw .malformedResponse(method: "getchainparameters", field: "getEnergyFee/getTransactionFee", reason: "missing")
        }
        let placeholder = try! TronReferenceBlock(blockID: String(repeating: "0", count: 64))
        switch query {
        case .native(let from, let to, let amount):
            guard amount <= BigUInt(Int64.max) else { throw .invalidArgument("TRX amount exceeds int64") }
            let raw = try! TronRawData.trxTransfer(
                from: from.tronAddress,
                to: to.tronAddress,
                amount: max(1, Int64(amount)),
                reference: placeholder,
                expiration: Int64.max / 2,
                timestamp: Int64.max / 2
            )
            let activated = try await nativeBalance(of: to).accountExists
            let activation =
                activated ? 0 : UInt64(parameters["getCreateNewAccountFeeInSystemContract"] ?? 0) + UInt64(parameters["getCreateAccountFee"] ?? 0)
            return .tron(
                TronFeeEstimate(
                    energyPrice: UInt64(energyPrice),
                    bandwidthPrice: UInt64(bandwidthPrice),
                    energy: 0,
                    bandwidthBytes: Self.bandwidthBytes(raw),
                    activationFee: activation,
                    feeLimit: 0
                )
            )
        case .token(let token, let from, let to, let amount):
            let parameter = ABI.word(to.evmAddress) + ABI.word(amount)
            let (_, energy) = try await constantCall(owner: from, contract: token, selector: "transfer(address,uint256)", parameter: parameter)
            let raw = try! TronRawData.trc20Transfer(
                from: from.tronAddress,
                token: token.tronAddress,
                to: to.tronAddress,
                amount: amount,
                feeLimit: 15_000_000_000,
                reference: placeholder,
                expiration: Int64.max / 2,
                timestamp: Int64.max / 2
            )
            let energyFee = energy * UInt64(energyPrice)
            return .tron(
                TronFeeEstimate(
                    energyPrice: UInt64(energyPrice),
                    bandwidthPrice: UInt64(bandwidthPrice),
                    energy: energy,
                    bandwidthBytes: Self.bandwidthBytes(raw),
                    activationFee: 0,
                    feeLimit: energyFee + energyFee / 2
                )
            )
        }
    }

    /// Bandwidth of a transaction with one signature: its serialised size + 64 (java-tron `MAX_RESULT_SIZE_IN_TX`).
    static func bandwidthBytes(_ raw: TronRawData) -> UInt64 {
        var tx = TronTransaction(rawData: raw)
        tx.signatures = [Data(count: 65)]
        return UInt64(tx.serialized().count + 64)
    }

    /// `broadcasthex` of the serialised signed transaction (the node parses exactly these bytes).
    public func broadcast(_ signed: Data) async throws(ChainNodeError) -> BroadcastResult {
        let transaction: TronTransaction
        do {
            transaction = try TronTransaction(serialized: signed)
        } catch {
            throw .invalidArgument("not a serialised TRON transaction: \(error)")
        }
        let body = JSONValue.object(["transaction": .string(Hex.encode(signed))]).encoded()
        let id = Hex.encode(transaction.txID)
        // Busy answers are retried with the same bytes: harmless, the txid is fixed.
        return try await transport.withRetries("broadcasthex") { () throws(ChainNodeError) in
            try TronNodeJSON.parseBroadcast(
                try await self.postOnce("/wallet/broadcasthex", body),
                expectedID: id,
                hexMessage: false,
                method: "broadcasthex"
            )
        }
    }

    /// `broadcasttransaction` of the transaction's JSON (java-tron re-serialises `raw_data`; the returned `txid` is
    /// compared with ours, so a JSON round trip that changed the bytes is caught).
    public func broadcastJSON(_ transaction: TronTransaction) async throws(ChainNodeError) -> BroadcastResult {
        let body = transaction.broadcastJSON(visible: false).encoded()
        let id = Hex.encode(transaction.txID)
        return try await transport.withRetries("broadcasttransaction") { () throws(ChainNodeError) in
            try TronNodeJSON.parseBroadcast(
                try await self.postOnce("/wallet/broadcasttransaction", body),
                expectedID: id,
                hexMessage: true,
                method: "broadcasttransaction"
            )
        }
    }

}

extension TronNodeJSON {
    /// `getaccount`: `{}` is an unactivated account (balance 0); an absent `balance` is 0.
    public static func parseAccount(_ value: JSONValue, account: AccountID, method: String = "getaccount") throws(ChainNodeError) -> NativeBalance {
        if value.isEmptyObject { return NativeBalance(amount: 0, accountExists: false) }
        let r = ResponseReader(method: method)
        _ = try r.object(value, "body")
        if let addressValue = value["address"], try address(addressValue, "address", r) != account {
            throw r.fail("address", "not the account asked for")
        }
        let balance = try r.int64(value["balance"], "balance", absentAs: 0)
        guard balance >= 0 else { throw r.fail("balance", "negative") }
        return NativeBalance(amount: BigUInt(balance), accountExists: true)
    }

    /// `triggerconstantcontract`: `constant_result[0]` and `energy_used`. A revert (`result.message`,
    /// `transaction.ret[0].ret == FAILED`) or a validation error (`result.code`) is a node error with the decoded message.
    public static func parseConstantCall(
        _ value: JSONValue,
        method: String,
        contract: AccountID
    ) throws(ChainNodeError) -> (result: Data, energyUsed: UInt64) {
        let r = ResponseReader(method: method)
        let result = try r.object(value["result"], "result")
        let message: String? = try result["message"].map { v throws(ChainNodeError) in
            let text = try r.string(v, "result.message")
            return (try? Hex.decode(text, allowPrefix: false)).map { String(decoding: $0, as: UTF8.self) } ?? text
        }
        if let code = result["code"] {
            let name = try r.string(code, "result.code")
            if name == "CONTRACT_VALIDATE_ERROR", message?.contains("not exist") == true || message?.contains("No contract") == true {
                throw .notFound(method: method, what: "contract \(ChainKind.tron.format(contract))")
            }
            throw .nodeError(method: method, code: 0, message: "\(name): \(message ?? "")")
        }
        guard try r.bool(result["result"], "result.result") else { throw r.fail("result.result", "false without an error code") }
        if let ret = value["transaction"]?["ret"]?[0]?["ret"]?.stringValue, ret == "FAILED" {
            throw .nodeError(method: method, code: 0, message: "the call reverted: \(message ?? "REVERT")")
        }
        if let message { throw .nodeError(method: method, code: 0, message: message) }
        let outputs = try r.array(value["constant_result"], "constant_result")
        guard let first = outputs.first else { throw r.fail("constant_result", "empty") }
        let hex = try r.plainHex(first, "constant_result[0]")
        let energy = try r.uint64(value["energy_used"], "energy_used", absentAs: 0)
        return ((try? Hex.decode(hex, allowPrefix: false)) ?? Data(), energy)
    }

    /// `getchainparameters` as a dictionary (a key without `value` is 0).
    public static func parseChainParameters(_ value: JSONValue) throws(ChainNodeError) -> [String: Int64] {
        let r = ResponseReader(method: "getchainparameters")
        var parameters: [String: Int64] = [:]
        for (i, item) in try r.array(value["chainParameter"], "chainParameter").enumerated() {
            _ = try r.object(item, "chainParameter[\(i)]")
            parameters[try r.string(item["key"], "chainParameter[\(i)].key")] = try r.int64(item["value"], "chainParameter[\(i)].value", absentAs: 0)
        }
        return parameters
    }

    /// A transaction as `gettransactionbyid` or a block prints it.
    public static func parseTransaction(_ value: JSONValue, method: String) throws(ChainNodeError) -> TronBlockTransaction {
        try parseBlockTransaction(value, field: "transaction", ResponseReader(method: method))
    }

    /// Maps a `Return` (§6.3): success, `DUP_TRANSACTION_ERROR` (already known), busy codes (retried by the caller's
    /// policy here: thrown as rate limits), and typed rejections.
    public static func parseBroadcast(
        _ value: JSONValue,
        expectedID: String,
        hexMessage: Bool,
        method: String
    ) throws(ChainNodeError) -> BroadcastResult {
        let r = ResponseReader(method: method)
        _ = try r.object(value, "body")
        let ok = try value["result"].map { v throws(ChainNodeError) in try r.bool(v, "result") } ?? false
        let code = try value["code"].map { v throws(ChainNodeError) in try r.string(v, "code") } ?? "SUCCESS"
        var message = try value["message"].map { v throws(ChainNodeError) in try r.string(v, "message") } ?? ""
        if hexMessage, let bytes = try? Hex.decode(message, allowPrefix: false) { message = String(decoding: bytes, as: UTF8.self) }
        if let txid = value["txid"] {
            let id = try r.plainHex(txid, "txid", bytes: 32)
            guard id == expectedID else { throw r.fail("txid", "\(id) is not the transaction's \(expectedID) (the node re-encoded other bytes)") }
        }
        if ok && code == "SUCCESS" { return BroadcastResult(txHash: expectedID, alreadyKnown: false) }
        switch code {
        case "DUP_TRANSACTION_ERROR": return BroadcastResult(txHash: expectedID, alreadyKnown: true)
        case "SIGERROR": throw .rejected(.invalidSignature(message))
        case "TAPOS_ERROR": throw .rejected(.referenceBlock(message))
        case "TRANSACTION_EXPIRATION_ERROR": throw .rejected(.expired(message))
        case "BANDWITH_ERROR": throw .rejected(.bandwidth(message))
        case "CONTRACT_VALIDATE_ERROR", "CONTRACT_EXE_ERROR":
            if message.lowercased().contains("balance is not sufficient") || message.lowercased().contains("insufficient") {
                throw .rejected(.insufficientFunds(message))
            }
            throw .rejected(.validation(message))
        case "SERVER_BUSY", "NO_CONNECTION", "NOT_ENOUGH_EFFECTIVE_CONNECTION", "BLOCK_UNSOLIDIFIED":
            throw .rateLimited(method: method, message: "\(code) \(message)")
        default:
            throw .rejected(.other(code: code, message: message))
        }
    }
}
