import BigInt
import ChainKit
import DevChain
import Foundation
import Testing

extension ChainSuites {
    /// devchain itself: determinism, java-tron and JSON-RPC wire shapes, the control API.
    @Suite struct DevChainNodeTests {
        @Test func everythingDerivesFromTheSeed() throws {
            let a = DevChain(options: DevChainOptions(seed: "alpha"))
            let b = DevChain(options: DevChainOptions(seed: "alpha"))
            let c = DevChain(options: DevChainOptions(seed: "beta"))
            #expect(a.evm.usdt == b.evm.usdt && a.tron.usdt == b.tron.usdt && a.keys.mnemonic == b.keys.mnemonic)
            #expect(a.evm.usdt != c.evm.usdt && a.tron.usdt != c.tron.usdt)
            for chain in [a, b, c] {
                try chain.evm.transferUSDT([(account(1), 5)])
                try chain.tron.transferUSDT([(account(1), 5)])
            }
            // Block hashes also cover the time, which follows the wall clock: equal seeds need not give equal hashes.
            #expect(a.evm.blockHash(1) != c.evm.blockHash(1) && a.tron.blockID(1) != c.tron.blockID(1))
        }

        /// java-tron checks `expiration` against the head block's time, and clients (tronpy, TronWeb, wallets) stamp it
        /// from their own clock: a chain frozen in the past refused them all with "Transaction expired".
        @Test func tronTimeFollowsTheWallClockSoAWallClockStampedTransactionIsAccepted() async throws {
            try await Node.with { (node: DevChain, url: String) async throws in
                let start = DevChainClock.wallMillis()
                #expect(abs(node.tron.headReference().timestampMillis - start) < 5_000, "genesis is now")
                let key = node.keys.tronKey(DevChainKeys.firstDevAccountIndex)
                // Blocks as time passes (mined by slot, 25 would put the head 75 s ahead of the wall clock).
                try await Node.blocking { node.tron.mine(25, clock: .wall) }
                // The reference block as tronpy takes it: getnodeinfo's solidityBlock, "Num:N,ID:hex".
                let (_, nodeInfo) = try await Node.post(url, "/wallet/getnodeinfo", "")
                let (_, solid) = try await Node.post(url, "/walletsolidity/getnowblock", "")
                let solidID = try #require(solid["blockID"]?.stringValue)
                #expect(nodeInfo["solidityBlock"]?.stringValue == "Num:6,ID:\(solidID)", "25 blocks, solidified 19 below")
                #expect(nodeInfo["block"]?.stringValue?.hasPrefix("Num:25,ID:") == true)
                let reference = try TronReferenceBlock(blockID: solidID)
                let now = DevChainClock.wallMillis()
                let raw = try TronRawData.trxTransfer(
                    from: TronAddress(publicKey: key.publicKey), to: account(5).tronAddress, amount: TronClientTests.trx,
                    reference: reference, expiration: now + 60_000, timestamp: now)
                let tx = try TronTransaction(rawData: raw).signed(with: key)
                let client = Node.tron(url)
                try await client.broadcast(tx.serialized())
                #expect(try await client.transactionStatus(Hex.encode(tx.txID)) != .notFound, "automined at once")
                let (_, info) = try await Node.get(url, "/devchain/info")
                let chainTime = try #require(info["time_ms"]?.int64Value)
                #expect(abs(chainTime - DevChainClock.wallMillis()) < 5_000)
            }
        }

        @Test func timedBlocksKeepTheWallClockAndAnExplicitMineMovesTimeASlotPerBlock() async throws {
            try await Node.with(DevChainOptions(automine: false, blockInterval: .milliseconds(20), devAccounts: 1)) { (node: DevChain, _: String) in
                // 25 timed blocks: at a slot each they would be 75 s (TRON) and 300 s (EVM) ahead of the wall clock.
                let deadline = ContinuousClock.now + .seconds(30)
                while node.tron.height < 25 || node.evm.height < 25 {
                    guard ContinuousClock.now < deadline else { Issue.record("no timed blocks"); return }
                    try await Task.sleep(for: .milliseconds(20))
                }
                let tronHead = node.tron.headReference().timestampMillis
                #expect(abs(tronHead - DevChainClock.wallMillis()) < 5_000, "TRON head time \(tronHead) follows the wall clock")
                #expect(abs(Int64(node.evm.headTimestamp) - DevChainClock.wallMillis() / 1000) < 30, "EVM head time follows the wall clock")
                let before = node.tron.headReference().timestampMillis
                try await Node.blocking { node.tron.mine(20) }
                #expect(node.tron.headReference().timestampMillis >= before + 60_000, "20 mined blocks are 60 s of TRON time")
            }
        }

        @Test func genesisTimeSetsWhereTheClockStarts() async throws {
            let genesis: Int64 = 1_767_225_600_000  // 2026-01-01T00:00:00Z
            let node = DevChain(options: DevChainOptions(devAccounts: 1, genesisTimeMillis: genesis))
            #expect(node.tron.headReference().timestampMillis == genesis)
            node.tron.mine(clock: .wall)
            let next = node.tron.headReference().timestampMillis
            #expect(next > genesis && next < genesis + 5_000, "the clock runs on from the genesis time, not from today")
        }

        @Test func tronBlocksAreJavaTronShaped() async throws {
            try await Node.with { (node: DevChain, url: String) async throws in
                try await Node.blocking { try node.tron.transferUSDT([(account(1), 5), (account(2), 6), (account(3), 7)]) }
                try await Node.blocking { node.tron.mine() }
                // visible is read from the query string only by getnowblock: a JSON body's visible is ignored.
                let (_, hexHead) = try await Node.post(url, "/wallet/getnowblock", #"{"visible":true}"#)
                #expect(hexHead["block_header"]?["raw_data"]?["witness_address"]?.stringValue?.hasPrefix("41") == true)
                #expect(hexHead["transactions"] == nil, "an empty block has no transactions key")
                let (_, visibleHead) = try await Node.post(url, "/wallet/getnowblock?visible=true", "")
                #expect(visibleHead["block_header"]?["raw_data"]?["witness_address"]?.stringValue?.hasPrefix("T") == true)

                let (_, block) = try await Node.post(url, "/wallet/getblockbynum", #"{"num":1}"#)
                let raw = try #require(block["block_header"]?["raw_data"])
                let header = TronBlockHeader(
                    number: try #require(raw["number"]?.int64Value),
                    timestamp: try #require(raw["timestamp"]?.int64Value),
                    txTrieRoot: try Hex.decode(raw["txTrieRoot"]?.stringValue ?? ""),
                    parentHash: try Hex.decode(raw["parentHash"]?.stringValue ?? ""),
                    witness: try TronAddress(hex: raw["witness_address"]?.stringValue ?? ""),
                    version: Int32(raw["version"]?.int64Value ?? 0)
                )
                #expect(Hex.encode(header.blockID) == block["blockID"]?.stringValue)
                let signature = try Secp256k1.RecoverableSignature(
                    rsv: try Hex.decode(block["block_header"]?["witness_signature"]?.stringValue ?? "")
                )
                #expect(TronAddress(publicKey: try signature.recoverPublicKey(hash: header.rawHash)) == header.witness)
                let txs = try #require(block["transactions"]?.arrayValue)
                #expect(txs.count == 3)
                let leaves = try txs.map { tx in
                    try TronTransaction(nodeJSON: tx, visible: false).merkleLeaf(contractRet: tx["ret"]?[0]?["contractRet"]?.stringValue)
                }
                #expect(TronBlockHeader.txTrieRoot(leaves: leaves) == header.txTrieRoot)
                #expect(txs[0]["raw_data_hex"]?.stringValue == Hex.encode(try TronTransaction(nodeJSON: txs[0], visible: false).rawDataBytes))

                let (_, zero) = try await Node.post(url, "/wallet/gettransactioninfobyblocknum", #"{"num":0}"#)
                #expect(zero == .object([]))
                let (_, beyond) = try await Node.post(url, "/wallet/gettransactioninfobyblocknum", #"{"num":99}"#)
                #expect(beyond == .array([]))
                let (_, infos) = try await Node.post(url, "/wallet/gettransactioninfobyblocknum", #"{"num":1}"#)
                let log = try #require(infos[0]?["log"]?[0])
                #expect(log["address"]?.stringValue == node.tron.usdt.hex, "log addresses are 20 bytes without 41")
                #expect(infos[0]?["contract_address"]?.stringValue == node.tron.usdt.tronAddress.hex)
                #expect(infos[0]?["receipt"]?["result"]?.stringValue == "SUCCESS")
                let (_, solid) = try await Node.post(url, "/walletsolidity/getblockbynum", #"{"num":1}"#)
                #expect(solid == .object([]), "block 1 is not solidified 19 blocks deep")
                let (_, unknown) = try await Node.post(url, "/wallet/getaccount", #"{"address":"41a614f803b6fd780986a42c78ec9c7f77e6ded13c"}"#)
                #expect(unknown == .object([]))
                let (_, parseError) = try await Node.post(url, "/wallet/getaccount", #"{"address":"TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"}"#)
                #expect(parseError["Error"]?.stringValue?.contains("INVALID hex String") == true, "base58 without visible=true")
            }
        }

        @Test func tronBroadcastAnswerShapes() async throws {
            try await Node.with { (node: DevChain, url: String) async throws in
                let key = node.keys.tronKey(DevChainKeys.firstDevAccountIndex)
                let good = try TronClientTests.trxTransfer(node, key: key, to: account(4), amount: 1_000_000)
                let (_, ok) = try await Node.post(url, "/wallet/broadcasttransaction", good.broadcastJSON().description)
                #expect(ok == .object(["result": .bool(true), "txid": .string(Hex.encode(good.txID))]), "success has no code")
                let (_, dup) = try await Node.post(url, "/wallet/broadcasttransaction", good.broadcastJSON().description)
                #expect(dup["result"] == nil, "failure has no result key")
                #expect(dup["code"]?.stringValue == "DUP_TRANSACTION_ERROR")
                #expect(dup["message"]?.stringValue == Hex.encode(Array("Dup transaction.".utf8)), "message is hex unless visible")
                let (_, visibleDup) = try await Node.post(url, "/wallet/broadcasttransaction", good.broadcastJSON(visible: true).description)
                #expect(visibleDup["message"]?.stringValue == "Dup transaction.")
                let (_, hex) = try await Node.post(url, "/wallet/broadcasthex", #"{"transaction":"\#(Hex.encode(good.serialized()))"}"#)
                #expect(
                    hex["result"]?.boolValue == false && hex["code"]?.stringValue == "DUP_TRANSACTION_ERROR"
                        && hex["message"]?.stringValue == "Dup transaction."
                )
                #expect(hex["transaction"]?.stringValue.map { (try? JSONValue.parse($0))?["txID"]?.stringValue } == Hex.encode(good.txID))
            }
        }

        @Test func jsonRPCEnvelopes() async throws {
            try await Node.with { (_: DevChain, url: String) async throws in
                let (_, parse) = try await Node.post(url, "/", "{not json")
                #expect(
                    parse
                        == .object([
                            "jsonrpc": .string("2.0"), "id": .null, "error": .object(["code": .int(-32700), "message": .string("parse error")]),
                        ])
                )
                let (_, empty) = try await Node.post(url, "/", "[]")
                #expect(empty["error"]?["code"] == .int(-32600))
                let (status, notification) = try await Node.post(url, "/", #"{"jsonrpc":"2.0","method":"eth_blockNumber"}"#)
                #expect(status == 200 && notification == .null, "no answer to a notification")
                let (_, batch) = try await Node.post(
                    url,
                    "/",
                    #"[{"jsonrpc":"2.0","id":"a","method":"eth_chainId"},{"jsonrpc":"2.0","id":7,"method":"eth_getBalance","params":["0x12"]}]"#
                )
                #expect(batch[0] == .object(["jsonrpc": .string("2.0"), "id": .string("a"), "result": .string("0x539")]))
                #expect(batch[1]?["error"]?["code"] == .int(-32602))
            }
        }

        @Test func controlAPIOverHTTP() async throws {
            try await Node.with { (node: DevChain, url: String) async throws in
                let a = ChainKind.evm.format(account(5))
                let (fundStatus, fund) = try await Node.post(url, "/devchain/evm/fund", #"{"address":"\#(a)","amount":"1000000000000000000"}"#)
                #expect(fundStatus == 200 && fund["height"] == .int(1))
                let (_, usdt) = try await Node.post(
                    url,
                    "/devchain/evm/usdt",
                    #"{"transfers":[{"to":"\#(a)","amount":1},{"to":"\#(a)","amount":"2"}]}"#
                )
                #expect(usdt["txs"]?.arrayValue?.count == 2 && usdt["height"] == .int(2))
                let (_, balance) = try await Node.get(url, "/devchain/evm/balance?address=\(a)")
                #expect(balance == .object(["native": .string("1000000000000000000"), "usdt": .string("3")]))
                let (_, mined) = try await Node.post(url, "/devchain/mine", #"{"blocks":3}"#)
                #expect(mined == .object(["evm_height": .int(5), "tron_height": .int(3)]))
                let (_, reorg) = try await Node.post(url, "/devchain/tron/reorg", #"{"depth":2}"#)
                #expect(reorg["replaced"]?.arrayValue?.count == 2)
                let (_, faults) = try await Node.post(url, "/devchain/faults", #"{"mode":"http500","count":2,"scope":"tron"}"#)
                #expect(faults["faults_pending"] == .int(2))
                let (failedStatus, failedBody) = try await Node.post(url, "/wallet/getnowblock", "")
                #expect(failedStatus == 500 && failedBody == .string("Internal Server Error\n"))
                _ = try await Node.post(url, "/devchain/faults/clear", "")
                #expect(node.faults.pending == 0)
                let (badStatus, bad) = try await Node.post(url, "/devchain/evm/fund", #"{"address":"TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t","amount":1}"#)
                #expect(badStatus == 400 && bad["error"]?.stringValue?.contains("invalid evm address") == true)
                let (_, info) = try await Node.get(url, "/devchain/info")
                #expect(info["evm"]?["usdt"]?.stringValue == ChainKind.evm.format(node.evm.usdt))
                #expect(info["tron"]?["usdt"]?.stringValue == ChainKind.tron.format(node.tron.usdt))
            }
        }
    }
}
