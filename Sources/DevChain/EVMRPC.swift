import BigInt
import ChainKit
import Foundation
import Synchronization

/// Ethereum JSON-RPC 2.0 over HTTP POST: single calls and batches, geth's error wording.
extension EVMDevChain {
    static let clientVersion = "devchain/v1/usdt-gateway"

    /// Answers one HTTP body; nil when there is nothing to send (only notifications).
    func handleRPC(body: [UInt8]) -> [UInt8]? {
        let document: JSONValue
        do {
            document = try JSONValue.parse(body)
        } catch {
            return Self.errorResponse(id: .null, RPCError(-32700, "parse error")).encoded()
        }
        switch document {
        case .array(let calls):
            if calls.isEmpty { return Self.errorResponse(id: .null, RPCError(-32600, "empty batch")).encoded() }
            let responses = calls.compactMap { dispatch($0) }
            if responses.isEmpty { return nil }
            var out: [UInt8] = [UInt8(ascii: "[")]
            out.reserveCapacity(responses.reduce(2) { $0 + $1.count + 1 })
            for (i, response) in responses.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                out.append(contentsOf: response)
            }
            out.append(UInt8(ascii: "]"))
            return out
        default:
            return dispatch(document)
        }
    }

    static func errorResponse(id: JSONValue, _ error: RPCError) -> JSONValue {
        var object: [JSONMember] = [JSONMember(key: "code", value: .int(error.code)), JSONMember(key: "message", value: .string(error.message))]
        if let data = error.data { object.append(JSONMember(key: "data", value: data)) }
        return .object(["jsonrpc": .string("2.0"), "id": id, "error": .object(object)])
    }

    /// One request object → its encoded response (nil for a notification).
    func dispatch(_ request: JSONValue) -> [UInt8]? {
        guard case .object = request else { return Self.errorResponse(id: .null, RPCError(-32600, "invalid request")).encoded() }
        let id = request["id"]
        switch id {
        case nil, .number?, .string?, .null?: break
        default: return Self.errorResponse(id: .null, RPCError(-32600, "invalid request")).encoded()
        }
        guard request["jsonrpc"]?.stringValue == "2.0", let method = request["method"]?.stringValue else {
            return Self.errorResponse(id: id ?? .null, RPCError(-32600, "invalid request")).encoded()
        }
        let params: [JSONValue]
        switch request["params"] {
        case nil, .null?: params = []
        case .array(let p)?: params = p
        default: return Self.errorResponse(id: id ?? .null, .invalidParams("non-array args")).encoded()
        }
        let result: [UInt8]
        do {
            result = try encodedCall(method, params)
        } catch {
            guard let id else { return nil }
            return Self.errorResponse(id: id, error).encoded()
        }
        guard let id else { return nil }
        var out = Array(#"{"jsonrpc":"2.0","id":"#.utf8)
        id.encode(into: &out)
        out.append(contentsOf: Array(#","result":"#.utf8))
        out.append(contentsOf: result)
        out.append(UInt8(ascii: "}"))
        return out
    }

    /// The encoded result of a call; blocks and logs come from the encodings cached when their block was sealed.
    func encodedCall(_ method: String, _ params: [JSONValue]) throws(RPCError) -> [UInt8] {
        switch method {
        case "eth_getBlockByNumber":
            let tag = try Self.param(params, 0)
            let full = params.count > 1 ? (params[1].boolValue ?? false) : false
            let block: EVMBlockRecord? = try state.withLock { s throws(RPCError) in
                guard let n = try Self.blockNumber(tag, 0, head: s.head.number) else { return nil }
                return s.blocks[Int(n)]
            }
            return block.map { full ? $0.encodedFull : $0.encodedHashes } ?? JSONLiteralBytes.null
        case "eth_getBlockByHash":
            let hash = try Self.hashParam(try Self.param(params, 0), 0)
            let full = params.count > 1 ? (params[1].boolValue ?? false) : false
            let block = state.withLock { s in s.blocks.last { $0.hash == hash } }
            return block.map { full ? $0.encodedFull : $0.encodedHashes } ?? JSONLiteralBytes.null
        case "eth_getLogs":
            return try getLogs(params)
        default:
            return try call(method, params).encoded()
        }
    }

    // MARK: Parameter parsing (geth's wording)

    static func param(_ params: [JSONValue], _ i: Int) throws(RPCError) -> JSONValue {
        guard i < params.count else { throw .invalidParams("missing value for required argument \(i)") }
        return params[i]
    }

    static func quantityParam(_ value: JSONValue, _ i: Int) throws(RPCError) -> BigUInt {
        guard let s = value.stringValue else {
            throw .invalidParams("invalid argument \(i): json: cannot unmarshal non-string into Go value of type hexutil.Big")
        }
        guard s.hasPrefix("0x") else { throw .invalidParams("invalid argument \(i): hex string without 0x prefix") }
        if s.count > 3, s.dropFirst(2).hasPrefix("0") { throw .invalidParams("invalid argument \(i): hex number with leading zero digits") }
        guard let q = EthHex.parseQuantity(s) else { throw .invalidParams("invalid argument \(i): invalid hex string") }
        return q
    }

    static func addressParam(_ value: JSONValue, _ i: Int) throws(RPCError) -> AccountID {
        guard let s = value.stringValue, let a = EthHex.parseAddress(s) else {
            throw .invalidParams("invalid argument \(i): hex string has length \(value.stringValue?.count ?? 0), want 40 for common.Address")
        }
        return a
    }

    static func hashParam(_ value: JSONValue, _ i: Int) throws(RPCError) -> Data {
        guard let s = value.stringValue, let h = EthHex.parseHash(s), let d = EthHex.parseData(h) else {
            throw .invalidParams("invalid argument \(i): hex string has length \(value.stringValue?.count ?? 0), want 64 for common.Hash")
        }
        return d
    }

    static func dataParam(_ value: JSONValue?, _ name: String) throws(RPCError) -> Data {
        guard let value, !value.isNull else { return Data() }
        guard let s = value.stringValue, let d = EthHex.parseData(s) else { throw .invalidParams("invalid argument 0: \(name): invalid hex data") }
        return d
    }

    /// A block tag or number; the answer is a height (nil = above the head).
    static func blockNumber(_ value: JSONValue, _ i: Int, head: UInt64) throws(RPCError) -> UInt64? {
        switch value.stringValue {
        case "latest", "pending", "safe", "finalized": return head
        case "earliest": return 0
        default:
            let n = try quantityParam(value, i)
            guard n <= BigUInt(UInt64.max) else { throw .invalidParams("invalid argument \(i): block number larger than 64 bits") }
            let number = UInt64(n)
            return number <= head ? number : nil
        }
    }

    /// State queries only have the head's state: a past block number is refused like a pruned node does.
    func requireHeadState(_ value: JSONValue?, _ i: Int, head: UInt64) throws(RPCError) {
        guard let value else { return }
        if value.stringValue == "pending" || value.stringValue == "latest" || value.stringValue == "safe" || value.stringValue == "finalized" {
            return
        }
        if case .object = value { return }
        guard let n = try Self.blockNumber(value, i, head: head) else { throw .server("header not found") }
        if n != head { throw .server("missing trie node (devchain keeps only the latest state)") }
    }

    // MARK: Methods

    func call(_ method: String, _ params: [JSONValue]) throws(RPCError) -> JSONValue {
        switch method {
        case "web3_clientVersion": return .string(Self.clientVersion)
        case "net_version": return .string(String(chainID))
        case "eth_chainId": return .string(EthHex.quantity(chainID))
        case "eth_syncing": return .bool(false)
        case "eth_accounts": return .array([])
        case "eth_blockNumber": return .string(EthHex.quantity(height))
        case "eth_gasPrice": return .string(EthHex.quantity(options.evmBaseFee + options.evmPriorityFee))
        case "eth_maxPriorityFeePerGas": return .string(EthHex.quantity(options.evmPriorityFee))
        case "eth_feeHistory": return try feeHistory(params)
        case "eth_getBalance":
            let account = try Self.addressParam(try Self.param(params, 0), 0)
            try requireHeadState(params.count > 1 ? params[1] : nil, 1, head: height)
            return .string(EthHex.quantity(balance(of: account)))
        case "eth_getTransactionCount":
            let account = try Self.addressParam(try Self.param(params, 0), 0)
            let tag = params.count > 1 ? params[1] : JSONValue.string("latest")
            try requireHeadState(tag, 1, head: height)
            let count = state.withLock { s in
                let mined = s.accounts[account]?.nonce ?? 0
                return tag.stringValue == "pending" ? mined + UInt64(s.pending.count(from: account)) : mined
            }
            return .string(EthHex.quantity(count))
        case "eth_getCode":
            let account = try Self.addressParam(try Self.param(params, 0), 0)
            return .string(account == usdt ? "0x6080604052" : "0x")
        case "eth_call": return .string(EthHex.data(try ethCall(params)))
        case "eth_estimateGas": return .string(EthHex.quantity(try estimateGas(params)))
        case "eth_sendRawTransaction":
            let raw = try Self.dataParam(try Self.param(params, 0), "raw")
            return .string(EthHex.data(try submitRaw(raw)))
        case "eth_getTransactionByHash":
            let hash = try Self.hashParam(try Self.param(params, 0), 0)
            return state.withLock { s -> JSONValue in
                if let (b, i) = s.located[hash] { return Self.txJSON(s.blocks[b].transactions[i], block: s.blocks[b], index: i) }
                if let tx = s.pending.record(hash: hash) { return Self.txJSON(tx, block: nil, index: 0) }
                return .null
            }
        case "eth_getTransactionReceipt":
            let hash = try Self.hashParam(try Self.param(params, 0), 0)
            return state.withLock { s -> JSONValue in
                guard let (b, i) = s.located[hash] else { return .null }
                return Self.receiptJSON(s.blocks[b], index: i)
            }
        default:
            throw RPCError(-32601, "the method \(method) does not exist/is not available")
        }
    }

    func feeHistory(_ params: [JSONValue]) throws(RPCError) -> JSONValue {
        let countValue = try Self.param(params, 0)
        let count: UInt64
        if let n = countValue.int64Value, n >= 0 { count = UInt64(n) } else { count = UInt64(try Self.quantityParam(countValue, 0)) }
        let head = height
        guard let newest = try Self.blockNumber(try Self.param(params, 1), 1, head: head) else { throw .server("header not found") }
        let blocks = max(1, min(count, 1024, newest + 1))
        let oldest = newest + 1 - blocks
        let percentiles = params.count > 2 ? (params[2].arrayValue ?? []) : []
        let records = state.withLock { s in Array(s.blocks[Int(oldest)...Int(newest)]) }
        var members: [JSONMember] = [
            JSONMember(key: "oldestBlock", value: .string(EthHex.quantity(oldest))),
            JSONMember(key: "baseFeePerGas", value: .array((records.map(\.baseFee) + [options.evmBaseFee]).map { .string(EthHex.quantity($0)) })),
            JSONMember(key: "gasUsedRatio", value: .array(records.map { .number(String(Double($0.gasUsed) / 30_000_000)) })),
        ]
        if !percentiles.isEmpty {
            members.append(
                JSONMember(
                    key: "reward",
                    value: .array(records.map { _ in .array(percentiles.map { _ in .string(EthHex.quantity(options.evmPriorityFee)) }) })
                )
            )
        }
        return .object(members)
    }

    /// What a call to the USDT contract returns (ERC20 views and a simulated `transfer`); other addresses return empty data.
    func ethCall(_ params: [JSONValue]) throws(RPCError) -> Data {
        let callObject = try Self.param(params, 0)
        guard case .object = callObject else { throw .invalidParams("invalid argument 0: expected a transaction call object") }
        try requireHeadState(params.count > 1 ? params[1] : nil, 1, head: height)
        guard let toValue = callObject["to"], !toValue.isNull else { return Data() }
        let to = try Self.addressParam(toValue, 0)
        let data = try Self.dataParam(callObject["data"] ?? callObject["input"], "data")
        let from = try callObject["from"].map { v throws(RPCError) in try Self.addressParam(v, 0) } ?? AccountID(EVMAddress.zero)
        guard to == usdt else { return Data() }
        return try tokenCall(from: from, data: data).output
    }

    /// Executes a read-only USDT call: (return data, gas beyond intrinsic).
    func tokenCall(from: AccountID, data: Data) throws(RPCError) -> (output: Data, gas: UInt64) {
        let selector = data.prefix(4)
        func revert(_ reason: String) -> RPCError {
            let encoded =
                Data([0x08, 0xc3, 0x79, 0xa0]) + ABI.word(BigUInt(32)) + ABI.word(BigUInt(reason.utf8.count))
                + Data(reason.utf8) + Data(count: (32 - reason.utf8.count % 32) % 32)
            return RPCError(3, "execution reverted: \(reason)", data: .string(EthHex.data(encoded)))
        }
        switch Data(selector) {
        case ERC20.balanceOfSelector:
            guard data.count >= 36, let owner = AccountID(bytes: data[data.startIndex + 16..<data.startIndex + 36]) else {
                throw revert("bad calldata")
            }
            return (ABI.word(usdtBalance(of: owner)), 2_600)
        case ERC20.decimalsSelector:
            return (ABI.word(BigUInt(Self.usdtDecimals)), 300)
        case ABI.selector("totalSupply()"):
            return (ABI.word(state.withLock { $0.tokenSupply }), 2_400)
        case ABI.selector("symbol()"), ABI.selector("name()"):
            let text = Data(selector) == ABI.selector("symbol()") ? "USDT" : "Tether USD"
            return (ABI.word(BigUInt(32)) + ABI.word(BigUInt(text.utf8.count)) + Data(text.utf8) + Data(count: 32 - text.utf8.count), 1_000)
        case ERC20.transferSelector:
            guard let transfer = ERC20.decodeTransfer(data) else { throw revert("bad calldata") }
            let (have, recipient) = state.withLock { s in (s.token[from] ?? 0, s.token[AccountID(transfer.to)] ?? 0) }
            guard have >= transfer.amount else { throw revert("ERC20: transfer amount exceeds balance") }
            return (ABI.word(BigUInt(1)), recipient == 0 ? Self.tokenTransferGasNewHolder : Self.tokenTransferGasExisting)
        default:
            throw RPCError(3, "execution reverted")
        }
    }

    func estimateGas(_ params: [JSONValue]) throws(RPCError) -> UInt64 {
        let callObject = try Self.param(params, 0)
        guard case .object = callObject else { throw .invalidParams("invalid argument 0: expected a transaction call object") }
        let from = try callObject["from"].map { v throws(RPCError) in try Self.addressParam(v, 0) } ?? AccountID(EVMAddress.zero)
        let data = try Self.dataParam(callObject["data"] ?? callObject["input"], "data")
        let value = try callObject["value"].map { v throws(RPCError) in try Self.quantityParam(v, 0) } ?? 0
        if value > 0, balance(of: from) < value { throw .server("insufficient funds for transfer") }
        guard let toValue = callObject["to"], !toValue.isNull else { throw .server("contract creation is not supported by devchain") }
        let to = try Self.addressParam(toValue, 0)
        let intrinsic = Self.intrinsicGas(data)
        guard to == usdt else { return intrinsic }
        if value > 0 { throw RPCError(3, "execution reverted") }
        return intrinsic + (try tokenCall(from: from, data: data).gas)
    }

    func getLogs(_ params: [JSONValue]) throws(RPCError) -> [UInt8] {
        let filter = try Self.param(params, 0)
        guard case .object = filter else { throw .invalidParams("invalid argument 0: expected a filter object") }
        var addresses: Set<AccountID>?
        switch filter["address"] {
        case nil, .null?: addresses = nil
        case .string?: addresses = [try Self.addressParam(filter["address"]!, 0)]
        case .array(let items)?:
            var set = Set<AccountID>()
            for item in items { set.insert(try Self.addressParam(item, 0)) }
            addresses = set
        default: throw .invalidParams("invalid argument 0: invalid address")
        }
        var topicFilters: [Set<Data>?] = []
        for (i, t) in (filter["topics"]?.arrayValue ?? []).enumerated() {
            switch t {
            case .null: topicFilters.append(nil)
            case .string: topicFilters.append([try Self.hashParam(t, i)])
            case .array(let options):
                var set = Set<Data>()
                for o in options { set.insert(try Self.hashParam(o, i)) }
                topicFilters.append(set)
            default: throw .invalidParams("invalid argument 0: invalid topic")
            }
        }
        let (records, maxRange, maxResults): ([EVMBlockRecord], UInt64?, Int) = try state.withLock { s throws(RPCError) in
            let head = s.head.number
            if let blockHash = filter["blockHash"], !blockHash.isNull {
                let hash = try Self.hashParam(blockHash, 0)
                guard let block = s.blocks.last(where: { $0.hash == hash }) else { throw .server("unknown block") }
                return ([block], nil, s.maxLogResults)
            }
            let from = try filter["fromBlock"].map { v throws(RPCError) in try Self.blockNumber(v, 0, head: head) } ?? head
            let to = try filter["toBlock"].map { v throws(RPCError) in try Self.blockNumber(v, 0, head: head) } ?? head
            guard let from else { return ([], nil, s.maxLogResults) }
            let upper = min(to ?? head, head)
            guard from <= upper else {
                if to != nil, from > to! { throw .server("invalid block range params") }
                return ([], nil, s.maxLogResults)
            }
            if let limit = s.maxLogRange, upper - from + 1 > limit {
                throw RPCError(-32005, "block range is too wide", data: .object(["maxBlockRange": .int(limit)]))
            }
            return (Array(s.blocks[Int(from)...Int(upper)]), s.maxLogRange, s.maxLogResults)
        }
        _ = maxRange
        var out: [UInt8] = [UInt8(ascii: "[")]
        var count = 0
        for block in records {
            for log in block.encodedLogs {
                if let addresses, !addresses.contains(log.address) { continue }
                var match = true
                for (i, allowed) in topicFilters.enumerated() {
                    guard let allowed else { continue }
                    if i >= log.topics.count || !allowed.contains(log.topics[i]) {
                        match = false
                        break
                    }
                }
                guard match else { continue }
                if count > 0 { out.append(UInt8(ascii: ",")) }
                out.append(contentsOf: log.json)
                count += 1
                if count > maxResults { throw RPCError(-32005, "query returned more than \(maxResults) results") }
            }
        }
        out.append(UInt8(ascii: "]"))
        return out
    }

    // MARK: JSON shapes

    static func blockJSON(_ b: EVMBlockRecord, full: Bool) -> JSONValue {
        let txs: [JSONValue] =
            full ? b.transactions.enumerated().map { Self.txJSON($1, block: b, index: $0) } : b.transactions.map { .string(EthHex.data($0.hash)) }
        let zeroHash = JSONValue.string(EthHex.data(Data(count: 32)))
        return .object([
            "number": .string(EthHex.quantity(b.number)), "hash": .string(EthHex.data(b.hash)), "parentHash": .string(EthHex.data(b.parentHash)),
            "nonce": .string("0x0000000000000000"), "sha3Uncles": .string("0x1dcc4de8dec75d7aab85b567b6ccd41ad312451b948a7413f0a142fd40d49347"),
            "logsBloom": .string(EthHex.data(b.logsBloom)), "transactionsRoot": .string(EthHex.data(b.transactionsRoot)),
            "stateRoot": .string(EthHex.data(b.stateRoot)), "receiptsRoot": zeroHash,
            "miner": .string(EthHex.data(Data(count: 20))), "difficulty": .string("0x0"), "totalDifficulty": .string("0x0"),
            "extraData": .string(EthHex.data(b.extraData)), "size": .string(EthHex.quantity(UInt64(600 + b.transactions.count * 110))),
            "gasLimit": .string(EthHex.quantity(UInt64(30_000_000))), "gasUsed": .string(EthHex.quantity(b.gasUsed)),
            "timestamp": .string(EthHex.quantity(b.timestamp)), "transactions": .array(txs), "uncles": .array([]),
            "baseFeePerGas": .string(EthHex.quantity(b.baseFee)), "mixHash": zeroHash,
        ])
    }

    static func txJSON(_ tx: EVMTxRecord, block: EVMBlockRecord?, index: Int) -> JSONValue {
        var m: [JSONMember] = []
        func add(_ k: String, _ v: JSONValue) { m.append(JSONMember(key: k, value: v)) }
        add("blockHash", block.map { .string(EthHex.data($0.hash)) } ?? .null)
        add("blockNumber", block.map { .string(EthHex.quantity($0.number)) } ?? .null)
        add("from", .string(EthHex.data(tx.from.bytes)))
        add("gas", .string(EthHex.quantity(tx.transaction.gasLimit)))
        add("hash", .string(EthHex.data(tx.hash)))
        add("input", .string(EthHex.data(tx.transaction.data)))
        add("nonce", .string(EthHex.quantity(tx.transaction.nonce)))
        add("to", tx.to.map { .string(EthHex.data($0.bytes)) } ?? .null)
        add("transactionIndex", block == nil ? .null : .string(EthHex.quantity(UInt64(index))))
        add("value", .string(EthHex.quantity(tx.transaction.value)))
        add("type", .string(tx.typeHex))
        switch tx.transaction {
        case .legacy(let t):
            add("gasPrice", .string(EthHex.quantity(t.gasPrice)))
            if let c = t.chainID { add("chainId", .string(EthHex.quantity(c))) }
        case .eip1559(let t):
            add("gasPrice", .string(EthHex.quantity(block.map { tx.effectiveGasPrice(baseFee: $0.baseFee) } ?? t.maxFeePerGas)))
            add("maxFeePerGas", .string(EthHex.quantity(t.maxFeePerGas)))
            add("maxPriorityFeePerGas", .string(EthHex.quantity(t.maxPriorityFeePerGas)))
            add("accessList", .array([]))
            add("chainId", .string(EthHex.quantity(t.chainID)))
            add("yParity", .string(EthHex.quantity(UInt64(tx.signed.signature.recoveryID & 1))))
        }
        add("v", .string(EthHex.quantity(tx.signed.v)))
        add("r", .string(EthHex.quantity(tx.signed.r)))
        add("s", .string(EthHex.quantity(tx.signed.s)))
        return .object(m)
    }

    static func receiptJSON(_ b: EVMBlockRecord, index: Int) -> JSONValue {
        let tx = b.transactions[index]
        let r = b.receipts[index]
        var bloom = [UInt8](repeating: 0, count: 256)
        for log in r.logs { Self.addToBloom(&bloom, log) }
        return .object([
            "transactionHash": .string(EthHex.data(tx.hash)), "transactionIndex": .string(EthHex.quantity(UInt64(index))),
            "blockHash": .string(EthHex.data(b.hash)), "blockNumber": .string(EthHex.quantity(b.number)),
            "from": .string(EthHex.data(tx.from.bytes)), "to": tx.to.map { .string(EthHex.data($0.bytes)) } ?? .null,
            "cumulativeGasUsed": .string(EthHex.quantity(r.cumulativeGasUsed)), "gasUsed": .string(EthHex.quantity(r.gasUsed)),
            "contractAddress": .null,
            "logs": .array(r.logs.enumerated().map { Self.logJSON($1, block: b, txIndex: index, logIndex: r.firstLogIndex + $0) }),
            "logsBloom": .string(EthHex.data(bloom)), "type": .string(tx.typeHex),
            "status": .string(r.status ? "0x1" : "0x0"), "effectiveGasPrice": .string(EthHex.quantity(r.effectiveGasPrice)),
        ])
    }

    static func logJSON(_ log: EVMLogRecord, block: EVMBlockRecord, txIndex: Int, logIndex: Int) -> JSONValue {
        .object([
            "address": .string(EthHex.data(log.address.bytes)), "topics": .array(log.topics.map { .string(EthHex.data($0)) }),
            "data": .string(EthHex.data(log.data)), "blockNumber": .string(EthHex.quantity(block.number)),
            "transactionHash": .string(EthHex.data(block.transactions[txIndex].hash)), "transactionIndex": .string(EthHex.quantity(UInt64(txIndex))),
            "blockHash": .string(EthHex.data(block.hash)), "logIndex": .string(EthHex.quantity(UInt64(logIndex))), "removed": .bool(false),
        ])
    }
}

enum JSONLiteralBytes {
    static let null = Array("null".utf8)
}
