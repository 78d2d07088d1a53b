import Foundation

/// A TRON block header (`BlockHeader.raw`) and the ids java-tron derives from it (tron-http-api.md §3.3):
/// `blockID = bigEndian64(number) ‖ sha256(raw)[8:32]`, the witness signs `sha256(raw)`.
public struct TronBlockHeader: Sendable, Hashable {
    /// Height.
    public var number: Int64
    /// Milliseconds since the epoch.
    public var timestamp: Int64
    /// Merkle root of the block's transactions (32 zero bytes when empty).
    public var txTrieRoot: Data
    /// The parent's block id.
    public var parentHash: Data
    /// The producing witness.
    public var witness: TronAddress
    /// Block (protocol) version.
    public var version: Int32

    /// A header.
    public init(number: Int64, timestamp: Int64, txTrieRoot: Data, parentHash: Data, witness: TronAddress, version: Int32) {
        self.number = number
        self.timestamp = timestamp
        self.txTrieRoot = txTrieRoot
        self.parentHash = parentHash
        self.witness = witness
        self.version = version
    }

    /// `BlockHeader.raw` as protobuf-java serialises it: timestamp 1, txTrieRoot 2, parentHash 3, number 7,
    /// witness_address 9, version 10; defaults omitted.
    public func serialized() -> Data {
        var w = ProtobufWriter()
        w.int64IfNonDefault(1, timestamp)
        w.bytesIfNonDefault(2, txTrieRoot)
        w.bytesIfNonDefault(3, parentHash)
        w.int64IfNonDefault(7, number)
        w.bytesIfNonDefault(9, witness.bytes)
        w.int64IfNonDefault(10, Int64(version))
        return w.data
    }

    /// `sha256(raw)`: what the witness signs.
    public var rawHash: Data { Hashing.sha256(serialized()) }

    /// The block id: the number in the first 8 bytes, then bytes 8… of the raw hash.
    public var blockID: Data {
        var id = Data(count: 8)
        for i in 0..<8 { id[i] = UInt8(truncatingIfNeeded: UInt64(bitPattern: number) >> UInt64(56 - 8 * i)) }
        return id + rawHash.suffix(24)
    }

    /// The transactions' Merkle root: pairwise sha256 of the leaves, an odd last node carried up unchanged, 32 zero
    /// bytes for no leaves (`BlockCapsule.calcMerkleRoot`).
    public static func txTrieRoot(leaves: [Data]) -> Data {
        guard !leaves.isEmpty else { return Data(count: 32) }
        var level = leaves
        while level.count > 1 {
            var next: [Data] = []
            next.reserveCapacity((level.count + 1) / 2)
            var i = 0
            while i < level.count {
                next.append(i + 1 < level.count ? Hashing.sha256(level[i] + level[i + 1]) : level[i])
                i += 2
            }
            level = next
        }
        return level[0]
    }
}

/// `Transaction.Result.contractResult` names and numbers.
public enum TronContractResult {
    /// Name → enum number (`Tron.proto`).
    public static let codes: [String: UInt64] = [
        "DEFAULT": 0, "SUCCESS": 1, "REVERT": 2, "BAD_JUMP_DESTINATION": 3, "OUT_OF_MEMORY": 4, "PRECOMPILED_CONTRACT": 5, "STACK_TOO_SMALL": 6,
        "STACK_TOO_LARGE": 7, "ILLEGAL_OPERATION": 8, "STACK_OVERFLOW": 9, "OUT_OF_ENERGY": 10, "OUT_OF_TIME": 11, "JVM_STACK_OVER_FLOW": 12,
        "UNKNOWN": 13, "TRANSFER_FAILED": 14, "INVALID_CODE": 15,
    ]
}

extension TronTransaction {
    /// The Merkle leaf of this transaction in a block: sha256 of the full `Transaction` including signatures and
    /// `ret` (`Result{contractRet}`, field 5) when `contractRet` is given.
    public func merkleLeaf(contractRet: String?) -> Data {
        var bytes = serialized()
        if let contractRet {
            var result = ProtobufWriter()
            if let code = TronContractResult.codes[contractRet], code != 0 { result.varint(3, code) }
            var w = ProtobufWriter()
            w.bytes(5, result.data)
            bytes += w.data
        }
        return Hashing.sha256(bytes)
    }
}
