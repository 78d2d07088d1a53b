import Foundation

/// java-tron's JSON form of transactions (`Util.printTransactionToJSON`, `Util.packTransaction`): what
/// `/wallet/broadcasttransaction` takes and what blocks and `gettransactionbyid` print (tron-http-api.md §4, §6.1).
extension TronContract {
    /// The `ContractType` name (`TransferContract`, `TriggerSmartContract`, or `ContractType<n>` for others).
    public var typeName: String {
        switch self {
        case .transfer: return "TransferContract"
        case .triggerSmartContract: return "TriggerSmartContract"
        case .other(let type, _, _): return "ContractType\(type)"
        }
    }

    /// `parameter.value` as java-tron prints it: default-valued fields omitted, addresses hex `41…` or base58 when `visible`.
    public func valueJSON(visible: Bool) -> JSONValue {
        func address(_ a: TronAddress) -> JSONValue { .string(visible ? a.base58 : a.hex) }
        var members: [JSONMember] = []
        switch self {
        case .transfer(let c):
            if c.amount != 0 { members.append(JSONMember(key: "amount", value: .int(c.amount))) }
            members.append(JSONMember(key: "owner_address", value: address(c.owner)))
            members.append(JSONMember(key: "to_address", value: address(c.to)))
        case .triggerSmartContract(let c):
            if !c.data.isEmpty { members.append(JSONMember(key: "data", value: .string(Hex.encode(c.data)))) }
            members.append(JSONMember(key: "owner_address", value: address(c.owner)))
            members.append(JSONMember(key: "contract_address", value: address(c.contract)))
            if c.callValue != 0 { members.append(JSONMember(key: "call_value", value: .int(c.callValue))) }
            if c.callTokenValue != 0 { members.append(JSONMember(key: "call_token_value", value: .int(c.callTokenValue))) }
            if c.tokenID != 0 { members.append(JSONMember(key: "token_id", value: .int(c.tokenID))) }
        case .other(_, _, let value):
            members.append(JSONMember(key: "value_hex", value: .string(Hex.encode(value))))
        }
        return .object(members)
    }
}

extension TronRawData {
    /// `raw_data` as java-tron prints it (defaults omitted; `data` = memo hex; `fee_limit`/`timestamp` only when set).
    public func nodeJSON(visible: Bool) -> JSONValue {
        var contract: [JSONMember] = [
            JSONMember(
                key: "parameter",
                value: .object(["value": self.contract.valueJSON(visible: visible), "type_url": .string(self.contract.typeURL)])
            ),
            JSONMember(key: "type", value: .string(self.contract.typeName)),
        ]
        if permissionID != 0 { contract.append(JSONMember(key: "Permission_id", value: .int(permissionID))) }
        var members: [JSONMember] = [JSONMember(key: "contract", value: .array([.object(contract)]))]
        members.append(JSONMember(key: "ref_block_bytes", value: .string(Hex.encode(refBlockBytes))))
        members.append(JSONMember(key: "ref_block_hash", value: .string(Hex.encode(refBlockHash))))
        members.append(JSONMember(key: "expiration", value: .int(expiration)))
        if !memo.isEmpty { members.append(JSONMember(key: "data", value: .string(Hex.encode(memo)))) }
        if feeLimit != 0 { members.append(JSONMember(key: "fee_limit", value: .int(feeLimit))) }
        if timestamp != 0 { members.append(JSONMember(key: "timestamp", value: .int(timestamp))) }
        return .object(members)
    }

    /// Re-encodes a `raw_data` JSON object the way java-tron's `packTransaction` does: the fields are read, then the
    /// protobuf is serialised canonically (so zero values written explicitly change nothing). Only TransferContract
    /// and TriggerSmartContract are understood. Addresses must be base58 when `visible`, `41…` hex otherwise.
    public init(nodeJSON raw: JSONValue, visible: Bool) throws(TronTransactionError) {
        guard case .object = raw else { throw .invalidField("raw_data must be an object") }
        func hexField(_ value: JSONValue?, _ name: String) throws(TronTransactionError) -> Data {
            guard let value, !value.isNull else { return Data() }
            guard let s = value.stringValue, let d = try? Hex.decode(s, allowPrefix: false) else {
                throw .invalidField("\(name): INVALID hex String")
            }
            return d
        }
        func int64Field(_ value: JSONValue?, _ name: String) throws(TronTransactionError) -> Int64 {
            guard let value, !value.isNull else { return 0 }
            if let n = value.int64Value { return n }
            if let s = value.stringValue, let n = Int64(s) { return n }
            throw .invalidField("\(name): not an integer")
        }
        func addressField(_ value: JSONValue?, _ name: String) throws(TronTransactionError) -> TronAddress {
            guard let s = value?.stringValue else { throw .invalidField("\(name) missing") }
            do {
                return visible ? try TronAddress(s) : try TronAddress(hex: s)
            } catch {
                throw .invalidField("\(name): INVALID \(visible ? "base58" : "hex") String")
            }
        }
        guard let contracts = raw["contract"]?.arrayValue, contracts.count == 1, case .object = contracts[0] else {
            throw .invalidField("No contract!")
        }
        let entry = contracts[0]
        let value = entry["parameter"]?["value"] ?? .null
        let contract: TronContract
        switch entry["type"]?.stringValue {
        case "TransferContract":
            contract = .transfer(
                TronTransferContract(
                    owner: try addressField(value["owner_address"], "owner_address"),
                    to: try addressField(value["to_address"], "to_address"),
                    amount: try int64Field(value["amount"], "amount")
                )
            )
        case "TriggerSmartContract":
            contract = .triggerSmartContract(
                TronTriggerSmartContract(
                    owner: try addressField(value["owner_address"], "owner_address"),
                    contract: try addressField(value["contract_address"], "contract_address"),
                    callValue: try int64Field(value["call_value"], "call_value"),
                    data: try hexField(value["data"], "data"),
                    callTokenValue: try int64Field(value["call_token_value"], "call_token_value"),
                    tokenID: try int64Field(value["token_id"], "token_id")
                )
            )
        default:
            throw .invalidField("No contract!")
        }
        try self.init(
            refBlockBytes: try hexField(raw["ref_block_bytes"], "ref_block_bytes"),
            refBlockHash: try hexField(raw["ref_block_hash"], "ref_block_hash"),
            expiration: try int64Field(raw["expiration"], "expiration"),
            timestamp: try int64Field(raw["timestamp"], "timestamp"),
            feeLimit: try int64Field(raw["fee_limit"], "fee_limit"),
            contract: contract,
            permissionID: Int32(truncatingIfNeeded: try int64Field(entry["Permission_id"], "Permission_id")),
            memo: try hexField(raw["data"], "data")
        )
    }
}

extension TronTransaction {
    /// The transaction as java-tron prints it: `ret` (when `contractRet` is given, as in blocks), `signature`,
    /// `txID`, `raw_data`, `raw_data_hex`.
    public func nodeJSON(visible: Bool, contractRet: String? = nil) -> JSONValue {
        var members: [JSONMember] = []
        if let contractRet { members.append(JSONMember(key: "ret", value: .array([.object(["contractRet": .string(contractRet)])]))) }
        if !signatures.isEmpty { members.append(JSONMember(key: "signature", value: .array(signatures.map { .string(Hex.encode($0)) }))) }
        members.append(JSONMember(key: "txID", value: .string(Hex.encode(txID))))
        members.append(JSONMember(key: "raw_data", value: rawData.nodeJSON(visible: visible)))
        members.append(JSONMember(key: "raw_data_hex", value: .string(Hex.encode(rawDataBytes))))
        return .object(members)
    }

    /// The body of `/wallet/broadcasttransaction`: the transaction JSON plus `visible`.
    public func broadcastJSON(visible: Bool = false) -> JSONValue {
        guard case .object(var members) = nodeJSON(visible: visible) else { return .null }
        members.insert(JSONMember(key: "visible", value: .bool(visible)), at: 0)
        return .object(members)
    }

    /// Parses a broadcast body like java-tron: `raw_data` is re-serialised (`txID`/`raw_data_hex` are ignored),
    /// signatures are taken as given.
    public init(nodeJSON json: JSONValue, visible: Bool) throws(TronTransactionError) {
        guard let raw = json["raw_data"] else { throw .invalidField("raw_data missing") }
        let rawData = try TronRawData(nodeJSON: raw, visible: visible)
        var signatures: [Data] = []
        for s in json["signature"]?.arrayValue ?? [] {
            guard let text = s.stringValue, let bytes = try? Hex.decode(text, allowPrefix: false) else {
                throw .invalidField("signature: INVALID hex String")
            }
            signatures.append(bytes)
        }
        self.init(rawData: rawData)
        self.signatures = signatures
    }
}
