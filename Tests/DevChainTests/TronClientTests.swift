import BigInt
import ChainKit
import DevChain
import Foundation
import Testing

extension ChainSuites {
    /// The TRON HTTP API client against devchain over real HTTP.
    @Suite struct TronClientTests {
        static let trx: Int64 = 1_000_000

        /// A signed TRX transfer referencing the node's head block.
        static func trxTransfer(
            _ node: DevChain,
            key: Secp256k1.PrivateKey,
            to: AccountID,
            amount: Int64,
            expirationOffset: Int64 = 60_000
        ) throws -> TronTransaction {
            let (reference, time) = node.tron.headReference()
            let raw = try TronRawData.trxTransfer(
                from: TronAddress(publicKey: key.publicKey),
                to: to.tronAddress,
                amount: amount,
                reference: reference,
                expiration: time + expirationOffset,
                timestamp: time
            )
            return try TronTransaction(rawData: raw).signed(with: key)
        }

        static func usdtTransfer(
            _ node: DevChain,
            key: Secp256k1.PrivateKey,
            to: AccountID,
            amount: BigUInt,
            feeLimit: Int64 = 100_000_000
        ) throws -> TronTransaction {
            let (reference, time) = node.tron.headReference()
            let raw = try TronRawData.trc20Transfer(
                from: TronAddress(publicKey: key.publicKey),
                token: node.tron.usdt.tronAddress,
                to: to.tronAddress,
                amount: amount,
                feeLimit: feeLimit,
                reference: reference,
                expiration: time + 60_000,
                timestamp: time
            )
            return try TronTransaction(rawData: raw).signed(with: key)
        }

        @Test func blockRefsCarryJavaTronBlockIDs() async throws {
            try await Node.with { (node: DevChain, url: String) async throws in
                try await Node.blocking { node.tron.mine(30) }
                let client = Node.tron(url)
                #expect(try await client.tipHeight() == 30)
                let refs = try await client.blockRefs(0...30)
                #expect(refs.map(\.number) == Array(0...30))
                for (parent, child) in zip(refs, refs.dropFirst()) { #expect(child.parentHash == parent.hash) }
                #expect(refs[17].hash == node.tron.blockID(17))
                #expect(refs[17].hash.hasPrefix("0000000000000011"), "the first 8 bytes of a blockID are the number")
                #expect(refs[2].timestampMillis - refs[1].timestampMillis == 3000)
                let missing = await expectNodeError { () throws(ChainNodeError) in try await client.blockRefs(30...31) }
                #expect(missing == .notFound(method: "getblockbynum", what: "block 31"))
                let nonce = await expectNodeError { () throws(ChainNodeError) in try await client.nonce(of: account(1)) }
                guard case .unsupported? = nonce else {
                    Issue.record("TRON has no nonce")
                    return
                }
            }
        }

        @Test func scanReportsOnlySuccessfulTransfersToWatchedAddresses() async throws {
            try await Node.with { (node: DevChain, url: String) async throws in
                let client = Node.tron(url)
                let (a, b, c) = (account(1), account(2), account(3))
                try await Node.blocking { try node.tron.transferUSDT([(a, 5_000_000), (c, 7_000_000), (b, 9_000_000)]) }
                try await Node.blocking { try node.tron.fund(a, amount: 2 * Self.trx) }
                try await Node.blocking { try node.tron.fund(c, amount: 2 * Self.trx) }
                // Two transfers that land in blocks but fail: out of energy (fee_limit too low), and a revert (no USDT).
                let rich = node.keys.tronKey(DevChainKeys.firstDevAccountIndex)
                let outOfEnergy = try await client.broadcast(Self.usdtTransfer(node, key: rich, to: b, amount: 1, feeLimit: 1000).serialized())
                let poorKey = try Secp256k1.PrivateKey(Data(repeating: 0x22, count: 32))
                try await Node.blocking { try node.tron.fund(AccountID(TronAddress(publicKey: poorKey.publicKey)), amount: 100 * Self.trx) }
                let reverted = try await client.broadcast(Self.usdtTransfer(node, key: poorKey, to: b, amount: 1).serialized())
                guard case .failed(let energyReceipt) = try await client.transactionStatus(outOfEnergy.txHash),
                    case .failed(let revertReceipt) = try await client.transactionStatus(reverted.txHash)
                else {
                    Issue.record("both transfers should have failed on chain")
                    return
                }
                #expect(energyReceipt.failureReason?.hasPrefix("OUT_OF_ENERGY") == true)
                #expect(energyReceipt.fee >= 1000, "the fee limit is burned")
                #expect(revertReceipt.failureReason == "REVERT: REVERT opcode executed")

                let tip = try await client.tipHeight()
                let scan = try await client.transfers(in: 1...tip, to: WatchedAddresses([a, b]), tokens: [node.tron.usdt], includeNative: true)
                #expect(scan.blocks.count == Int(tip))
                let summary = scan.transfers.map { "\($0.asset == .native ? "TRX" : "USDT") \($0.to) \($0.amount)" }
                #expect(summary == ["USDT \(a) 5000000", "USDT \(b) 9000000", "TRX \(a) 2000000"])
                #expect(scan.transfers[0].from == node.tron.treasury)
                #expect(scan.transfers[2].from == node.tron.faucet)
                #expect(scan.transfers[0].logIndex == 0 && scan.transfers[2].logIndex == nil)
                #expect(scan.transfers[0].blockHash == scan.blocks[0].hash)
                #expect(scan.transfers[0].txHash.count == 64 && !scan.transfers[0].txHash.hasPrefix("0x"))
            }
        }

        @Test func transactionsSignedWithChainKitMoveBalances() async throws {
            try await Node.with { (node: DevChain, url: String) async throws in
                let client = Node.tron(url)
                let key = node.keys.tronKey(DevChainKeys.firstDevAccountIndex)
                let sender = AccountID(TronAddress(publicKey: key.publicKey))
                let (x, y) = (account(4), account(5))
                #expect(try await client.nativeBalance(of: x) == NativeBalance(amount: 0, accountExists: false))
                guard case .tron(let nativeFee) = try await client.feeEstimate(.native(from: sender, to: x, amount: 3_000_000)) else {
                    Issue.record("a TRON fee estimate")
                    return
                }
                #expect(nativeFee.activationFee == 1_100_000, "sending TRX to a new address activates it")
                #expect(nativeFee.energy == 0)
                let before = try await client.nativeBalance(of: sender).amount
                let transfer = try Self.trxTransfer(node, key: key, to: x, amount: 3 * Self.trx)
                let sent = try await client.broadcast(transfer.serialized())
                #expect(sent == BroadcastResult(txHash: Hex.encode(transfer.txID), alreadyKnown: false))
                guard case .confirmed(let receipt) = try await client.transactionStatus(sent.txHash) else {
                    Issue.record("the TRX transfer should be confirmed")
                    return
                }
                #expect(receipt.fee == 1_100_000)
                #expect(try await client.nativeBalance(of: x) == NativeBalance(amount: 3_000_000, accountExists: true))
                #expect(try await client.nativeBalance(of: sender).amount == before - 3_000_000 - receipt.fee)
                #expect(try await client.broadcast(transfer.serialized()).alreadyKnown, "DUP_TRANSACTION_ERROR is not a failure")

                guard case .tron(let tokenFee) = try await client.feeEstimate(.token(token: node.tron.usdt, from: sender, to: y, amount: 2_500_000))
                else {
                    Issue.record("a TRON fee estimate")
                    return
                }
                #expect(tokenFee.energy > 100_000, "a first-time holder costs more energy: \(tokenFee.energy)")
                #expect(tokenFee.energyPrice == 100 && tokenFee.bandwidthPrice == 1000)
                #expect(tokenFee.bandwidthBytes > 300 && tokenFee.bandwidthBytes < 400)
                #expect(tokenFee.feeLimit == tokenFee.energy * 150)
                // The JSON broadcast path: java-tron re-encodes raw_data; the txid must come back unchanged.
                let usdt = try Self.usdtTransfer(node, key: key, to: y, amount: 2_500_000, feeLimit: Int64(tokenFee.feeLimit))
                let viaJSON = try await client.broadcastJSON(usdt)
                #expect(viaJSON.txHash == Hex.encode(usdt.txID))
                guard case .confirmed(let tokenReceipt) = try await client.transactionStatus(viaJSON.txHash) else {
                    Issue.record("the USDT transfer should be confirmed")
                    return
                }
                #expect(tokenReceipt.fee >= BigUInt(tokenFee.energy) * 100)
                #expect(try await client.tokenBalance(of: y, token: node.tron.usdt) == 2_500_000)
                #expect(try await client.nativeBalance(of: y).accountExists == false, "receiving USDT does not activate an account")
            }
        }

        @Test func invalidTransactionsAreRefusedWithTypedReasons() async throws {
            try await Node.with { (node: DevChain, url: String) async throws in
                let client = Node.tron(url)
                try await Node.blocking { node.tron.mine(2) }
                let key = node.keys.tronKey(DevChainKeys.firstDevAccountIndex)
                let x = account(6)
                let good = try Self.trxTransfer(node, key: key, to: x, amount: Self.trx)
                // Tampered: the amount is changed after signing.
                guard case .transfer(var contract) = good.rawData.contract else { return }
                contract.amount = 1000 * Self.trx
                var raw = good.rawData
                raw.contract = .transfer(contract)
                var tampered = TronTransaction(rawData: raw)
                tampered.signatures = good.signatures
                let sig = await expectNodeError { () throws(ChainNodeError) in try await client.broadcast(tampered.serialized()) }
                guard case .rejected(.invalidSignature(let message))? = sig else {
                    Issue.record("expected SIGERROR, got \(String(describing: sig))")
                    return
                }
                #expect(message.contains("is signed by"))
                // A reference block that is not on the chain.
                var forked = good.rawData
                forked.refBlockHash = Data(repeating: 7, count: 8)
                let forkedRaw = try TronTransaction(rawData: forked).signed(with: key).serialized()
                let tapos = await expectNodeError { () throws(ChainNodeError) in try await client.broadcast(forkedRaw) }
                #expect(tapos == .rejected(.referenceBlock("Tapos check error.")))
                let expiredRaw = try Self.trxTransfer(node, key: key, to: x, amount: Self.trx, expirationOffset: -1).serialized()
                let expired = await expectNodeError { () throws(ChainNodeError) in try await client.broadcast(expiredRaw) }
                #expect(expired == .rejected(.expired("Transaction expired")))
                let tooMuchRaw = try Self.trxTransfer(node, key: key, to: x, amount: 1_000_000_000 * Self.trx).serialized()
                let tooMuch = await expectNodeError { () throws(ChainNodeError) in try await client.broadcast(tooMuchRaw) }
                #expect(
                    tooMuch == .rejected(.insufficientFunds("Contract validate error : Validate TransferContract error, balance is not sufficient."))
                )
                let strangerKey = try Secp256k1.PrivateKey(Data(repeating: 0x33, count: 32))
                let strangerRaw = try Self.trxTransfer(node, key: strangerKey, to: x, amount: Self.trx).serialized()
                let unactivated = await expectNodeError { () throws(ChainNodeError) in try await client.broadcast(strangerRaw) }
                #expect(unactivated == .rejected(.validation("Contract validate error : Validate TransferContract error, no OwnerAccount.")))
                #expect(try await client.nativeBalance(of: x).accountExists == false)
                #expect(try await client.transactionStatus(Hex.encode(tampered.txID)) == .notFound)
            }
        }

        @Test func pendingTransactionsAreReportedAsPending() async throws {
            try await Node.with(DevChainOptions(automine: false, devAccounts: 1)) { (node: DevChain, url: String) async throws in
                let client = Node.tron(url)
                let key = node.keys.tronKey(DevChainKeys.firstDevAccountIndex)
                let tx = try Self.trxTransfer(node, key: key, to: account(7), amount: Self.trx)
                _ = try await client.broadcast(tx.serialized())
                #expect(try await client.transactionStatus(Hex.encode(tx.txID)) == .pending)
                try await Node.blocking { node.tron.mine() }
                guard case .confirmed(let receipt) = try await client.transactionStatus(Hex.encode(tx.txID)) else {
                    Issue.record("mined")
                    return
                }
                #expect(receipt.blockNumber == 1)
            }
        }

        @Test func failuresRetryHangsTimeOutNonsenseIsNamed() async throws {
            try await Node.with { (node: DevChain, url: String) async throws in
                node.faults.inject(.nodeError, count: 1, scope: .tron)
                node.faults.inject(.http500, count: 1, scope: .tron)
                #expect(try await Node.tron(url).tipHeight() == 0)
                #expect(node.faults.pending == 0)
                node.faults.inject(.nodeError, count: 3, scope: .tron)
                let limited = await expectNodeError { () throws(ChainNodeError) in try await Node.tron(url, attempts: 3).tipHeight() }
                #expect(
                    limited == .rateLimited(method: "getnowblock", message: "class java.lang.IllegalAccessException : lack of computing resources")
                )
                node.faults.inject(.hang, count: 2, scope: .tron, hang: .seconds(30))
                let hung = await expectNodeError { () throws(ChainNodeError) in
                    try await Node.tron(url, timeout: .milliseconds(300), attempts: 2).tipHeight()
                }
                #expect(hung == .timeout(method: "getnowblock", after: .milliseconds(300), attempts: 2))
                node.faults.inject(.malformed, count: 1, scope: .tron)
                let nonsense = await expectNodeError { () throws(ChainNodeError) in try await Node.tron(url).tipHeight() }
                guard case .malformedResponse("getnowblock", "body", let reason)? = nonsense else {
                    Issue.record("expected a malformed-answer error, got \(String(describing: nonsense))")
                    return
                }
                #expect(reason.contains("not JSON"))
            }
        }

        @Test func reorgReplacesBlockIDsAndCanDropTransactions() async throws {
            try await Node.with { (node: DevChain, url: String) async throws in
                let client = Node.tron(url)
                let a = account(8)
                try await Node.blocking { node.tron.mine(2) }
                try await Node.blocking { try node.tron.transferUSDT([(a, 42)]) }
                try await Node.blocking { node.tron.mine(2) }
                let before = try await client.blockRefs(0...5)
                _ = try await Node.blocking { try node.tron.reorg(depth: 3, dropTransactions: false) }
                let after = try await client.blockRefs(0...5)
                #expect(Array(after[0...2]) == Array(before[0...2]))
                for n in 3...5 { #expect(after[n].hash != before[n].hash, "block \(n) has a new id") }
                #expect(after[3].parentHash == before[2].hash)
                let kept = try await client.transfers(in: 1...5, to: WatchedAddresses([a]), tokens: [node.tron.usdt], includeNative: false)
                #expect(kept.transfers.map(\.blockHash) == [after[3].hash])
                _ = try await Node.blocking { try node.tron.reorg(depth: 3, dropTransactions: true) }
                let dropped = try await client.transfers(in: 1...5, to: WatchedAddresses([a]), tokens: [node.tron.usdt], includeNative: false)
                #expect(dropped.transfers.isEmpty)
                #expect(try await client.tokenBalance(of: a, token: node.tron.usdt) == 0)
            }
        }
    }
}
