import BigInt
import Foundation

/// Why a TRON transaction could not be built, decoded or signed.
public enum TronTransactionError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The bytes are not valid protobuf.
    case protobuf(ProtobufError)
    /// A field has an invalid value (wrong length, negative amount, mismatched type URL…).
    case invalidField(String)
    /// java-tron requires exactly one contract per transaction.
    case contractCount(Int)
    /// A secp256k1 failure while signing or recovering.
    case secp256k1(Secp256k1.Error)

    /// A human-readable reason.
    public var description: String {
        switch self {
        case .protobuf(let e): return e.description
        case .invalidField(let what): return "invalid TRON transaction field: \(what)"
        case .contractCount(let n): return "a TRON transaction must hold exactly one contract, found \(n)"
        case .secp256k1(let e): return e.description
        }
    }
}

/// `TransferContract`: a TRX transfer in sun (1 TRX = 1 000 000 sun).
public struct TronTransferContract: Sendable, Hashable {
    /// Sender.
    public var owner: TronAddress
    /// Recipient.
    public var to: TronAddress
    /// Amount in sun (int64 on the wire).
    public var amount: Int64

    /// A TRX transfer of `amount` sun.
    public init(owner: TronAddress, to: TronAddress, amount: Int64) {
        self.owner = owner
        self.to = to
        self.amount = amount
    }
}

/// `TriggerSmartContract`: a contract call (a TRC20 `transfer` is one with `data` = ABI calldata).
public struct TronTriggerSmartContract: Sendable, Hashable {
    /// Caller.
    public var owner: TronAddress
    /// Contract called.
    public var contract: TronAddress
    /// TRX sent with the call, in sun.
    public var callValue: Int64
    /// ABI calldata (selector ‖ arguments).
    public var data: Data
    /// TRC10 token amount sent with the call.
    public var callTokenValue: Int64
    /// TRC10 token id.
    public var tokenID: Int64

    /// A contract call.
    public init(owner: TronAddress, contract: TronAddress, callValue: Int64 = 0, data: Data, callTokenValue: Int64 = 0, tokenID: Int64 = 0) {
        self.owner = owner
        self.contract = contract
        self.callValue = callValue
        self.data = data
        self.callTokenValue = callTokenValue
        self.tokenID = tokenID
    }

    /// The TRC20 transfer this call encodes, if its data is `transfer(address,uint256)` (recipient masked to 20 bytes).
    public var trc20Transfer: (to: TronAddress, amount: BigUInt)? {
        guard let transfer = ERC20.decodeTransfer(data) else { return nil }
        return (TronAddress(evmAddress: transfer.to), transfer.amount)
    }
}

/// The single contract of a TRON transaction (`Transaction.Contract`).
public enum TronContract: Sendable, Hashable {
    /// Type 1, `protocol.TransferContract`.
    case transfer(TronTransferContract)
    /// Type 31, `protocol.TriggerSmartContract`.
    case triggerSmartContract(TronTriggerSmartContract)
    /// Any other contract type, kept as its type number, `Any.type_url` and serialised value.
    case other(type: Int, typeURL: String, value: Data)

    /// The `ContractType` number.
    public var type: Int {
        switch self {
        case .transfer: return 1
        case .triggerSmartContract: return 31
        case .other(let type, _, _): return type
        }
    }

    /// `Any.type_url` of a TransferContract.
    public static let transferTypeURL = "type.googleapis.com/protocol.TransferContract"
    /// `Any.type_url` of a TriggerSmartContract.
    public static let triggerSmartContractTypeURL = "type.googleapis.com/protocol.TriggerSmartContract"

    /// The `google.protobuf.Any` type URL.
    public var typeURL: String {
        switch self {
        case .transfer: return Self.transferTypeURL
        case .triggerSmartContract: return Self.triggerSmartContractTypeURL
        case .other(_, let url, _): return url
        }
    }

    /// The owner (sender) address of the modelled types.
    public var owner: TronAddress? {
        switch self {
        case .transfer(let c): return c.owner
        case .triggerSmartContract(let c): return c.owner
        case .other: return nil
        }
    }

    /// The serialised contract message carried in `Any.value`.
    public var valueBytes: Data {
        var w = ProtobufWriter()
        switch self {
        case .transfer(let c):
            w.bytesIfNonDefault(1, c.owner.bytes)
            w.bytesIfNonDefault(2, c.to.bytes)
            w.int64IfNonDefault(3, c.amount)
        case .triggerSmartContract(let c):
            w.bytesIfNonDefault(1, c.owner.bytes)
            w.bytesIfNonDefault(2, c.contract.bytes)
            w.int64IfNonDefault(3, c.callValue)
            w.bytesIfNonDefault(4, c.data)
            w.int64IfNonDefault(5, c.callTokenValue)
            w.int64IfNonDefault(6, c.tokenID)
        case .other(_, _, let value):
            return value
        }
        return w.data
    }
}

/// The reference block of a transaction (TaPoS): `ref_block_bytes` and `ref_block_hash` come from its number and id.
public struct TronReferenceBlock: Sendable, Hashable {
    /// The 32-byte block id (`blockID`: 8-byte number ‖ 24 bytes of the header hash).
    public let blockID: Data

    /// From a 64-digit hex block id.
    public init(blockID hex: String) throws(TronTransactionError) {
        guard let id = try? Hex.decode(hex), id.count == 32 else { throw .invalidField("block id must be 32 bytes of hex") }
        blockID = id
    }

    /// The block number (first 8 bytes of the id).
    public var number: Int64 { Int64(bitPattern: blockID.prefix(8).reduce(0) { $0 << 8 | UInt64($1) }) }
    /// `ref_block_bytes`: bytes 6..<8 of the id (the low 16 bits of the number).
    public var refBlockBytes: Data { Data(blockID[blockID.startIndex + 6..<blockID.startIndex + 8]) }
    /// `ref_block_hash`: bytes 8..<16 of the id.
    public var refBlockHash: Data { Data(blockID[blockID.startIndex + 8..<blockID.startIndex + 16]) }
}

/// `Transaction.raw`: what a TRON transaction id hashes and a signature signs.
public struct TronRawData: Sendable, Hashable {
    /// 2 bytes: low 16 bits of the reference block number.
    public var refBlockBytes: Data
    /// 8 bytes: bytes 8..<16 of the reference block id.
    public var refBlockHash: Data
    /// Expiration time in milliseconds since the epoch.
    public var expiration: Int64
    /// Memo (`data`, field 10), empty when absent.
    public var memo: Data
    /// The single contract.
    public var contract: TronContract
    /// `Contract.Permission_id` (0 = owner permission, omitted).
    public var permissionID: Int32
    /// Creation time in milliseconds (0 = omitted, as some mainnet transactions do).
    public var timestamp: Int64
    /// Maximum TRX (sun) the call may burn for energy; 0 = omitted (TRX transfers).
    public var feeLimit: Int64

    /// A raw transaction; reference bytes must be 2 and 8 bytes long.
    public init(
        refBlockBytes: Data,
        refBlockHash: Data,
        expiration: Int64,
        timestamp: Int64,
        feeLimit: Int64 = 0,
        contract: TronContract,
        permissionID: Int32 = 0,
        memo: Data = Data()
    ) throws(TronTransactionError) {
        guard refBlockBytes.count == 2 else { throw .invalidField("ref_block_bytes must be 2 bytes") }
        guard refBlockHash.count == 8 else { throw .invalidField("ref_block_hash must be 8 bytes") }
        self.refBlockBytes = Data(refBlockBytes)
        self.refBlockHash = Data(refBlockHash)
        self.expiration = expiration
        self.timestamp = timestamp
        self.feeLimit = feeLimit
        self.contract = contract
        self.permissionID = permissionID
        self.memo = memo
    }

    /// A TRX transfer of `amount` sun.
    public static func trxTransfer(
        from owner: TronAddress,
        to: TronAddress,
        amount: Int64,
        reference: TronReferenceBlock,
        expiration: Int64,
        timestamp: Int64
    ) throws(TronTransactionError) -> TronRawData {
        guard amount > 0 else { throw .invalidField("amount must be positive") }
        return try TronRawData(
            refBlockBytes: reference.refBlockBytes,
            refBlockHash: reference.refBlockHash,
            expiration: expiration,
            timestamp: timestamp,
            contract: .transfer(TronTransferContract(owner: owner, to: to, amount: amount))
        )
    }

    /// A TRC20 `transfer(to, amount)` call on `token`, burning at most `feeLimit` sun for energy.
    public static func trc20Transfer(
        from owner: TronAddress,
        token: TronAddress,
        to: TronAddress,
        amount: BigUInt,
        feeLimit: Int64,
        reference: TronReferenceBlock,
        expiration: Int64,
        timestamp: Int64
    ) throws(TronTransactionError) -> TronRawData {
        guard amount < (BigUInt(1) << 256) else { throw .invalidField("amount exceeds uint256") }
        guard feeLimit > 0 else { throw .invalidField("fee_limit must be positive for a contract call") }
        let call = TronTriggerSmartContract(owner: owner, contract: token, data: ERC20.transferCalldata(to: to.evmAddress, amount: amount))
        return try TronRawData(
            refBlockBytes: reference.refBlockBytes,
            refBlockHash: reference.refBlockHash,
            expiration: expiration,
            timestamp: timestamp,
            feeLimit: feeLimit,
            contract: .triggerSmartContract(call)
        )
    }

    /// protobuf-java-identical serialisation (ascending fields, defaults omitted).
    public func serialized() -> Data {
        var w = ProtobufWriter()
        w.bytesIfNonDefault(1, refBlockBytes)
        w.bytesIfNonDefault(4, refBlockHash)
        w.int64IfNonDefault(8, expiration)
        w.bytesIfNonDefault(10, memo)
        w.message(11) { c in
            c.int64IfNonDefault(1, Int64(contract.type))
            c.message(2) { any in
                any.bytesIfNonDefault(1, Data(contract.typeURL.utf8))
                any.bytesIfNonDefault(2, contract.valueBytes)
            }
            c.int64IfNonDefault(5, Int64(permissionID))
        }
        w.int64IfNonDefault(14, timestamp)
        w.int64IfNonDefault(18, feeLimit)
        return w.data
    }

    /// The transaction id: sha256 of the serialised raw data.
    public var txID: Data { Hashing.sha256(serialized()) }

    /// Decodes `raw_data` bytes; fields not modelled here (ref_block_num, auths, scripts) are skipped.
    public init(serialized data: Data) throws(TronTransactionError) {
        do {
            try self.init(decoding: data)
        } catch let error as TronTransactionError {
            throw error
        } catch let error as ProtobufError {
            throw .protobuf(error)
        } catch {
            throw .invalidField("\(error)")
        }
    }

    private init(decoding data: Data) throws {
        var reader = ProtobufReader(data)
        var refBlockBytes = Data()
        var refBlockHash = Data()
        var memo = Data()
        var expiration: Int64 = 0
        var timestamp: Int64 = 0
        var feeLimit: Int64 = 0
        var contracts: [(TronContract, Int32)] = []
        while let (field, value) = try reader.next() {
            switch field {
            case 1: refBlockBytes = try value.bytes("ref_block_bytes")
            case 4: refBlockHash = try value.bytes("ref_block_hash")
            case 8: expiration = Int64(bitPattern: try value.varint("expiration"))
            case 10: memo = try value.bytes("data")
            case 11: contracts.append(try Self.decodeContract(try value.bytes("contract")))
            case 14: timestamp = Int64(bitPattern: try value.varint("timestamp"))
            case 18: feeLimit = Int64(bitPattern: try value.varint("fee_limit"))
            default: continue
            }
        }
        guard contracts.count == 1 else { throw TronTransactionError.contractCount(contracts.count) }
        try self.init(
            refBlockBytes: refBlockBytes,
            refBlockHash: refBlockHash,
            expiration: expiration,
            timestamp: timestamp,
            feeLimit: feeLimit,
            contract: contracts[0].0,
            permissionID: contracts[0].1,
            memo: memo
        )
    }

    private static func decodeContract(_ data: Data) throws -> (TronContract, Int32) {
        var reader = ProtobufReader(data)
        var type = 0
        var permission: Int32 = 0
        var typeURL = ""
        var value = Data()
        while let (field, item) = try reader.next() {
            switch field {
            case 1: type = Int(truncatingIfNeeded: try item.varint("contract.type"))
            case 2:
                var any = ProtobufReader(try item.bytes("contract.parameter"))
                while let (anyField, anyValue) = try any.next() {
                    if anyField == 1 { typeURL = String(decoding: try anyValue.bytes("type_url"), as: UTF8.self) }
                    if anyField == 2 { value = try anyValue.bytes("value") }
                }
            case 5: permission = Int32(truncatingIfNeeded: try item.varint("Permission_id"))
            default: continue
            }
        }
        switch type {
        case 1:
            guard typeURL == TronContract.transferTypeURL else {
                throw TronTransactionError.invalidField("type 1 with type_url \(typeURL)")
            }
            var reader = ProtobufReader(value)
            var owner = Data()
            var to = Data()
            var amount: Int64 = 0
            while let (field, item) = try reader.next() {
                switch field {
                case 1: owner = try item.bytes("owner_address")
                case 2: to = try item.bytes("to_address")
                case 3: amount = Int64(bitPattern: try item.varint("amount"))
                default: throw TronTransactionError.invalidField("unknown TransferContract field \(field)")
                }
            }
            return (.transfer(TronTransferContract(owner: try TronAddress(bytes: owner), to: try TronAddress(bytes: to), amount: amount)), permission)
        case 31:
            guard typeURL == TronContract.triggerSmartContractTypeURL else {
                throw TronTransactionError.invalidField("type 31 with type_url \(typeURL)")
            }
            var reader = ProtobufReader(value)
            var owner = Data()
            var contract = Data()
            var calldata = Data()
            var callValue: Int64 = 0
            var tokenValue: Int64 = 0
            var tokenID: Int64 = 0
            while let (field, item) = try reader.next() {
                switch field {
                case 1: owner = try item.bytes("owner_address")
                case 2: contract = try item.bytes("contract_address")
                case 3: callValue = Int64(bitPattern: try item.varint("call_value"))
                case 4: calldata = try item.bytes("data")
                case 5: tokenValue = Int64(bitPattern: try item.varint("call_token_value"))
                case 6: tokenID = Int64(bitPattern: try item.varint("token_id"))
                default: throw TronTransactionError.invalidField("unknown TriggerSmartContract field \(field)")
                }
            }
            let call = TronTriggerSmartContract(
                owner: try TronAddress(bytes: owner),
                contract: try TronAddress(bytes: contract),
                callValue: callValue,
                data: calldata,
                callTokenValue: tokenValue,
                tokenID: tokenID
            )
            return (.triggerSmartContract(call), permission)
        default:
            return (.other(type: type, typeURL: typeURL, value: value), permission)
        }
    }
}

/// A TRON `Transaction`: raw data (kept as the exact bytes that were hashed) and its signatures.
public struct TronTransaction: Sendable, Hashable {
    /// The decoded raw data.
    public let rawData: TronRawData
    /// The exact serialised raw data the txID and signatures cover (`raw_data_hex`).
    public let rawDataBytes: Data
    /// 65-byte signatures r ‖ s ‖ v (v = 0/1, or 27/28 from other signers).
    public var signatures: [Data]

    /// An unsigned transaction from raw data.
    public init(rawData: TronRawData) {
        self.rawData = rawData
        rawDataBytes = rawData.serialized()
        signatures = []
    }

    /// A transaction from `raw_data_hex` bytes and signatures as received from a node or client.
    public init(rawDataBytes: Data, signatures: [Data] = []) throws(TronTransactionError) {
        rawData = try TronRawData(serialized: rawDataBytes)
        self.rawDataBytes = Data(rawDataBytes)
        self.signatures = signatures
    }

    /// Decodes a serialised `Transaction` (as sent to `broadcasthex`): raw_data (1), signature (2), ret (5, ignored).
    public init(serialized data: Data) throws(TronTransactionError) {
        var reader = ProtobufReader(data)
        var raw: Data?
        var signatures: [Data] = []
        do {
            while let (field, value) = try reader.next() {
                switch field {
                case 1: raw = try value.bytes("raw_data")
                case 2: signatures.append(try value.bytes("signature"))
                default: continue
                }
            }
        } catch {
            throw .protobuf(error)
        }
        guard let raw else { throw .invalidField("missing raw_data") }
        try self.init(rawDataBytes: raw, signatures: signatures)
    }

    /// The transaction id: sha256 of the raw data bytes (independent of signatures).
    public var txID: Data { Hashing.sha256(rawDataBytes) }

    /// Serialised `Transaction{raw_data, signature…}` for `broadcasthex`.
    public func serialized() -> Data {
        var w = ProtobufWriter()
        w.bytes(1, rawDataBytes)
        for signature in signatures { w.bytes(2, signature) }
        return w.data
    }

    /// Returns the transaction with a signature by `key` appended: ECDSA over the txID, 65 bytes r ‖ s ‖ v with v = recovery id, low-s.
    public func signed(with key: Secp256k1.PrivateKey) throws(TronTransactionError) -> TronTransaction {
        do {
            var copy = self
            copy.signatures.append(try key.sign(hash: txID).rsv)
            return copy
        } catch {
            throw .secp256k1(error)
        }
    }

    /// The address that produced each signature (accepting v = 0/1 and 27/28).
    public func recoverSigners() throws(TronTransactionError) -> [TronAddress] {
        do {
            let id = txID
            return try signatures.map { signature throws(Secp256k1.Error) in
                TronAddress(publicKey: try Secp256k1.RecoverableSignature(rsv: signature).recoverPublicKey(hash: id))
            }
        } catch {
            throw .secp256k1(error)
        }
    }
}
