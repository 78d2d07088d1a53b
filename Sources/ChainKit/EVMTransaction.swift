import BigInt
import Foundation

/// Why an EVM transaction could not be decoded or signed.
public enum EVMTransactionError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The bytes are not canonical RLP of the expected shape.
    case rlp(RLP.DecodingError)
    /// A typed-transaction byte other than 0x02 (or a legacy list), e.g. 0x01 or 0x03.
    case unsupportedType(UInt8)
    /// The RLP list has the wrong number of fields.
    case wrongFieldCount(expected: Int, got: Int)
    /// A field has an invalid value.
    case invalidField(String)
    /// The signature values are out of range (zero, ≥ n, high s, bad v).
    case invalidSignature(String)
    /// A secp256k1 failure while signing or recovering.
    case secp256k1(Secp256k1.Error)

    /// A human-readable reason.
    public var description: String {
        switch self {
        case .rlp(let e): return "invalid RLP: \(e)"
        case .unsupportedType(let t): return "unsupported transaction type 0x\(Hex.encode([t]))"
        case .wrongFieldCount(let expected, let got): return "expected \(expected) transaction fields, got \(got)"
        case .invalidField(let name): return "invalid field \(name)"
        case .invalidSignature(let reason): return "invalid signature: \(reason)"
        case .secp256k1(let e): return e.description
        }
    }
}

/// One EIP-2930 access-list entry.
public struct EVMAccessListEntry: Sendable, Hashable {
    /// The accessed contract.
    public let address: EVMAddress
    /// 32-byte storage keys.
    public let storageKeys: [Data]

    /// An entry for `address` with its 32-byte storage keys.
    public init(address: EVMAddress, storageKeys: [Data]) {
        self.address = address
        self.storageKeys = storageKeys
    }
}

/// A legacy (type 0) transaction, EIP-155 replay-protected when `chainID` is set.
public struct EVMLegacyTransaction: Sendable, Hashable {
    /// Sender nonce.
    public var nonce: UInt64
    /// Gas price in wei.
    public var gasPrice: BigUInt
    /// Gas limit.
    public var gasLimit: UInt64
    /// Recipient; nil creates a contract.
    public var to: EVMAddress?
    /// Value in wei.
    public var value: BigUInt
    /// Calldata.
    public var data: Data
    /// EIP-155 chain id; nil only for pre-EIP-155 transactions (decoded, never produced by `sign`).
    public var chainID: UInt64?

    /// A legacy transaction.
    public init(nonce: UInt64, gasPrice: BigUInt, gasLimit: UInt64, to: EVMAddress?, value: BigUInt, data: Data = Data(), chainID: UInt64?) {
        self.nonce = nonce
        self.gasPrice = gasPrice
        self.gasLimit = gasLimit
        self.to = to
        self.value = value
        self.data = data
        self.chainID = chainID
    }

    var baseFields: [RLP.Item] {
        [.uint(nonce), .uint(gasPrice), .uint(gasLimit), .bytes(to?.bytes ?? Data()), .uint(value), .bytes(data)]
    }
}

/// An EIP-1559 (type 2) dynamic-fee transaction.
public struct EVMEIP1559Transaction: Sendable, Hashable {
    /// Chain id.
    public var chainID: UInt64
    /// Sender nonce.
    public var nonce: UInt64
    /// Priority fee (tip) per gas in wei.
    public var maxPriorityFeePerGas: BigUInt
    /// Maximum total fee per gas in wei.
    public var maxFeePerGas: BigUInt
    /// Gas limit.
    public var gasLimit: UInt64
    /// Recipient; nil creates a contract.
    public var to: EVMAddress?
    /// Value in wei.
    public var value: BigUInt
    /// Calldata.
    public var data: Data
    /// EIP-2930 access list (usually empty).
    public var accessList: [EVMAccessListEntry]

    /// An EIP-1559 transaction.
    public init(
        chainID: UInt64,
        nonce: UInt64,
        maxPriorityFeePerGas: BigUInt,
        maxFeePerGas: BigUInt,
        gasLimit: UInt64,
        to: EVMAddress?,
        value: BigUInt,
        data: Data = Data(),
        accessList: [EVMAccessListEntry] = []
    ) {
        self.chainID = chainID
        self.nonce = nonce
        self.maxPriorityFeePerGas = maxPriorityFeePerGas
        self.maxFeePerGas = maxFeePerGas
        self.gasLimit = gasLimit
        self.to = to
        self.value = value
        self.data = data
        self.accessList = accessList
    }

    var fields: [RLP.Item] {
        let list: [RLP.Item] = accessList.map { entry in
            .list([.bytes(entry.address.bytes), .list(entry.storageKeys.map { .bytes($0) })])
        }
        return [
            .uint(chainID), .uint(nonce), .uint(maxPriorityFeePerGas), .uint(maxFeePerGas), .uint(gasLimit),
            .bytes(to?.bytes ?? Data()), .uint(value), .bytes(data), .list(list),
        ]
    }
}

/// An unsigned EVM transaction of a supported type.
public enum EVMTransaction: Sendable, Hashable {
    /// Type 0 (legacy, EIP-155).
    case legacy(EVMLegacyTransaction)
    /// Type 2 (EIP-1559).
    case eip1559(EVMEIP1559Transaction)

    /// The chain id (nil for a pre-EIP-155 legacy transaction).
    public var chainID: UInt64? {
        switch self {
        case .legacy(let tx): return tx.chainID
        case .eip1559(let tx): return tx.chainID
        }
    }

    /// Sender nonce.
    public var nonce: UInt64 {
        switch self {
        case .legacy(let tx): return tx.nonce
        case .eip1559(let tx): return tx.nonce
        }
    }

    /// Recipient (nil for contract creation).
    public var to: EVMAddress? {
        switch self {
        case .legacy(let tx): return tx.to
        case .eip1559(let tx): return tx.to
        }
    }

    /// Value in wei.
    public var value: BigUInt {
        switch self {
        case .legacy(let tx): return tx.value
        case .eip1559(let tx): return tx.value
        }
    }

    /// Calldata.
    public var data: Data {
        switch self {
        case .legacy(let tx): return tx.data
        case .eip1559(let tx): return tx.data
        }
    }

    /// Gas limit.
    public var gasLimit: UInt64 {
        switch self {
        case .legacy(let tx): return tx.gasLimit
        case .eip1559(let tx): return tx.gasLimit
        }
    }

    /// The bytes whose keccak is signed: `rlp([…, chainId, 0, 0])` for legacy, `0x02 ‖ rlp([…])` for EIP-1559.
    public var unsignedSerialized: Data {
        switch self {
        case .legacy(let tx):
            var fields = tx.baseFields
            if let chainID = tx.chainID { fields += [.uint(chainID), .bytes(Data()), .bytes(Data())] }
            return RLP.encode(.list(fields))
        case .eip1559(let tx):
            return Data([0x02]) + RLP.encode(.list(tx.fields))
        }
    }

    /// keccak256 of `unsignedSerialized`.
    public var signingHash: Data {
        Keccak256.hash(unsignedSerialized)
    }

    /// Signs with RFC 6979 deterministic nonces (low-s); legacy transactions must carry a chain id.
    public func sign(with key: Secp256k1.PrivateKey) throws(EVMTransactionError) -> SignedEVMTransaction {
        if case .legacy(let tx) = self, tx.chainID == nil { throw .invalidField("chainID (refusing to sign without EIP-155 replay protection)") }
        do {
            let signature = try key.sign(hash: signingHash)
            return SignedEVMTransaction(transaction: self, signature: signature)
        } catch {
            throw .secp256k1(error)
        }
    }
}

/// A signed EVM transaction: raw bytes for `eth_sendRawTransaction`, its hash, and sender recovery.
public struct SignedEVMTransaction: Sendable, Hashable {
    /// The transaction that was signed.
    public let transaction: EVMTransaction
    /// r, s and the recovery id (y parity).
    public let signature: Secp256k1.RecoverableSignature

    /// Pairs a transaction with its signature.
    public init(transaction: EVMTransaction, signature: Secp256k1.RecoverableSignature) {
        self.transaction = transaction
        self.signature = signature
    }

    /// The `v` value as serialised: `chainId·2 + 35 + yParity` (EIP-155), `27 + yParity` (pre-155), or `yParity` (type 2).
    public var v: BigUInt {
        let parity = BigUInt(signature.recoveryID & 1)
        switch transaction {
        case .legacy(let tx):
            if let chainID = tx.chainID { return BigUInt(chainID) * 2 + 35 + parity }
            return 27 + parity
        case .eip1559:
            return parity
        }
    }

    /// r as an integer.
    public var r: BigUInt { BigUInt(signature.r) }
    /// s as an integer.
    public var s: BigUInt { BigUInt(signature.s) }

    /// The raw signed transaction, as sent with `eth_sendRawTransaction`.
    public var rawBytes: Data {
        let sig: [RLP.Item] = [.uint(v), .uint(r), .uint(s)]
        switch transaction {
        case .legacy(let tx):
            return RLP.encode(.list(tx.baseFields + sig))
        case .eip1559(let tx):
            return Data([0x02]) + RLP.encode(.list(tx.fields + sig))
        }
    }

    /// The transaction hash: keccak256 of the raw signed bytes.
    public var hash: Data {
        Keccak256.hash(rawBytes)
    }

    /// Recovers the sender's address from the signature.
    public func recoverSender() throws(EVMTransactionError) -> EVMAddress {
        do {
            return EVMAddress(publicKey: try signature.recoverPublicKey(hash: transaction.signingHash))
        } catch {
            throw .secp256k1(error)
        }
    }

    /// Decodes a raw signed legacy or EIP-1559 transaction (strict RLP, low-s, y parity 0/1).
    public init(raw: Data) throws(EVMTransactionError) {
        guard let first = raw.first else { throw .rlp(.empty) }
        do {
            if first >= 0xc0 {
                try self.init(legacyFields: try RLP.decode(raw).list())
            } else if first == 0x02 {
                try self.init(eip1559Fields: try RLP.decode(raw.dropFirst()).list())
            } else {
                throw EVMTransactionError.unsupportedType(first)
            }
        } catch let error as EVMTransactionError {
            throw error
        } catch let error as RLP.DecodingError {
            throw .rlp(error)
        } catch {
            throw .invalidField("\(error)")
        }
    }

    private init(legacyFields f: [RLP.Item]) throws {
        guard f.count == 9 else { throw EVMTransactionError.wrongFieldCount(expected: 9, got: f.count) }
        let v = try f[6].bigUInt()
        let chainID: UInt64?
        let parity: UInt8
        if v == 27 || v == 28 {
            chainID = nil
            parity = UInt8(v - 27)
        } else if v >= 37 {
            let id = (v - 35) / 2
            guard id <= BigUInt(UInt64.max) else { throw EVMTransactionError.invalidSignature("v out of range") }
            chainID = UInt64(id)
            parity = UInt8((v - 35) % 2)
        } else {
            throw EVMTransactionError.invalidSignature("v = \(v)")
        }
        let tx = EVMLegacyTransaction(
            nonce: try f[0].uint64(),
            gasPrice: try f[1].bigUInt(),
            gasLimit: try f[2].uint64(),
            to: try Self.decodeTo(f[3]),
            value: try f[4].bigUInt(),
            data: try f[5].bytes(),
            chainID: chainID
        )
        self.init(transaction: .legacy(tx), signature: try Self.decodeSignature(r: f[7], s: f[8], parity: parity))
    }

    private init(eip1559Fields f: [RLP.Item]) throws {
        guard f.count == 12 else { throw EVMTransactionError.wrongFieldCount(expected: 12, got: f.count) }
        var accessList: [EVMAccessListEntry] = []
        for entry in try f[8].list() {
            let pair = try entry.list()
            guard pair.count == 2 else { throw EVMTransactionError.invalidField("accessList") }
            let address = try EVMAddress(bytes: try pair[0].bytes())
            let keys = try pair[1].list().map { item in try item.bytes() }
            guard keys.allSatisfy({ $0.count == 32 }) else { throw EVMTransactionError.invalidField("accessList storage key") }
            accessList.append(EVMAccessListEntry(address: address, storageKeys: keys))
        }
        let parity = try f[9].bigUInt()
        guard parity <= 1 else { throw EVMTransactionError.invalidSignature("y parity \(parity)") }
        let tx = EVMEIP1559Transaction(
            chainID: try f[0].uint64(),
            nonce: try f[1].uint64(),
            maxPriorityFeePerGas: try f[2].bigUInt(),
            maxFeePerGas: try f[3].bigUInt(),
            gasLimit: try f[4].uint64(),
            to: try Self.decodeTo(f[5]),
            value: try f[6].bigUInt(),
            data: try f[7].bytes(),
            accessList: accessList
        )
        self.init(transaction: .eip1559(tx), signature: try Self.decodeSignature(r: f[10], s: f[11], parity: UInt8(parity)))
    }

    private static func decodeTo(_ item: RLP.Item) throws -> EVMAddress? {
        let bytes = try item.bytes()
        if bytes.isEmpty { return nil }
        guard bytes.count == 20 else { throw EVMTransactionError.invalidField("to (\(bytes.count) bytes)") }
        return try EVMAddress(bytes: bytes)
    }

    private static func decodeSignature(r: RLP.Item, s: RLP.Item, parity: UInt8) throws -> Secp256k1.RecoverableSignature {
        let rValue = try r.bigUInt()
        let sValue = try s.bigUInt()
        guard !rValue.isZero, !sValue.isZero else { throw EVMTransactionError.invalidSignature("zero r or s") }
        let signature = Secp256k1.RecoverableSignature(r: ABI.word(rValue), s: ABI.word(sValue), recoveryID: parity)
        guard signature.isLowS else { throw EVMTransactionError.invalidSignature("high s (EIP-2)") }
        return signature
    }
}

extension EVMEIP1559Transaction {
    /// A plain value transfer (21 000 gas, no calldata).
    public static func nativeTransfer(
        chainID: UInt64,
        nonce: UInt64,
        maxPriorityFeePerGas: BigUInt,
        maxFeePerGas: BigUInt,
        to: EVMAddress,
        value: BigUInt,
        gasLimit: UInt64 = 21_000
    ) -> EVMEIP1559Transaction {
        EVMEIP1559Transaction(
            chainID: chainID,
            nonce: nonce,
            maxPriorityFeePerGas: maxPriorityFeePerGas,
            maxFeePerGas: maxFeePerGas,
            gasLimit: gasLimit,
            to: to,
            value: value
        )
    }

    /// An ERC20 `transfer(to, amount)` call on `token` (zero value; the gas limit must cover the token's transfer).
    public static func erc20Transfer(
        chainID: UInt64,
        nonce: UInt64,
        maxPriorityFeePerGas: BigUInt,
        maxFeePerGas: BigUInt,
        gasLimit: UInt64,
        token: EVMAddress,
        to: EVMAddress,
        amount: BigUInt
    ) -> EVMEIP1559Transaction {
        EVMEIP1559Transaction(
            chainID: chainID,
            nonce: nonce,
            maxPriorityFeePerGas: maxPriorityFeePerGas,
            maxFeePerGas: maxFeePerGas,
            gasLimit: gasLimit,
            to: token,
            value: 0,
            data: ERC20.transferCalldata(to: to, amount: amount)
        )
    }
}

extension EVMLegacyTransaction {
    /// A plain value transfer (21 000 gas, no calldata), EIP-155 protected.
    public static func nativeTransfer(
        chainID: UInt64,
        nonce: UInt64,
        gasPrice: BigUInt,
        to: EVMAddress,
        value: BigUInt,
        gasLimit: UInt64 = 21_000
    ) -> EVMLegacyTransaction {
        EVMLegacyTransaction(nonce: nonce, gasPrice: gasPrice, gasLimit: gasLimit, to: to, value: value, chainID: chainID)
    }

    /// An ERC20 `transfer(to, amount)` call on `token`, EIP-155 protected.
    public static func erc20Transfer(
        chainID: UInt64,
        nonce: UInt64,
        gasPrice: BigUInt,
        gasLimit: UInt64,
        token: EVMAddress,
        to: EVMAddress,
        amount: BigUInt
    ) -> EVMLegacyTransaction {
        EVMLegacyTransaction(
            nonce: nonce,
            gasPrice: gasPrice,
            gasLimit: gasLimit,
            to: token,
            value: 0,
            data: ERC20.transferCalldata(to: to, amount: amount),
            chainID: chainID
        )
    }
}
