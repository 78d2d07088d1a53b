import BigInt
import ChainKit
import Foundation
import Testing

private struct EthTxFile: Decodable {
    struct Tx: Decodable {
        let type: Int?
        let nonce: UInt64
        let gasPrice: UInt64?
        let maxPriorityFeePerGas: UInt64?
        let maxFeePerGas: UInt64?
        let gas: UInt64
        let to: String
        let value: UInt64
        let data: String
        let chainId: UInt64
    }
    struct Vector: Decodable {
        let name: String
        let type: Int
        let private_key: String
        let sender: String
        let tx: Tx
        let unsigned_serialized: String
        let signing_hash: String
        let v: UInt64
        let r: String
        let s: String
        let raw_signed_tx: String
        let tx_hash: String
        let y_parity: Int?
    }
    let usdt_contract_mainnet: String
    let vectors: [Vector]

    static func load() throws -> EthTxFile {
        try Vectors.load(EthTxFile.self, from: "eth_tx_signing.json")
    }
}

private func transaction(_ v: EthTxFile.Vector) throws -> EVMTransaction {
    let to = try EVMAddress(v.tx.to)
    let data = try hex(v.tx.data)
    switch v.type {
    case 0:
        return .legacy(
            EVMLegacyTransaction(
                nonce: v.tx.nonce,
                gasPrice: BigUInt(try #require(v.tx.gasPrice)),
                gasLimit: v.tx.gas,
                to: to,
                value: BigUInt(v.tx.value),
                data: data,
                chainID: v.tx.chainId
            )
        )
    case 2:
        return .eip1559(
            EVMEIP1559Transaction(
                chainID: v.tx.chainId,
                nonce: v.tx.nonce,
                maxPriorityFeePerGas: BigUInt(try #require(v.tx.maxPriorityFeePerGas)),
                maxFeePerGas: BigUInt(try #require(v.tx.maxFeePerGas)),
                gasLimit: v.tx.gas,
                to: to,
                value: BigUInt(v.tx.value),
                data: data
            )
        )
    default:
        throw EVMTransactionError.unsupportedType(UInt8(v.type))
    }
}

@Suite("EVM transactions")
struct EVMTransactionTests {
    @Test("every vector: unsigned bytes, signing hash, v/r/s, raw signed tx and tx hash")
    func signingVectors() throws {
        let file = try EthTxFile.load()
        #expect(file.vectors.count == 12)
        for v in file.vectors {
            let tx = try transaction(v)
            #expect("0x" + Hex.encode(tx.unsignedSerialized) == v.unsigned_serialized, "\(v.name)")
            #expect("0x" + Hex.encode(tx.signingHash) == v.signing_hash, "\(v.name)")
            let key = try Secp256k1.PrivateKey(hex: v.private_key)
            #expect(EVMAddress(publicKey: key.publicKey).checksummed == v.sender)
            let signed = try tx.sign(with: key)
            #expect(signed.v == BigUInt(v.v), "\(v.name)")
            #expect(ABI.word(signed.r) == (try hex(v.r)), "\(v.name)")
            #expect(ABI.word(signed.s) == (try hex(v.s)), "\(v.name)")
            if let parity = v.y_parity { #expect(Int(signed.signature.recoveryID) == parity) }
            #expect(signed.signature.isLowS)
            #expect("0x" + Hex.encode(signed.rawBytes) == v.raw_signed_tx, "\(v.name)")
            #expect("0x" + Hex.encode(signed.hash) == v.tx_hash, "\(v.name)")
            #expect(try signed.recoverSender().checksummed == v.sender)
        }
    }

    @Test("every vector's raw signed tx decodes back to the same transaction and sender (dev node path)")
    func decodeVectors() throws {
        let file = try EthTxFile.load()
        for v in file.vectors {
            let decoded = try SignedEVMTransaction(raw: hex(v.raw_signed_tx))
            #expect(decoded.transaction == (try transaction(v)), "\(v.name)")
            #expect(try decoded.recoverSender().checksummed == v.sender, "\(v.name)")
            #expect("0x" + Hex.encode(decoded.hash) == v.tx_hash)
            #expect("0x" + Hex.encode(decoded.rawBytes) == v.raw_signed_tx)
            #expect(decoded.transaction.chainID == v.tx.chainId)
        }
    }

    @Test("ERC20 transfer calldata in the vectors is what ERC20.transferCalldata builds")
    func erc20Calldata() throws {
        let file = try EthTxFile.load()
        let usdt = try EVMAddress(file.usdt_contract_mainnet)
        var checked = 0
        for v in file.vectors where v.tx.data.hasPrefix("0xa9059cbb") {
            let data = try hex(v.tx.data)
            let transfer = try #require(ERC20.decodeTransfer(data))
            #expect(ERC20.transferCalldata(to: transfer.to, amount: transfer.amount) == data)
            #expect(try EVMAddress(v.tx.to) == usdt)
            checked += 1
        }
        #expect(checked == 8)
        let to = try EVMAddress("0x2c7536E3605D9C16a7a3D7b1898e529396a65c23")
        let amount = BigUInt(12_345_678)
        #expect(
            Hex.encode(ERC20.transferCalldata(to: to, amount: amount))
                == "a9059cbb0000000000000000000000002c7536e3605d9c16a7a3d7b1898e529396a65c230000000000000000000000000000000000000000000000000000000000bc614e"
        )
        // Amounts beyond 64 bits stay exact.
        let big = BigUInt(1) << 200 + 5
        #expect(ERC20.decodeTransfer(ERC20.transferCalldata(to: to, amount: big))?.amount == big)
        // A dirty address word (TRON mainnet quirk: 0x41 in byte 11) still yields the low 20 bytes.
        var dirty = ERC20.transferCalldata(to: to, amount: amount)
        dirty[15] = 0x41
        #expect(ERC20.decodeTransfer(dirty)?.to == to)
        #expect(ERC20.decodeTransfer(Data(dirty.prefix(67))) == nil)
        #expect(ERC20.decodeTransfer(ERC20.balanceOfCalldata(owner: to) + Data(count: 32)) == nil)
        #expect(Hex.encode(ERC20.balanceOfCalldata(owner: to)) == "70a082310000000000000000000000002c7536e3605d9c16a7a3d7b1898e529396a65c23")
        #expect(ERC20.transferEventTopic == (try hex("ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef")))
    }

    @Test("native and ERC20 transfer builders produce the vectors' transactions")
    func builders() throws {
        let file = try EthTxFile.load()
        var built = 0
        for v in file.vectors {
            let to = try EVMAddress(v.tx.to)
            let data = try hex(v.tx.data)
            let expected = try transaction(v)
            let transfer = ERC20.decodeTransfer(data)
            let candidate: EVMTransaction
            switch (v.type, transfer) {
            case (0, nil):
                candidate = .legacy(
                    .nativeTransfer(
                        chainID: v.tx.chainId,
                        nonce: v.tx.nonce,
                        gasPrice: BigUInt(try #require(v.tx.gasPrice)),
                        to: to,
                        value: BigUInt(v.tx.value),
                        gasLimit: v.tx.gas
                    )
                )
            case (0, let t?):
                candidate = .legacy(
                    .erc20Transfer(
                        chainID: v.tx.chainId,
                        nonce: v.tx.nonce,
                        gasPrice: BigUInt(try #require(v.tx.gasPrice)),
                        gasLimit: v.tx.gas,
                        token: to,
                        to: t.to,
                        amount: t.amount
                    )
                )
            case (_, nil):
                candidate = .eip1559(
                    .nativeTransfer(
                        chainID: v.tx.chainId,
                        nonce: v.tx.nonce,
                        maxPriorityFeePerGas: BigUInt(try #require(v.tx.maxPriorityFeePerGas)),
                        maxFeePerGas: BigUInt(try #require(v.tx.maxFeePerGas)),
                        to: to,
                        value: BigUInt(v.tx.value),
                        gasLimit: v.tx.gas
                    )
                )
            case (_, let t?):
                candidate = .eip1559(
                    .erc20Transfer(
                        chainID: v.tx.chainId,
                        nonce: v.tx.nonce,
                        maxPriorityFeePerGas: BigUInt(try #require(v.tx.maxPriorityFeePerGas)),
                        maxFeePerGas: BigUInt(try #require(v.tx.maxFeePerGas)),
                        gasLimit: v.tx.gas,
                        token: to,
                        to: t.to,
                        amount: t.amount
                    )
                )
            }
            #expect(candidate == expected, "\(v.name)")
            #expect("0x" + Hex.encode(candidate.unsignedSerialized) == v.unsigned_serialized)
            built += 1
        }
        #expect(built == 12)
    }

    @Test("access lists and contract creation round trip through sign and decode")
    func accessListAndCreation() throws {
        let key = try Secp256k1.PrivateKey(hex: "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
        let entry = EVMAccessListEntry(
            address: try EVMAddress("0xdAC17F958D2ee523a2206206994597C13D831ec7"),
            storageKeys: [Data(count: 32), Data(repeating: 0xab, count: 32)]
        )
        let txs: [EVMTransaction] = [
            .eip1559(
                EVMEIP1559Transaction(
                    chainID: 1337,
                    nonce: 3,
                    maxPriorityFeePerGas: 1,
                    maxFeePerGas: 2,
                    gasLimit: 90_000,
                    to: nil,
                    value: 0,
                    data: Data([0x60, 0x80]),
                    accessList: [entry]
                )
            ),
            .legacy(
                EVMLegacyTransaction(
                    nonce: UInt64.max,
                    gasPrice: BigUInt(1) << 100,
                    gasLimit: 21_000,
                    to: nil,
                    value: 7,
                    chainID: 5_000_000_000
                )
            ),
        ]
        for tx in txs {
            let signed = try tx.sign(with: key)
            let decoded = try SignedEVMTransaction(raw: signed.rawBytes)
            #expect(decoded == signed)
            #expect(try decoded.recoverSender() == EVMAddress(publicKey: key.publicKey))
        }
    }

    @Test("malformed raw transactions are rejected")
    func invalidRaw() throws {
        let file = try EthTxFile.load()
        let legacy = try hex(file.vectors[0].raw_signed_tx)
        let typed = try hex(file.vectors[2].raw_signed_tx)
        #expect(throws: EVMTransactionError.rlp(.empty)) { try SignedEVMTransaction(raw: Data()) }
        #expect(throws: EVMTransactionError.unsupportedType(0x01)) { try SignedEVMTransaction(raw: Data([0x01]) + typed.dropFirst()) }
        #expect(throws: EVMTransactionError.unsupportedType(0x03)) { try SignedEVMTransaction(raw: Data([0x03, 0xc0])) }
        #expect(throws: EVMTransactionError.rlp(.truncated)) { try SignedEVMTransaction(raw: legacy.dropLast()) }
        #expect(throws: EVMTransactionError.rlp(.trailingBytes(1))) { try SignedEVMTransaction(raw: legacy + Data([0x00])) }
        #expect(throws: EVMTransactionError.wrongFieldCount(expected: 9, got: 0)) { try SignedEVMTransaction(raw: Data([0xc0])) }

        // High s (n - s) must be refused even though it verifies mathematically (EIP-2).
        let signed = try SignedEVMTransaction(raw: legacy)
        let n = BigUInt("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141", radix: 16)!
        let highS = RLP.encode(.list(try Array(RLP.decode(legacy).list().prefix(8)) + [.uint(n - signed.s)]))
        #expect(throws: EVMTransactionError.invalidSignature("high s (EIP-2)")) { try SignedEVMTransaction(raw: highS) }
        // v that is neither 27/28 nor EIP-155.
        var fields = try RLP.decode(legacy).list()
        fields[6] = .uint(UInt64(30))
        #expect(throws: EVMTransactionError.invalidSignature("v = 30")) { try SignedEVMTransaction(raw: RLP.encode(.list(fields))) }
        // A 19-byte recipient.
        fields = try RLP.decode(legacy).list()
        fields[3] = .bytes(Data(count: 19))
        #expect(throws: EVMTransactionError.invalidField("to (19 bytes)")) { try SignedEVMTransaction(raw: RLP.encode(.list(fields))) }
        // A non-canonical integer (leading zero) in the nonce.
        fields = try RLP.decode(legacy).list()
        fields[0] = .bytes(Data([0x00, 0x09]))
        #expect(throws: EVMTransactionError.rlp(.invalidInteger)) { try SignedEVMTransaction(raw: RLP.encode(.list(fields))) }
    }

    @Test("legacy transactions are never signed without a chain id")
    func refusesPre155Signing() throws {
        let key = try Secp256k1.PrivateKey(hex: "0000000000000000000000000000000000000000000000000000000000000001")
        let tx = EVMTransaction.legacy(EVMLegacyTransaction(nonce: 0, gasPrice: 1, gasLimit: 21_000, to: .zero, value: 1, chainID: nil))
        #expect(throws: EVMTransactionError.self) { try tx.sign(with: key) }
    }
}

@Suite("RLP")
struct RLPTests {
    @Test(
        "canonical encodings (Ethereum wiki examples)",
        arguments: [
            (RLP.Item.bytes(Data("dog".utf8)), "83646f67"),
            (.list([.bytes(Data("cat".utf8)), .bytes(Data("dog".utf8))]), "c88363617483646f67"),
            (.bytes(Data()), "80"),
            (.list([]), "c0"),
            (.uint(UInt64(0)), "80"),
            (.bytes(Data([0x00])), "00"),
            (.uint(UInt64(15)), "0f"),
            (.uint(UInt64(127)), "7f"),
            (.uint(UInt64(128)), "8180"),
            (.uint(UInt64(1024)), "820400"),
            (.list([.list([]), .list([.list([])]), .list([.list([]), .list([.list([])])])]), "c7c0c1c0c3c0c1c0"),
            (
                .bytes(Data("Lorem ipsum dolor sit amet, consectetur adipisicing elit".utf8)),
                "b8384c6f72656d20697073756d20646f6c6f722073697420616d65742c20636f6e7365637465747572206164697069736963696e6720656c6974"
            ),
        ]
    )
    func encodings(item: RLP.Item, expected: String) throws {
        #expect(Hex.encode(RLP.encode(item)) == expected)
        #expect(try RLP.decode(hex(expected)) == item)
    }

    @Test("long strings and lists round trip")
    func longItems() throws {
        let blob = RLP.Item.bytes(Data(repeating: 0xaa, count: 70_000))
        let nested = RLP.Item.list(Array(repeating: blob, count: 3))
        #expect(try RLP.decode(RLP.encode(nested)) == nested)
        #expect(RLP.encode(blob).prefix(4) == Data([0xba, 0x01, 0x11, 0x70]))
    }

    @Test(
        "non-canonical or broken input is rejected",
        arguments: [
            ("", RLP.DecodingError.empty),
            ("8100", .nonCanonicalSingleByte),
            ("817f", .nonCanonicalSingleByte),
            ("b800", .nonCanonicalLength),
            ("b90001" + String(repeating: "00", count: 1), .nonCanonicalLength),
            ("83646f", .truncated),
            ("c883636174", .truncated),
            ("8080", .trailingBytes(1)),
            ("b8", .truncated),
        ]
    )
    func invalid(input: String, error: RLP.DecodingError) throws {
        let data = try hex(input)
        #expect(throws: error) { try RLP.decode(data) }
    }
}
