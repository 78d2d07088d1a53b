import BigInt
import ChainKit
import Foundation
import Testing

/// The TRON client's parsing against real java-tron / TronGrid answers (`vectors/tron_node_fixtures.json`).
@Suite struct TronFixtureTests {
    /// Fixture name → captured response body, parsed with the client's own JSON parser (numbers stay exact).
    static let fixtures: [String: JSONValue] = {
        let url = Vectors.directory.appendingPathComponent("tron_node_fixtures.json")
        guard let data = FileManager.default.contents(atPath: url.path), let document = try? JSONValue.parse(data), let members = document.objectValue
        else {
            return [:]
        }
        var out: [String: JSONValue] = [:]
        for member in members { out[member.key] = member.value["response"] }
        return out
    }()

    static func fixture(_ name: String) throws -> JSONValue {
        guard let value = fixtures[name] else { throw Vectors.MissingVectors(path: "tron_node_fixtures.json: \(name)") }
        return value
    }

    static func tron(_ base58: String) throws -> AccountID { AccountID(try TronAddress(base58)) }

    @Test func mainnetBlockWith208Transactions() throws {
        let block = try TronNodeJSON.parseBlock(try Self.fixture("getnowblock_mainnet_60954080_trc20"), method: "getnowblock")
        #expect(block.ref.number == 60_954_080)
        #expect(block.ref.hash == "0000000003a215e0d301f759c7d2a7753a46547f39751b39b8cae3b3a05a7d6d")
        #expect(block.ref.parentHash == "0000000003a215df20f118d7944d5d2e1d7363c594dd3f3d88100d5a23a5a06a")
        #expect(block.ref.timestampMillis == 1_713_504_669_000)
        #expect(block.transactions.count == 208)
        #expect(
            Set(block.transactions.map(\.contractType)).isSuperset(of: [
                "TransferContract", "TriggerSmartContract", "TransferAssetContract", "CreateSmartContract",
            ])
        )
        let failed = block.transactions.filter { $0.contractRet != "SUCCESS" }
        #expect(failed.map { String($0.txID.prefix(8)) } == ["cd8029f5"])
        #expect(failed.first?.contractRet == "OUT_OF_ENERGY")
        // TRX deposits: every successful TransferContract (92 of them, 10,473.199855 TRX in all).
        let native = TronNodeJSON.nativeTransfers(block: block, watched: nil)
        #expect(native.count == 92)
        #expect(native.reduce(BigUInt(0)) { $0 + $1.amount } == 10_473_199_855)
        let first = try #require(native.first)
        #expect(first.txHash == "743ae3c91ad3d682d7a382a9bcd675284353d69ba56c299c4f3884fa369f8af9")
        #expect(first.to == AccountID(try TronAddress(hex: "41a84b6cb7fe2243416fb66be74bb80ee043ca9fb2")))
        #expect(first.amount == 400_000)
        // Watched filtering is exact.
        #expect(TronNodeJSON.nativeTransfers(block: block, watched: WatchedAddresses([first.to])).map(\.txHash).contains(first.txHash))
    }

    /// The block id formula devchain uses reproduces mainnet's and Nile's blocks, and so does its Merkle root.
    @Test func blockIDsAndTxTrieRootRecomputeFromCapturedBlocks() throws {
        for name in ["getnowblock_mainnet_60954080_trc20", "getnowblock_nile_empty_block"] {
            let json = try Self.fixture(name)
            let raw = try #require(json["block_header"]?["raw_data"])
            let header = TronBlockHeader(
                number: raw["number"]?.int64Value ?? 0,
                timestamp: try #require(raw["timestamp"]?.int64Value),
                txTrieRoot: try Hex.decode(try #require(raw["txTrieRoot"]?.stringValue)),
                parentHash: try Hex.decode(try #require(raw["parentHash"]?.stringValue)),
                witness: try TronAddress(hex: try #require(raw["witness_address"]?.stringValue)),
                version: Int32(try #require(raw["version"]?.int64Value))
            )
            #expect(Hex.encode(header.blockID) == json["blockID"]?.stringValue, "\(name)")
            // The witness signature over sha256(raw) recovers the witness address.
            let signature = try Secp256k1.RecoverableSignature(
                rsv: try Hex.decode(try #require(json["block_header"]?["witness_signature"]?.stringValue))
            )
            #expect(TronAddress(publicKey: try signature.recoverPublicKey(hash: header.rawHash)) == header.witness, "\(name)")
            let leaves = try (json["transactions"]?.arrayValue ?? []).map { tx in
                let signatures = try (tx["signature"]?.arrayValue ?? []).map { try Hex.decode($0.stringValue ?? "") }
                let transaction = try TronTransaction(rawDataBytes: try Hex.decode(tx["raw_data_hex"]?.stringValue ?? ""), signatures: signatures)
                #expect(Hex.encode(transaction.txID) == tx["txID"]?.stringValue)
                return transaction.merkleLeaf(contractRet: tx["ret"]?[0]?["contractRet"]?.stringValue)
            }
            #expect(TronBlockHeader.txTrieRoot(leaves: leaves) == header.txTrieRoot, "\(name)")
        }
    }

    @Test func emptyBlockHasNoTransactionsKey() throws {
        let json = try Self.fixture("getnowblock_nile_empty_block")
        #expect(json["transactions"] == nil)
        let block = try TronNodeJSON.parseBlock(json, method: "getnowblock")
        #expect(block.ref.number == 6_597_663)
        #expect(block.transactions.isEmpty)
    }

    @Test func usdtTransferInfoHexAndVisible() throws {
        let hex = try TronNodeJSON.parseTransactionInfo(
            try Self.fixture("gettransactioninfobyid_mainnet_usdt_transfer_hex"),
            method: "gettransactioninfobyid"
        )
        #expect(hex.succeeded && hex.receiptResult == "SUCCESS")
        #expect(hex.fee == 345_000 && hex.netFee == 345_000 && hex.energyUsageTotal == 64_285)
        let usdt = try Self.tron("TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t")
        #expect(hex.contractAddress == usdt)
        #expect(hex.logs.count == 1)
        #expect(hex.logs[0].address == usdt, "the 20-byte log address is USDT's")

        let visible = try TronNodeJSON.parseTransactionInfo(
            try Self.fixture("gettransactioninfobyid_mainnet_usdt_visible"),
            method: "gettransactioninfobyid"
        )
        #expect(visible.logs.first?.address == usdt, "base58 log addresses (visible=true) parse to the same id")
        #expect(visible.contractAddress == usdt)
        #expect(visible.energyFee == 27_255_900 && visible.fee == 27_600_900)
        let nile = try TronNodeJSON.parseTransactionInfo(
            try Self.fixture("gettransactioninfobyid_nile_trc20_visible"),
            method: "gettransactioninfobyid"
        )
        #expect(nile.succeeded && nile.logs.count == 1)
    }

    @Test func failedTransfersAreNotDeposits() throws {
        let ok = try TronNodeJSON.parseTransactionInfo(try Self.fixture("gettransactioninfobyid_mainnet_usdt_transfer_hex"), method: "m")
        let outOfEnergy = try TronNodeJSON.parseTransactionInfo(try Self.fixture("gettransactioninfobyid_mainnet_usdt_out_of_energy"), method: "m")
        #expect(!outOfEnergy.succeeded && outOfEnergy.failed && outOfEnergy.receiptResult == "OUT_OF_ENERGY")
        #expect(outOfEnergy.fee == 16_500_120 && outOfEnergy.logs.isEmpty)
        #expect(outOfEnergy.resMessage?.hasPrefix("Not enough energy for 'SSTORE' operation executing") == true)
        let usdt = try Self.tron("TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t")
        let (from, to) = (try Self.tron("TJoaVSdktrnndU4dmKm33SWMKoXt4LLFbU"), try Self.tron("TUikLT3nTTjTkXPAuC4xUGj84vfSERCWRn"))
        // One block holding both (numbers aligned): only the successful one is a deposit.
        let ref = BlockRef(
            number: ok.blockNumber,
            hash: String(repeating: "a", count: 64),
            parentHash: String(repeating: "b", count: 64),
            timestampMillis: 0
        )
        let block = TronBlock(
            ref: ref,
            transactions: [
                TronBlockTransaction(txID: ok.id, contractRet: "SUCCESS", contractType: "TriggerSmartContract", owner: from, trxTransfer: nil),
                TronBlockTransaction(
                    txID: outOfEnergy.id,
                    contractRet: "OUT_OF_ENERGY",
                    contractType: "TriggerSmartContract",
                    owner: from,
                    trxTransfer: nil
                ),
            ]
        )
        let failedInfo = try TronNodeJSON.parseTransactionInfo(
            try Self.retagged("gettransactioninfobyid_mainnet_usdt_out_of_energy", blockNumber: ok.blockNumber),
            method: "m"
        )
        let transfers = try TronNodeJSON.tokenTransfers(block: block, infos: [ok, failedInfo], watched: WatchedAddresses([to]), tokens: [usdt])
        #expect(
            transfers == [
                ObservedTransfer(
                    asset: .token(usdt),
                    txHash: ok.id,
                    logIndex: 0,
                    blockNumber: ok.blockNumber,
                    blockHash: ref.hash,
                    from: from,
                    to: to,
                    amount: 3_500_000
                )
            ]
        )
        #expect(try TronNodeJSON.tokenTransfers(block: block, infos: [ok], watched: WatchedAddresses([from]), tokens: [usdt]).isEmpty)
        #expect(
            try TronNodeJSON.tokenTransfers(block: block, infos: [ok], watched: nil, tokens: [try Self.tron("TJoaVSdktrnndU4dmKm33SWMKoXt4LLFbU")])
                .isEmpty,
            "only logs of the configured token count"
        )
        // A block whose contractRet says the call failed overrides a successful-looking info.
        let failedInBlock = TronBlock(
            ref: ref,
            transactions: [
                TronBlockTransaction(txID: ok.id, contractRet: "REVERT", contractType: "TriggerSmartContract", owner: from, trxTransfer: nil)
            ]
        )
        #expect(try TronNodeJSON.tokenTransfers(block: failedInBlock, infos: [ok], watched: nil, tokens: [usdt]).isEmpty)
        // An info of a transaction the block does not hold means the block changed under us.
        let otherBlock = TronBlock(ref: ref, transactions: [])
        #expect(throws: ChainNodeError.self) { try TronNodeJSON.tokenTransfers(block: otherBlock, infos: [ok], watched: nil, tokens: [usdt]) }
    }

    /// The out-of-energy fixture comes from another block; give it the successful one's block number.
    static func retagged(_ name: String, blockNumber: UInt64) throws -> JSONValue {
        guard case .object(var members) = try fixture(name) else { throw Vectors.MissingVectors(path: name) }
        for i in members.indices where members[i].key == "blockNumber" { members[i].value = .int(blockNumber) }
        return .object(members)
    }

    @Test func trxTransferInfoIsMinimal() throws {
        let info = try TronNodeJSON.parseTransactionInfo(try Self.fixture("gettransactioninfobyid_mainnet_trx_transfer"), method: "m")
        #expect(info.succeeded && info.fee == 0 && info.receiptResult == nil && info.logs.isEmpty && info.netUsage == 265)
        let nile = try TronNodeJSON.parseTransactionInfo(try Self.fixture("gettransactioninfobyid_nile_trx_transfer"), method: "m")
        #expect(nile.succeeded && nile.netUsage == 283)
    }

    @Test func visibleTransactionByID() throws {
        let json = try Self.fixture("gettransactionbyid_mainnet_usdt_visible")
        let tx = try TronNodeJSON.parseTransaction(json, method: "gettransactionbyid")
        #expect(tx.txID == "661f1df88ce02b746efe7449c3c7a04d6d21a7fc019723c92679228d8275ad57")
        #expect(tx.contractRet == "SUCCESS" && tx.contractType == "TriggerSmartContract")
        #expect(tx.owner == (try Self.tron("TP4MZM8iDVEfRbtbvcidqVQBt4SQ9Pfi8R")))
        // raw_data_hex hashes to the txID and the signature (v = 0) recovers the owner.
        let transaction = try TronTransaction(
            rawDataBytes: try Hex.decode(try #require(json["raw_data_hex"]?.stringValue)),
            signatures: [try Hex.decode(try #require(json["signature"]?[0]?.stringValue))]
        )
        #expect(Hex.encode(transaction.txID) == tx.txID)
        #expect(try transaction.recoverSigners().map(AccountID.init) == [tx.owner])
        // The calldata carries 41 inside the address word (§11.5): the recipient is the low 20 bytes.
        guard case .triggerSmartContract(let call) = transaction.rawData.contract else { return }
        #expect(call.trc20Transfer?.to == (try TronAddress(hex: "41dc2c107c0f8633d8236daa46d0e640e2c375f6ac")))
    }

    @Test func broadcastAnswers() throws {
        let ok = try TronNodeJSON.parseBroadcast(
            try Self.fixture("broadcasttransaction_success_nile"),
            expectedID: "5182b96bc0d74f416d6ba8e22380e5920d8627f8fb5ef5a6a11d4df030459132",
            hexMessage: true,
            method: "broadcasttransaction"
        )
        #expect(ok == BroadcastResult(txHash: "5182b96bc0d74f416d6ba8e22380e5920d8627f8fb5ef5a6a11d4df030459132", alreadyKnown: false))
        #expect(throws: ChainNodeError.rejected(.referenceBlock("Tapos check error"))) {
            try TronNodeJSON.parseBroadcast(
                try Self.fixture("broadcasttransaction_tapos_error"),
                expectedID: "5fecec5a6ae1f958859a07d83bdaafb202bebcf9e4cd7d39d3c88f5cfb03f587",
                hexMessage: true,
                method: "broadcasttransaction"
            )
        }
        #expect(throws: ChainNodeError.rejected(.referenceBlock("Tapos check error."))) {
            try TronNodeJSON.parseBroadcast(
                try Self.fixture("broadcasttransaction_tapos_error_shasta"),
                expectedID: "90e89ae750029eca100c7319a268b7859ebb3a4fd59388f2d4f16f71ec4dd139",
                hexMessage: true,
                method: "broadcasttransaction"
            )
        }
        // A txid that is not ours means the node re-encoded other bytes.
        #expect(throws: ChainNodeError.self) {
            try TronNodeJSON.parseBroadcast(
                try Self.fixture("broadcasttransaction_success_nile"),
                expectedID: String(repeating: "0", count: 64),
                hexMessage: true,
                method: "broadcasttransaction"
            )
        }
        let dup = JSONValue.object([
            "code": .string("DUP_TRANSACTION_ERROR"), "txid": .string(String(repeating: "1", count: 64)), "message": .string("447570"),
        ])
        #expect(try TronNodeJSON.parseBroadcast(dup, expectedID: String(repeating: "1", count: 64), hexMessage: true, method: "b").alreadyKnown)
        let busy = JSONValue.object(["code": .string("SERVER_BUSY"), "message": .string("")])
        #expect(throws: ChainNodeError.rateLimited(method: "b", message: "SERVER_BUSY ")) {
            try TronNodeJSON.parseBroadcast(busy, expectedID: String(repeating: "1", count: 64), hexMessage: true, method: "b")
        }
    }

    @Test func accountsActivatedOrNot() throws {
        let nile = try TronAddress(hex: "41dd791d6b49e190062d650e6a23c575510d35f2f9")
        #expect(
            try TronNodeJSON.parseAccount(try Self.fixture("getaccount_nile"), account: AccountID(nile))
                == NativeBalance(amount: 1_793_227_200, accountExists: true)
        )
        let fresh = try TronAddress(hex: "41c94f99b33185c922ca65f129d7c632293cfc2474")
        #expect(
            try TronNodeJSON.parseAccount(try Self.fixture("getaccount_unactivated"), account: AccountID(fresh))
                == NativeBalance(amount: 0, accountExists: false)
        )
        #expect(throws: ChainNodeError.self, "an answer about another account") {
            try TronNodeJSON.parseAccount(try Self.fixture("getaccount_nile"), account: AccountID(fresh))
        }
    }

    @Test func constantCallBalanceOf() throws {
        let contract = AccountID(try TronAddress(hex: "41eca9bc828a3005b9a3b909f2cc5c2a54794de05f"))
        let (result, energy) = try TronNodeJSON.parseConstantCall(
            try Self.fixture("triggerconstantcontract_balanceof_nile"),
            method: "m",
            contract: contract
        )
        #expect(BigUInt(result) == 1_087_360_000)
        #expect(energy == 935)
        let reverted = JSONValue.object([
            "result": .object(["result": .bool(true), "message": .string(Hex.encode(Array("REVERT opcode executed".utf8)))]),
            "transaction": .object(["ret": .array([.object(["ret": .string("FAILED")])])]), "constant_result": .array([.string("")]),
        ])
        #expect(throws: ChainNodeError.nodeError(method: "m", code: 0, message: "the call reverted: REVERT opcode executed")) {
            try TronNodeJSON.parseConstantCall(reverted, method: "m", contract: contract)
        }
    }

    /// java-tron re-encodes a JSON transaction; ours must produce the same bytes (else SIGERROR on broadcast).
    @Test func jsonTransactionReencodesToJavaTronBytes() throws {
        let json = try Self.fixture("createtransaction_nile")
        let tx = try TronTransaction(nodeJSON: json, visible: false)
        #expect(Hex.encode(tx.rawDataBytes) == json["raw_data_hex"]?.stringValue)
        #expect(Hex.encode(tx.txID) == json["txID"]?.stringValue)
        #expect(tx.nodeJSON(visible: false)["raw_data"] == json["raw_data"], "printing gives back java-tron's JSON")
    }

    @Test func malformedAnswersNameTheField() {
        #expect(
            throws: ChainNodeError.malformedResponse(
                method: "getblockbynum",
                field: "blockID",
                reason: "its first 8 bytes are not the block number 5"
            )
        ) {
            try TronNodeJSON.parseBlock(
                .object([
                    "blockID": .string(String(repeating: "0", count: 64)),
                    "block_header": .object([
                        "raw_data": .object([
                            "number": .int(5), "parentHash": .string(String(repeating: "0", count: 64)),
                        ])
                    ]),
                ]),
                method: "getblockbynum"
            )
        }
        #expect(throws: ChainNodeError.malformedResponse(method: "m", field: "info.blockNumber", reason: "expected a number, found a string")) {
            try TronNodeJSON.parseTransactionInfo(
                .object(["id": .string(String(repeating: "a", count: 64)), "blockNumber": .string("12")]),
                method: "m"
            )
        }
    }
}
