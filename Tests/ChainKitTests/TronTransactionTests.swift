import BigInt
import ChainKit
import Foundation
import Testing

private struct TronTxFile: Decodable {
    struct Key: Decodable {
        let name: String
        let private_key: String
        let public_key_uncompressed: String
        let address: String
        let address_hex: String
        let evm_style_address: String
    }
    struct RawJSON: Decodable {
        let timestamp: Int64
        let expiration: Int64
        let ref_block_bytes: String
        let ref_block_hash: String
        let fee_limit: Int64?
    }
    struct Transaction: Decodable {
        let name: String
        let private_key: String
        let owner_address: String
        let to_address: String
        let contract_address: String?
        let amount: UInt64?
        let amount_sun: Int64?
        let data: String?
        let raw_data_json: RawJSON
        let raw_data_hex: String
        let txID: String
        let signature: String
        let signature_v27: String
    }
    let ref_block_id: String
    let keys: [Key]
    let transactions: [Transaction]

    static func load() throws -> TronTxFile {
        try Vectors.load(TronTxFile.self, from: "tron_tx.json")
    }
}

@Suite("TRON transactions")
struct TronTransactionTests {
    @Test("keys → public key, base58, hex and EVM-style addresses")
    func keys() throws {
        let file = try TronTxFile.load()
        #expect(file.keys.count == 2)
        for key in file.keys {
            let pub = try Secp256k1.PrivateKey(hex: key.private_key).publicKey
            #expect(Hex.encode(pub.uncompressed) == key.public_key_uncompressed)
            let address = TronAddress(publicKey: pub)
            #expect(address.base58 == key.address)
            #expect(address.hex == key.address_hex)
            #expect(address.evmAddress.lowercased == key.evm_style_address)
            #expect(try TronAddress(key.address) == address)
        }
    }

    @Test("every transaction: built raw_data bytes, txID, signature (v=0/1 and 27/28), decode and signer recovery")
    func transactions() throws {
        let file = try TronTxFile.load()
        #expect(file.transactions.count == 4)
        let reference = try TronReferenceBlock(blockID: file.ref_block_id)
        for v in file.transactions {
            let json = v.raw_data_json
            #expect(Hex.encode(reference.refBlockBytes) == json.ref_block_bytes)
            #expect(Hex.encode(reference.refBlockHash) == json.ref_block_hash)
            let owner = try TronAddress(v.owner_address)
            let to = try TronAddress(v.to_address)
            let raw: TronRawData
            if let contract = v.contract_address {
                let amount = BigUInt(try #require(v.amount))
                raw = try .trc20Transfer(
                    from: owner,
                    token: TronAddress(contract),
                    to: to,
                    amount: amount,
                    feeLimit: try #require(json.fee_limit),
                    reference: reference,
                    expiration: json.expiration,
                    timestamp: json.timestamp
                )
                guard case .triggerSmartContract(let call) = raw.contract else { throw TronTransactionError.invalidField("kind") }
                #expect(Hex.encode(call.data) == v.data)
                #expect(call.trc20Transfer?.to == to)
                #expect(call.trc20Transfer?.amount == amount)
            } else {
                #expect(json.fee_limit == nil)
                raw = try .trxTransfer(
                    from: owner,
                    to: to,
                    amount: try #require(v.amount_sun),
                    reference: reference,
                    expiration: json.expiration,
                    timestamp: json.timestamp
                )
            }
            #expect(Hex.encode(raw.serialized()) == v.raw_data_hex, "\(v.name)")
            #expect(Hex.encode(raw.txID) == v.txID, "\(v.name)")

            let key = try Secp256k1.PrivateKey(hex: v.private_key)
            let signed = try TronTransaction(rawData: raw).signed(with: key)
            #expect(signed.signatures.map { Hex.encode($0) } == [v.signature], "\(v.name)")
            let signature = try Secp256k1.RecoverableSignature(rsv: hex(v.signature))
            #expect(Hex.encode(signature.rsvOffset27) == v.signature_v27)
            #expect(signature.isLowS)
            #expect(key.publicKey.isValidSignature(signature, hash: raw.txID))

            // The dev node's path: raw_data_hex + signatures in, decoded fields and signer out.
            for sig in [v.signature, v.signature_v27] {
                let received = try TronTransaction(rawDataBytes: hex(v.raw_data_hex), signatures: [hex(sig)])
                #expect(received.rawData == raw)
                #expect(Hex.encode(received.txID) == v.txID)
                #expect(try received.recoverSigners() == [owner])
                #expect(try TronTransaction(serialized: received.serialized()) == received)
            }
        }
    }

    @Test("tronpy offline TransferContract vector (tron-http-api.md §11.6 B)")
    func tronpyVector() throws {
        let rawHex =
            "0a0264312208212a13dbe72ac5c040e381a7dcfc325a65080112610a2d747970652e676f6f676c65617069732e636f6d2f70726f746f636f6c2e5472616e73666572436f6e747261637412300a154194a15629b2b2bbd3a5453e6d6696b2875278633b1215413c9b65b212316904572826240224750eccce29a218017083ada3dcfc32"
        let raw = try TronRawData(
            refBlockBytes: hex("6431"),
            refBlockHash: hex("212a13dbe72ac5c0"),
            expiration: 1_751_466_492_131,
            timestamp: 1_751_466_432_131,
            contract: .transfer(
                TronTransferContract(
                    owner: TronAddress(hex: "4194a15629b2b2bbd3a5453e6d6696b2875278633b"),
                    to: TronAddress(hex: "413c9b65b212316904572826240224750eccce29a2"),
                    amount: 1
                )
            )
        )
        #expect(Hex.encode(raw.serialized()) == rawHex)
        #expect(Hex.encode(raw.txID) == "c93cdd6b4d9f5b3c617060ea0a9c7b6080d9855f599cc987f69105a5e3e9c9b4")
        #expect(try TronRawData(serialized: hex(rawHex)) == raw)
    }

    @Test("USDT transfer with a real reference block, signed by key 0x88…88 (tron-http-api.md §11.6 C)")
    func documentedVectorC() throws {
        let key = try Secp256k1.PrivateKey(hex: String(repeating: "88", count: 32))
        let owner = TronAddress(publicKey: key.publicKey)
        #expect(owner.base58 == "TJzXt1sZautjqXnpjQT4xSCBHNSYgBkDr3")
        let reference = try TronReferenceBlock(blockID: "0000000003a215e0d301f759c7d2a775" + String(repeating: "00", count: 16))
        #expect(reference.number == 60_954_080)
        let raw = try TronRawData.trc20Transfer(
            from: owner,
            token: TronAddress("TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"),
            to: TronAddress("TVjsyZ7fYF3qLF6BQgPmTEZy1xrNNyVAAA"),
            amount: 1_000_000,
            feeLimit: 100_000_000,
            reference: reference,
            expiration: 1_713_504_669_000 + 60_000,
            timestamp: 1_713_504_669_000
        )
        let rawHex =
            "0a0215e02208d301f759c7d2a77540a8efdca6ef315aae01081f12a9010a31747970652e676f6f676c65617069732e636f6d2f70726f746f636f6c2e54726967676572536d617274436f6e747261637412740a154162f94e9ac9349bccc61bfe66ddade6292702ecb6121541a614f803b6fd780986a42c78ec9c7f77e6ded13c2244a9059cbb000000000000000000000000d8dd39e2dea27a40001884901735e3940829bb4400000000000000000000000000000000000000000000000000000000000f424070c89ad9a6ef31900180c2d72f"
        let signatureHex =
            "cb6ff59f63848d6bac8b9203916e7d490c14f7d77e1f052138d70f8898323b9b77bae0fd280db1ada47a1aed0dcf52e22857ca061a8a38cceff614e11b1b901b01"
        #expect(Hex.encode(raw.serialized()) == rawHex)
        #expect(Hex.encode(raw.txID) == "b24dbbb281ffb1bf41244f20cfd255e31010eeea68ad89f470696e0725996e6e")
        let signed = try TronTransaction(rawData: raw).signed(with: key)
        #expect(signed.signatures.map { Hex.encode($0) } == [signatureHex])
        // broadcasthex payload = 0a d301 ‖ raw_data ‖ 12 41 ‖ signature
        #expect(Hex.encode(signed.serialized()) == "0ad301" + rawHex + "1241" + signatureHex)
    }

    @Test("all 208 transactions of a real mainnet block decode, re-encode byte for byte and recover their owner")
    func mainnetBlock() throws {
        struct Fixtures: Decodable {
            struct Block: Decodable {
                struct Response: Decodable {
                    struct Tx: Decodable {
                        struct Raw: Decodable {
                            struct Contract: Decodable {
                                struct Parameter: Decodable {
                                    struct Value: Decodable {
                                        let owner_address: String?
                                        let to_address: String?
                                        let contract_address: String?
                                        let amount: Int64?
                                        let data: String?
                                    }
                                    let value: Value
                                    let type_url: String
                                }
                                let parameter: Parameter
                                let type: String
                                let Permission_id: Int?
                            }
                            let contract: [Contract]
                            let fee_limit: Int64?
                            let timestamp: Int64?
                            let expiration: Int64
                        }
                        let txID: String
                        let signature: [String]
                        let raw_data: Raw
                        let raw_data_hex: String
                    }
                    let transactions: [Tx]
                }
                let response: Response
            }
            let getnowblock_mainnet_60954080_trc20: Block
        }
        let block = try Vectors.load(Fixtures.self, from: "tron_node_fixtures.json").getnowblock_mainnet_60954080_trc20.response
        #expect(block.transactions.count == 208)
        var modelled = 0
        var recovered = 0
        var trc20 = 0
        for tx in block.transactions {
            let received = try TronTransaction(rawDataBytes: hex(tx.raw_data_hex), signatures: tx.signature.map { try hex($0) })
            #expect(Hex.encode(received.txID) == tx.txID)
            #expect(Hex.encode(received.rawData.serialized()) == tx.raw_data_hex, "\(tx.txID)")
            let json = tx.raw_data.contract[0]
            #expect(received.rawData.contract.typeURL == json.parameter.type_url)
            #expect(received.rawData.expiration == tx.raw_data.expiration)
            #expect(received.rawData.timestamp == tx.raw_data.timestamp ?? 0)
            #expect(received.rawData.feeLimit == tx.raw_data.fee_limit ?? 0)
            #expect(Int(received.rawData.permissionID) == json.Permission_id ?? 0)
            switch received.rawData.contract {
            case .transfer(let c):
                #expect(json.type == "TransferContract")
                #expect(c.owner.hex == json.parameter.value.owner_address)
                #expect(c.to.hex == json.parameter.value.to_address)
                #expect(c.amount == json.parameter.value.amount)
                modelled += 1
            case .triggerSmartContract(let c):
                #expect(json.type == "TriggerSmartContract")
                #expect(c.owner.hex == json.parameter.value.owner_address)
                #expect(c.contract.hex == json.parameter.value.contract_address)
                #expect(Hex.encode(c.data) == json.parameter.value.data)
                if c.trc20Transfer != nil { trc20 += 1 }
                modelled += 1
            case .other:
                #expect(json.type != "TransferContract" && json.type != "TriggerSmartContract")
            }
            // Owner-permission transactions are signed by the owner.
            if tx.signature.count == 1, (json.Permission_id ?? 0) == 0, let owner = json.parameter.value.owner_address {
                #expect(try received.recoverSigners().map(\.hex) == [owner], "\(tx.txID)")
                recovered += 1
            }
        }
        #expect(modelled == 148)
        #expect(trc20 > 0)
        #expect(recovered > 150)
    }

    @Test("malformed raw data is rejected")
    func invalidRawData() throws {
        let file = try TronTxFile.load()
        let good = try TronRawData(serialized: hex(file.transactions[3].raw_data_hex))
        // Two contracts, and none.
        var two = ProtobufWriter()
        two.bytes(1, good.refBlockBytes)
        two.bytes(4, good.refBlockHash)
        let contractField = try #require(try extractField(11, from: good.serialized()))
        two.bytes(11, contractField)
        two.bytes(11, contractField)
        #expect(throws: TronTransactionError.contractCount(2)) { try TronRawData(serialized: two.data) }
        #expect(throws: TronTransactionError.contractCount(0)) { try TronRawData(serialized: Data([0x0a, 0x02, 0x0b, 0x80])) }
        // A TransferContract type with the TriggerSmartContract type URL.
        var wrongURL = ProtobufWriter()
        wrongURL.bytes(1, good.refBlockBytes)
        wrongURL.bytes(4, good.refBlockHash)
        wrongURL.message(11) { c in
            c.varint(1, 1)
            c.message(2) { any in
                any.bytes(1, Data(TronContract.triggerSmartContractTypeURL.utf8))
                any.bytes(2, good.contract.valueBytes)
            }
        }
        #expect(throws: TronTransactionError.self) { try TronRawData(serialized: wrongURL.data) }
        // Truncated bytes.
        let bytes = good.serialized()
        #expect(throws: TronTransactionError.protobuf(.truncated)) { try TronRawData(serialized: bytes.dropLast()) }
        // Reference fields of the wrong size.
        #expect(throws: TronTransactionError.self) {
            try TronRawData(refBlockBytes: Data(count: 3), refBlockHash: Data(count: 8), expiration: 1, timestamp: 1, contract: good.contract)
        }
        #expect(throws: TronTransactionError.self) { try TronReferenceBlock(blockID: "00") }
        #expect(throws: TronTransactionError.invalidField("missing raw_data")) { try TronTransaction(serialized: Data([0x12, 0x00])) }
        let owner = try TronAddress(file.keys[0].address)
        #expect(throws: TronTransactionError.invalidField("amount must be positive")) {
            try TronRawData.trxTransfer(
                from: owner,
                to: owner,
                amount: 0,
                reference: TronReferenceBlock(blockID: file.ref_block_id),
                expiration: 1,
                timestamp: 1
            )
        }
        #expect(throws: TronTransactionError.invalidField("amount exceeds uint256")) {
            try TronRawData.trc20Transfer(
                from: owner,
                token: owner,
                to: owner,
                amount: BigUInt(1) << 256,
                feeLimit: 1,
                reference: TronReferenceBlock(blockID: file.ref_block_id),
                expiration: 1,
                timestamp: 1
            )
        }
    }

    @Test("memo, permission id and non-default TriggerSmartContract fields survive a round trip")
    func optionalFields() throws {
        let file = try TronTxFile.load()
        let owner = try TronAddress(file.keys[0].address)
        let call = TronTriggerSmartContract(
            owner: owner,
            contract: owner,
            callValue: 5,
            data: Data([1, 2, 3]),
            callTokenValue: 7,
            tokenID: 1_000_001
        )
        let raw = try TronRawData(
            refBlockBytes: Data([1, 2]),
            refBlockHash: Data(count: 8),
            expiration: 1,
            timestamp: 0,
            feeLimit: 9,
            contract: .triggerSmartContract(call),
            permissionID: 2,
            memo: Data("order 42".utf8)
        )
        #expect(try TronRawData(serialized: raw.serialized()) == raw)
        let other = try TronRawData(
            refBlockBytes: Data([1, 2]),
            refBlockHash: Data(count: 8),
            expiration: 1,
            timestamp: 2,
            contract: .other(type: 57, typeURL: "type.googleapis.com/protocol.DelegateResourceContract", value: Data([0x08, 0x01]))
        )
        #expect(try TronRawData(serialized: other.serialized()) == other)
    }
}

/// The first length-delimited value of `field` in a message.
private func extractField(_ field: Int, from data: Data) throws -> Data? {
    var reader = ProtobufReader(data)
    while let (number, value) = try reader.next() {
        if number == field { return try value.bytes("field \(field)") }
    }
    return nil
}

@Suite("Protobuf")
struct ProtobufTests {
    @Test("varints, negative int64 and default omission match protobuf-java")
    func writer() throws {
        var w = ProtobufWriter()
        w.int64IfNonDefault(1, 0)
        w.bytesIfNonDefault(2, Data())
        #expect(w.data.isEmpty)
        w.int64IfNonDefault(1, 300)
        w.int64IfNonDefault(2, -1)
        w.bytes(18, Data([0xaa]))
        #expect(Hex.encode(w.data) == "08ac02" + "10ffffffffffffffffff01" + "9201" + "01aa")
        var r = ProtobufReader(w.data)
        #expect(try r.next()?.value == .varint(300))
        #expect(try r.next()?.value == .varint(UInt64(bitPattern: -1)))
        let next = try r.next()
        let last = try #require(next)
        #expect(last.field == 18)
        #expect(last.value == .lengthDelimited(Data([0xaa])))
        #expect(try r.next() == nil)
    }

    @Test(
        "reader rejects malformed input",
        arguments: [
            ("08", ProtobufError.truncated),
            ("0a05aabb", .truncated),
            ("08ffffffffffffffffffff01", .varintOverflow),
            ("0b", .unsupportedWireType(3, field: 1)),
            ("00", .invalidFieldNumber(0)),
        ]
    )
    func readerErrors(input: String, error: ProtobufError) throws {
        var reader = ProtobufReader(try hex(input))
        #expect(throws: error) {
            while try reader.next() != nil {}
        }
    }

    @Test("fixed-width wire types are read")
    func fixedWidth() throws {
        var reader = ProtobufReader(try hex("0901000000000000001502000000"))
        #expect(try reader.next()?.value == .fixed64(1))
        #expect(try reader.next()?.value == .fixed32(2))
    }
}
