import BigInt
import ChainKit
import Foundation
import Synchronization

/// One answer of the TRON HTTP API: status and body (java-tron ends bodies with a newline).
struct TronHTTPAnswer: Error, Sendable {
    var status: Int
    var body: [UInt8]

    static func json(_ value: JSONValue) -> TronHTTPAnswer {
        var bytes = value.encoded()
        bytes.append(0x0a)
        return TronHTTPAnswer(status: 200, body: bytes)
    }

    static func error(_ exceptionClass: String, _ message: String) -> TronHTTPAnswer {
        json(.object(["Error": .string("class \(exceptionClass) : \(message)")]))
    }

    static let empty = TronHTTPAnswer(status: 200, body: [])

    /// Bytes encoded earlier, with java-tron's trailing newline.
    static func encoded(_ bytes: [UInt8]) -> TronHTTPAnswer {
        var body = bytes
        body.append(0x0a)
        return TronHTTPAnswer(status: 200, body: body)
    }
}

/// The java-tron HTTP API subset (`/wallet/*`, `/walletsolidity/*`), with java-tron's encodings: hex by default,
/// base58 and text with `visible`, defaults omitted, `{}` for not found (tron-http-api.md §13).
extension TronDevChain {
    static let parseException = "org.tron.core.services.http.JsonFormat$ParseException"
    static let illegalArgument = "java.lang.IllegalArgumentException"

    /// Handles `/wallet/<name>` or `/walletsolidity/<name>`.
    func handleHTTP(path: String, isPost: Bool, query: [String: String], body: [UInt8]) -> TronHTTPAnswer {
        let parts = path.split(separator: "/")
        guard parts.count == 2, parts[0] == "wallet" || parts[0] == "walletsolidity" else {
            return TronHTTPAnswer(status: 404, body: Array("{\"Error\":\"this API is unavailable due to config\"}\n".utf8))
        }
        let solid = parts[0] == "walletsolidity"
        let name = String(parts[1])
        // Parameters: the JSON body for POST, the query string for GET.
        var params = JSONValue.object([])
        if isPost, !body.allSatisfy({ $0 == 0x20 || $0 == 0x0a || $0 == 0x0d || $0 == 0x09 }) {
            do {
                params = try JSONValue.parse(body)
            } catch {
                return .error("com.alibaba.fastjson.JSONException", "\(error)")
            }
            guard case .object = params else { return .error("com.alibaba.fastjson.JSONException", "expected a JSON object") }
        } else if !isPost {
            params = .object(query.sorted { $0.key < $1.key }.map { JSONMember(key: $0.key, value: .string($0.value)) })
        }
        // getnowblock and getchainparameters read `visible` from the query string only.
        let visibleSource =
            (name == "getnowblock" || name == "getchainparameters")
            ? query["visible"].map(JSONValue.string) : (params["visible"] ?? query["visible"].map(JSONValue.string))
        let visible: Bool
        switch visibleSource {
        case .bool(let b)?: visible = b
        case .string(let s)?: visible = s.lowercased() == "true"
        default: visible = false
        }
        let postOnly: Set<String> = ["triggerconstantcontract", "estimateenergy", "triggersmartcontract"]
        if !isPost, postOnly.contains(name) { return .empty }
        switch (name, solid) {
        case ("getnowblock", _):
            return answer(state.withLock { s in s.blocks[Int(solid ? solidHeight(s) : s.head.number)] }, visible: visible)
        case ("getblockbynum", _):
            guard let num = int64Param(params["num"]) ?? (params["num"] == nil ? 0 : nil) else {
                return .error("java.lang.NumberFormatException", "For input string: \"\(params["num"]!.description)\"")
            }
            return answer(
                state.withLock { s in num >= 0 && num < s.blocks.count && (!solid || num <= solidHeight(s)) ? s.blocks[Int(num)] : nil },
                visible: visible
            )
        case ("getblockbyid", _):
            guard let value = params["value"]?.stringValue, let id = try? Hex.decode(value, allowPrefix: false), id.count == 32 else {
                return .json(.object([]))
            }
            return answer(
                state.withLock { s in
                    let number = Int(id.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
                    guard number < s.blocks.count, s.blocks[number].id == id, !solid || Int64(number) <= solidHeight(s) else { return nil }
                    return s.blocks[number]
                },
                visible: visible
            )
        case ("gettransactionbyid", _):
            guard let id = txIDParam(params["value"]) else { return .json(.object([])) }
            return .json(
                state.withLock { s in
                    if let (b, i) = s.located[id], !solid || Int64(b) <= solidHeight(s) {
                        let record = s.blocks[b].transactions[i]
                        return record.tx.nodeJSON(visible: visible, contractRet: record.result.contractRet)
                    }
                    if !solid, let tx = s.pending.first(where: { $0.txID == id }) { return tx.nodeJSON(visible: visible) }
                    return .object([])
                }
            )
        case ("gettransactioninfobyid", _):
            guard let id = txIDParam(params["value"]) else { return .json(.object([])) }
            return .json(
                state.withLock { s in
                    guard let (b, i) = s.located[id], !solid || Int64(b) <= solidHeight(s) else { return .object([]) }
                    return infoJSON(s.blocks[b].transactions[i], block: s.blocks[b], visible: visible)
                }
            )
        case ("gettransactioninfobyblocknum", _):
            guard let num = int64Param(params["num"]) ?? (params["num"] == nil ? 0 : nil) else {
                return .error("java.lang.NumberFormatException", "invalid num")
            }
            if num <= 0 { return .json(.object([])) }
            let block: TronBlockRecord? = state.withLock { s in
                num < s.blocks.count && (!solid || num <= solidHeight(s)) ? s.blocks[Int(num)] : nil
            }
            guard let block else { return .json(.array([])) }
            if !visible { return .encoded(block.encodedInfos) }
            return .json(.array(block.transactions.map { infoJSON($0, block: block, visible: visible) }))
        case ("broadcasttransaction", false):
            guard isPost else { return TronHTTPAnswer(status: 405, body: []) }
            let tx: TronTransaction
            do {
                tx = try TronTransaction(nodeJSON: params, visible: visible)
            } catch {
                return .error(Self.parseException, "\(error)")
            }
            let verdict = broadcast(tx)
            let txid = JSONValue.string(Hex.encode(tx.txID))
            if verdict.ok { return .json(.object(["result": .bool(true), "txid": txid])) }
            let message = visible ? verdict.message : Hex.encode(Array(verdict.message.utf8))
            return .json(.object(["code": .string(verdict.code), "txid": txid, "message": .string(message)]))
        case ("broadcasthex", false):
            guard isPost else { return TronHTTPAnswer(status: 405, body: []) }
            guard let hex = params["transaction"]?.stringValue, let bytes = try? Hex.decode(hex, allowPrefix: false) else {
                return .error(Self.illegalArgument, "transaction must be hex")
            }
            let tx: TronTransaction
            do {
                tx = try TronTransaction(serialized: bytes)
            } catch {
                return .json(
                    .object([
                        "result": .bool(false), "code": .string("OTHER_ERROR"), "message": .string("\(error)"), "transaction": .string(""),
                        "txid": .string(""),
                    ])
                )
            }
            let verdict = broadcast(tx)
            return .json(
                .object([
                    "result": .bool(verdict.ok), "code": .string(verdict.code), "message": .string(verdict.message),
                    "transaction": .string(tx.nodeJSON(visible: true).description), "txid": .string(Hex.encode(tx.txID)),
                ])
            )
        case ("getaccount", _):
            let account: AccountID
            switch addressParam(params["address"], visible: visible) {
            case .success(let a): account = a
            case .failure(let answer): return answer
            }
            return .json(
                state.withLock { s in
                    guard let record = s.accounts[account] else { return .object([]) }
                    var m: [JSONMember] = [JSONMember(key: "address", value: .string(visible ? account.tronAddress.base58 : account.tronAddress.hex))]
                    if record.balance != 0 { m.append(JSONMember(key: "balance", value: .int(record.balance))) }
                    m.append(JSONMember(key: "create_time", value: .int(record.createTime)))
                    if record.freeNetUsed != 0 && record.freeNetDay == s.head.timestamp / 86_400_000 {
                        m.append(JSONMember(key: "free_net_usage", value: .int(record.freeNetUsed)))
                    }
                    m.append(JSONMember(key: "account_resource", value: .object([])))
                    m.append(
                        JSONMember(
                            key: "frozenV2",
                            value: .array([.object([]), .object(["type": .string("ENERGY")]), .object(["type": .string("TRON_POWER")])])
                        )
                    )
                    return .object(m)
                }
            )
        case ("getaccountresource", false):
            let account: AccountID
            switch addressParam(params["address"], visible: visible) {
            case .success(let a): account = a
            case .failure(let answer): return answer
            }
            return .json(
                state.withLock { s in
                    guard let record = s.accounts[account] else { return .object([]) }
                    var m: [JSONMember] = []
                    let used = record.freeNetDay == s.head.timestamp / 86_400_000 ? record.freeNetUsed : 0
                    if used != 0 { m.append(JSONMember(key: "freeNetUsed", value: .int(used))) }
                    m.append(JSONMember(key: "freeNetLimit", value: .int(Self.freeBandwidthPerDay)))
                    m.append(JSONMember(key: "TotalNetLimit", value: .int(43_200_000_000 as Int64)))
                    m.append(JSONMember(key: "TotalNetWeight", value: .int(68_305_209_098 as Int64)))
                    m.append(JSONMember(key: "TotalEnergyLimit", value: .int(180_000_000_000 as Int64)))
                    m.append(JSONMember(key: "TotalEnergyWeight", value: .int(2_411_528_185 as Int64)))
                    return .object(m)
                }
            )
        case ("triggerconstantcontract", _), ("estimateenergy", _):
            return constantCall(params, visible: visible, estimate: name == "estimateenergy")
        case ("getchainparameters", false):
            let parameters: [(String, Int64)] = [
                ("getMaintenanceTimeInterval", 21_600_000), ("getAccountUpgradeCost", 9_999_000_000),
                ("getCreateAccountFee", Self.createAccountBandwidthFee),
                ("getTransactionFee", options.tronBandwidthPrice), ("getAssetIssueFee", 1_024_000_000), ("getWitnessPayPerBlock", 8_000_000),
                ("getWitnessStandbyAllowance", 115_200_000_000), ("getCreateNewAccountFeeInSystemContract", Self.createAccountFee),
                ("getCreateNewAccountBandwidthRate", 1), ("getAllowCreationOfContracts", 1), ("getRemoveThePowerOfTheGr", -1),
                ("getEnergyFee", options.tronEnergyPrice), ("getExchangeCreateFee", 1_024_000_000), ("getMaxCpuTimeOfOneTx", 80),
                ("getAllowPBFT", 0), ("getFreeNetLimit", Self.freeBandwidthPerDay), ("getMemoFee", 1_000_000), ("getMultiSignFee", 1_000_000),
                ("getMaxFeeLimit", Self.maxFeeLimit), ("getAllowDynamicEnergy", 1),
            ]
            return .json(
                .object([
                    "chainParameter": .array(
                        parameters.map { key, value in
                            value == 0 ? .object(["key": .string(key)]) : .object(["key": .string(key), "value": .int(value)])
                        }
                    )
                ])
            )
        case ("getnodeinfo", false):
            // The part of java-tron's node info that clients read: tronpy takes its reference block from
            // solidityBlock ("Num:N,ID:hex") and the head from block. No peers: a node of its own.
            let (head, solidBlock) = state.withLock { s in (s.head, s.blocks[Int(solidHeight(s))]) }
            return .json(
                .object([
                    "beginSyncNum": .int(head.number), "block": .string("Num:\(head.number),ID:\(Hex.encode(head.id))"),
                    "solidityBlock": .string("Num:\(solidBlock.number),ID:\(Hex.encode(solidBlock.id))"),
                    "currentConnectCount": .int(0), "activeConnectCount": .int(0), "passiveConnectCount": .int(0), "totalFlow": .int(0),
                    "peerList": .array([]),
                ]))
        default:
            return TronHTTPAnswer(status: 404, body: Array("{\"Error\":\"this API is unavailable due to config\"}\n".utf8))
        }
    }

    /// A block answer (`{}` when there is none); the visible=false form was encoded when the block was sealed.
    func answer(_ block: TronBlockRecord?, visible: Bool) -> TronHTTPAnswer {
        guard let block else { return .json(.object([])) }
        return visible ? .json(blockJSON(block, visible: true)) : .encoded(block.encodedBlock)
    }

    func solidHeight(_ s: TronState) -> Int64 { max(0, s.head.number - Int64(options.tronSolidDepth)) }

    func int64Param(_ value: JSONValue?) -> Int64? {
        guard let value else { return nil }
        if let n = value.int64Value { return n }
        if let s = value.stringValue { return Int64(s) }
        return nil
    }

    func txIDParam(_ value: JSONValue?) -> Data? {
        guard let s = value?.stringValue, let id = try? Hex.decode(s, allowPrefix: false), id.count == 32 else { return nil }
        return id
    }

    func addressParam(_ value: JSONValue?, visible: Bool) -> Result<AccountID, TronHTTPAnswer> {
        guard let text = value?.stringValue else { return .failure(.error(Self.illegalArgument, "address is required")) }
        if visible {
            guard let a = try? TronAddress(text) else { return .failure(.error(Self.parseException, "INVALID base58 String, \(text)")) }
            return .success(AccountID(a))
        }
        guard let a = try? TronAddress(hex: text) else { return .failure(.error(Self.parseException, "INVALID hex String, \(text)")) }
        return .success(AccountID(a))
    }

    /// `triggerconstantcontract` / `estimateenergy` on the USDT contract (tron-http-api.md §8).
    func constantCall(_ params: JSONValue, visible: Bool, estimate: Bool) -> TronHTTPAnswer {
        func returnError(_ code: String, _ message: String) -> TronHTTPAnswer {
            .json(.object(["result": .object(["code": .string(code), "message": .string(visible ? message : Hex.encode(Array(message.utf8)))])]))
        }
        let owner: AccountID
        switch addressParam(params["owner_address"], visible: visible) {
        case .success(let a): owner = a
        case .failure(let answer): return answer
        }
        let contract: AccountID
        switch addressParam(params["contract_address"], visible: visible) {
        case .success(let a): contract = a
        case .failure(let answer): return answer
        }
        guard contract == usdt else { return returnError("CONTRACT_VALIDATE_ERROR", "Smart contract is not exist.") }
        var calldata: Data
        if let selector = params["function_selector"]?.stringValue {
            guard let parameter = try? Hex.decode(params["parameter"]?.stringValue ?? "", allowPrefix: false) else {
                return returnError("OTHER_ERROR", "java.lang.IllegalArgumentException : parameter is not hex")
            }
            calldata = ABI.selector(selector) + parameter
        } else if let data = params["data"]?.stringValue, let bytes = try? Hex.decode(data, allowPrefix: false) {
            calldata = bytes
        } else {
            return returnError("CONTRACT_VALIDATE_ERROR", "function_selector or data is required")
        }
        let (output, energy, reverted): (Data, Int64, Bool) = state.withLock { s in
            let selector = Data(calldata.prefix(4))
            switch selector {
            case ERC20.balanceOfSelector where calldata.count >= 36:
                let who = AccountID(bytes: calldata[calldata.startIndex + 16..<calldata.startIndex + 36])!
                return (ABI.word(s.token[who] ?? 0), 935, false)
            case ERC20.decimalsSelector: return (ABI.word(BigUInt(Self.usdtDecimals)), 259, false)
            case ABI.selector("totalSupply()"): return (ABI.word(s.tokenSupply), 447, false)
            case ERC20.transferSelector:
                guard let transfer = ERC20.decodeTransfer(calldata), (s.token[owner] ?? 0) >= transfer.amount else {
                    return (Data(), Self.revertEnergy, true)
                }
                let to = AccountID(transfer.to)
                return (Data(count: 32), (s.token[to] ?? 0) == 0 && to != owner ? Self.transferEnergyNewHolder : Self.transferEnergyExisting, false)
            default: return (Data(), Self.revertEnergy, true)
            }
        }
        if estimate {
            if reverted { return returnError("CONTRACT_EXE_ERROR", "REVERT opcode executed") }
            return .json(.object(["result": .object(["result": .bool(true)]), "energy_required": .int(energy)]))
        }
        let (reference, time) = headReference()
        let call = TronTriggerSmartContract(owner: owner.tronAddress, contract: contract.tronAddress, data: calldata)
        let raw = try! TronRawData(
            refBlockBytes: reference.refBlockBytes,
            refBlockHash: reference.refBlockHash,
            expiration: time + 60_000,
            timestamp: time,
            contract: .triggerSmartContract(call)
        )
        guard case .object(var txMembers) = TronTransaction(rawData: raw).nodeJSON(visible: visible) else { return .empty }
        txMembers.insert(JSONMember(key: "visible", value: .bool(visible)), at: 0)
        txMembers.insert(JSONMember(key: "ret", value: .array([reverted ? .object(["ret": .string("FAILED")]) : .object([])])), at: 0)
        var result: [JSONMember] = [JSONMember(key: "result", value: .bool(true))]
        if reverted {
            let message = "REVERT opcode executed"
            result.append(JSONMember(key: "message", value: .string(visible ? message : Hex.encode(Array(message.utf8)))))
        }
        return .json(
            .object([
                "result": .object(result), "energy_used": .int(energy), "constant_result": .array([.string(Hex.encode(output))]),
                "transaction": .object(txMembers),
            ])
        )
    }

    // MARK: JSON shapes

    func blockJSON(_ b: TronBlockRecord, visible: Bool) -> JSONValue {
        var raw: [JSONMember] = []
        if b.number != 0 { raw.append(JSONMember(key: "number", value: .int(b.number))) }
        raw.append(JSONMember(key: "txTrieRoot", value: .string(Hex.encode(b.txTrieRoot))))
        raw.append(JSONMember(key: "witness_address", value: .string(visible ? b.witness.base58 : b.witness.hex)))
        raw.append(JSONMember(key: "parentHash", value: .string(Hex.encode(b.parentHash))))
        raw.append(JSONMember(key: "version", value: .int(Self.blockVersion)))
        raw.append(JSONMember(key: "timestamp", value: .int(b.timestamp)))
        var members: [JSONMember] = [
            JSONMember(key: "blockID", value: .string(Hex.encode(b.id))),
            JSONMember(
                key: "block_header",
                value: .object(["raw_data": .object(raw), "witness_signature": .string(Hex.encode(b.witnessSignature))])
            ),
        ]
        if !b.transactions.isEmpty {
            members.append(
                JSONMember(
                    key: "transactions",
                    value: .array(b.transactions.map { $0.tx.nodeJSON(visible: visible, contractRet: $0.result.contractRet) })
                )
            )
        }
        return .object(members)
    }

    func infoJSON(_ record: TronTxRecord, block: TronBlockRecord, visible: Bool) -> JSONValue {
        let r = record.result
        var m: [JSONMember] = [JSONMember(key: "id", value: .string(Hex.encode(record.id)))]
        if r.fee != 0 { m.append(JSONMember(key: "fee", value: .int(r.fee))) }
        m.append(JSONMember(key: "blockNumber", value: .int(block.number)))
        m.append(JSONMember(key: "blockTimeStamp", value: .int(block.timestamp)))
        m.append(JSONMember(key: "contractResult", value: .array([.string(Hex.encode(r.contractResult))])))
        if let c = r.contractAddress {
            m.append(JSONMember(key: "contract_address", value: .string(visible ? c.tronAddress.base58 : c.tronAddress.hex)))
        }
        var receipt: [JSONMember] = []
        if r.energyFee != 0 { receipt.append(JSONMember(key: "energy_fee", value: .int(r.energyFee))) }
        if r.energyUsageTotal != 0 { receipt.append(JSONMember(key: "energy_usage_total", value: .int(r.energyUsageTotal))) }
        if r.netUsage != 0 { receipt.append(JSONMember(key: "net_usage", value: .int(r.netUsage))) }
        if r.netFee != 0 { receipt.append(JSONMember(key: "net_fee", value: .int(r.netFee))) }
        if let result = r.receiptResult { receipt.append(JSONMember(key: "result", value: .string(result))) }
        m.append(JSONMember(key: "receipt", value: .object(receipt)))
        if !r.logs.isEmpty {
            m.append(
                JSONMember(
                    key: "log",
                    value: .array(
                        r.logs.map { log in
                            var l: [JSONMember] = [
                                JSONMember(key: "address", value: .string(visible ? log.address.tronAddress.base58 : log.address.hex)),
                                JSONMember(key: "topics", value: .array(log.topics.map { .string(Hex.encode($0)) })),
                            ]
                            if !log.data.isEmpty { l.append(JSONMember(key: "data", value: .string(Hex.encode(log.data)))) }
                            return .object(l)
                        }
                    )
                )
            )
        }
        if r.failed {
            m.append(JSONMember(key: "result", value: .string("FAILED")))
            if let message = r.resMessage {
                m.append(JSONMember(key: "resMessage", value: .string(visible ? message : Hex.encode(Array(message.utf8)))))
            }
        }
        return .object(m)
    }
}
