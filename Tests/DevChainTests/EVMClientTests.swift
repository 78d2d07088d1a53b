import BigInt
import ChainKit
import DevChain
import Foundation
import Testing

extension ChainSuites {
    /// The EVM JSON-RPC client against devchain over real HTTP.
    @Suite struct EVMClientTests {
        static let ether = BigUInt(10).power(18)

        @Test func blockRefsComeInBatchesAndChain() async throws {
            try await Node.with { (node: DevChain, url: String) async throws in
                try await Node.blocking { node.evm.mine(30) }
                let client = Node.evm(url, maxBatchSize: 10)
                #expect(try await client.tipHeight() == 30)
                #expect(try await client.chainID() == 1337)
                let refs = try await client.blockRefs(0...30)
                #expect(refs.map(\.number) == Array(0...30), "31 calls in 4 batches of at most 10")
                for (parent, child) in zip(refs, refs.dropFirst()) { #expect(child.parentHash == parent.hash) }
                #expect(refs[27].hash == node.evm.blockHash(27))
                #expect(refs[1].timestampMillis - refs[0].timestampMillis == 12_000)
                let missing = await expectNodeError { () throws(ChainNodeError) in try await client.blockRefs(29...31) }
                #expect(missing == .notFound(method: "eth_getBlockByNumber", what: "block 31"))
            }
        }

        @Test func scanReportsOnlySuccessfulTransfersToWatchedAddresses() async throws {
            try await Node.with { (node: DevChain, url: String) async throws in
                let (a, b, c) = (account(1), account(2), account(3))
                let client = Node.evm(url)
                try await Node.blocking { try node.evm.transferUSDT([(a, 5_000_000), (c, 7_000_000), (b, 9_000_000)]) }
                try await Node.blocking { try node.evm.fund(a, amount: Self.ether) }
                try await Node.blocking { try node.evm.fund(c, amount: Self.ether) }
                // A transfer that fails on chain: the sender has ETH for gas but no USDT.
                let poorKey = try Secp256k1.PrivateKey(Data(repeating: 0x11, count: 32))
                let poor = AccountID(EVMAddress(publicKey: poorKey.publicKey))
                try await Node.blocking { try node.evm.fund(poor, amount: Self.ether) }
                let failing = try EVMTransaction.eip1559(
                    .erc20Transfer(
                        chainID: 1337,
                        nonce: 0,
                        maxPriorityFeePerGas: 1_000_000_000,
                        maxFeePerGas: 3_000_000_000,
                        gasLimit: 100_000,
                        token: node.evm.usdt.evmAddress,
                        to: b.evmAddress,
                        amount: 1
                    )
                ).sign(with: poorKey)
                let sent = try await client.broadcast(failing.rawBytes)
                guard case .failed(let receipt) = try await client.transactionStatus(sent.txHash) else {
                    Issue.record("the transfer without funds should have failed on chain")
                    return
                }
                #expect(receipt.fee > 0)

                let tip = try await client.tipHeight()
                let scan = try await client.transfers(in: 1...tip, to: WatchedAddresses([a, b]), tokens: [node.evm.usdt], includeNative: true)
                #expect(scan.blocks.count == Int(tip))
                let summary = scan.transfers.map { "\($0.asset == .native ? "ETH" : "USDT") \($0.to) \($0.amount)" }
                #expect(summary == ["USDT \(a) 5000000", "USDT \(b) 9000000", "ETH \(a) \(Self.ether)"])
                let first = try #require(scan.transfers.first)
                #expect(first.from == node.evm.treasury)
                #expect(first.logIndex == 0)
                #expect(first.blockHash == scan.blocks.first { $0.number == first.blockNumber }?.hash)
                #expect(scan.transfers[1].logIndex == 2, "logIndex counts every log of the block")
                #expect(scan.transfers[2].logIndex == nil)
                // Tokens only: the native transfer is not reported.
                let tokensOnly = try await client.transfers(in: 1...tip, to: WatchedAddresses([a, b]), tokens: [node.evm.usdt], includeNative: false)
                #expect(tokensOnly.transfers.count == 2)
            }
        }

        @Test func aRefusedLogRangeIsSplit() async throws {
            try await Node.with { (node: DevChain, url: String) async throws in
                let a = account(4)
                try await Node.blocking { for i in 1...10 { try node.evm.transferUSDT([(a, BigUInt(i))]) } }
                node.evm.setLogLimits(maxRange: 3, maxResults: nil)
                let client = Node.evm(url, maxLogBlockRange: 100)
                let refused = await expectNodeError { () throws(ChainNodeError) in
                    try await client.call("eth_getLogs", [.object(["fromBlock": .string("0x1"), "toBlock": .string("0xa")])])
                }
                #expect(refused == .nodeError(method: "eth_getLogs", code: -32005, message: "block range is too wide (data: {\"maxBlockRange\":3})"))
                let scan = try await client.transfers(in: 1...10, to: WatchedAddresses([a]), tokens: [node.evm.usdt], includeNative: false)
                #expect(scan.transfers.map(\.amount) == (1...10).map { BigUInt($0) })
            }
        }

        @Test func tooManyLogsInOneBlockIsAClearError() async throws {
            try await Node.with { (node: DevChain, url: String) async throws in
                let a = account(5)
                try await Node.blocking { try node.evm.transferUSDT([(a, 1), (a, 2), (a, 3)]) }
                node.evm.setLogLimits(maxRange: nil, maxResults: 2)
                let error = await expectNodeError { () throws(ChainNodeError) in
                    try await Node.evm(url).transfers(in: 1...1, to: WatchedAddresses([a]), tokens: [node.evm.usdt], includeNative: false)
                }
                guard case .rangeTooWide(let method, 1, 1, let message)? = error else {
                    Issue.record("expected rangeTooWide, got \(String(describing: error))")
                    return
                }
                #expect(method == "eth_getLogs")
                #expect(message.contains("more than 2 results"))
            }
        }

        @Test func nodeErrorObjectsAreTyped() async throws {
            try await Node.with { (_: DevChain, url: String) async throws in
                let client = Node.evm(url)
                let missing = await expectNodeError { () throws(ChainNodeError) in try await client.call("eth_noSuchMethod") }
                #expect(
                    missing
                        == .nodeError(
                            method: "eth_noSuchMethod",
                            code: -32601,
                            message: "the method eth_noSuchMethod does not exist/is not available"
                        )
                )
                let leadingZero = await expectNodeError { () throws(ChainNodeError) in
                    try await client.call("eth_getBlockByNumber", [.string("0x01"), .bool(false)])
                }
                #expect(
                    leadingZero
                        == .nodeError(
                            method: "eth_getBlockByNumber",
                            code: -32602,
                            message: "invalid argument 0: hex number with leading zero digits"
                        )
                )
                // A batch carries one error among results.
                let outcomes = try await client.batch([.init("eth_blockNumber"), .init("eth_nope"), .init("eth_chainId")])
                guard case .result(.string("0x0")) = outcomes[0], case .error(-32601, _, _) = outcomes[1],
                    case .result(.string("0x539")) = outcomes[2]
                else {
                    Issue.record("unexpected batch outcomes \(outcomes)")
                    return
                }
            }
        }

        @Test func transientFailuresAreRetried() async throws {
            try await Node.with { (node: DevChain, url: String) async throws in
                try await Node.blocking { node.evm.mine(3) }
                node.faults.inject(.http500, count: 1, scope: .evm)
                node.faults.inject(.nodeError, count: 1, scope: .evm)
                node.faults.inject(.http429, count: 1, scope: .evm)
                #expect(try await Node.evm(url, attempts: 4).tipHeight() == 3)
                #expect(node.faults.pending == 0)
                // Rate limits inside a batch fail the whole attempt, which is retried.
                node.faults.inject(.nodeError, count: 1, scope: .evm)
                #expect(try await Node.evm(url, attempts: 2).blockRefs(0...3).count == 4)
                // Failures that outlast the attempts surface as the last one.
                node.faults.inject(.http500, count: 5, scope: .evm)
                let error = await expectNodeError { () throws(ChainNodeError) in try await Node.evm(url, attempts: 3).tipHeight() }
                #expect(error == .httpStatus(method: "eth_blockNumber", status: 500, body: "Internal Server Error"))
                #expect(node.faults.pending == 2)
            }
        }

        @Test func aNodeAnsweringNonsenseGetsAClearError() async throws {
            try await Node.with { (node: DevChain, url: String) async throws in
                node.faults.inject(.malformed, count: 1, scope: .evm)
                let error = await expectNodeError { () throws(ChainNodeError) in try await Node.evm(url).tipHeight() }
                guard case .malformedResponse("eth_blockNumber", "body", let reason)? = error else {
                    Issue.record("expected a malformed-answer error naming eth_blockNumber, got \(String(describing: error))")
                    return
                }
                #expect(reason.contains("invalid JSON"))
                #expect(node.faults.pending == 0, "a malformed answer is not retried")
            }
        }

        @Test func hangsTimeOutAndAreRetried() async throws {
            try await Node.with { (node: DevChain, url: String) async throws in
                // Generous deadlines where an answer is expected (the suite runs in parallel on two cores).
                node.faults.inject(.hang, count: 1, scope: .evm, hang: .seconds(30))
                #expect(try await Node.evm(url, timeout: .seconds(2), attempts: 2).tipHeight() == 0, "the second attempt gets an answer")
                let client = Node.evm(url, timeout: .milliseconds(300), attempts: 2)
                node.faults.inject(.hang, count: 2, scope: .evm, hang: .seconds(30))
                let started = ContinuousClock.now
                let error = await expectNodeError { () throws(ChainNodeError) in try await client.tipHeight() }
                #expect(error == .timeout(method: "eth_blockNumber", after: .milliseconds(300), attempts: 2))
                #expect(error?.description == "eth_blockNumber: the node did not answer within 0.3 seconds (2 attempts)")
                #expect(ContinuousClock.now - started < .seconds(10), "gave up after the timeouts, not after the 30 s hang")
            }
        }

        @Test func transactionsSignedWithChainKitMoveBalances() async throws {
            try await Node.with { (node: DevChain, url: String) async throws in
                let client = Node.evm(url)
                let key = node.keys.evmKey(DevChainKeys.firstDevAccountIndex)
                let sender = AccountID(EVMAddress(publicKey: key.publicKey))
                let (x, y) = (account(6), account(7))
                #expect(try await client.nonce(of: sender) == AccountNonce(latest: 0, pending: 0))
                let before = try await client.nativeBalance(of: sender).amount
                guard case .evm(let fees) = try await client.feeEstimate(.native(from: sender, to: x, amount: Self.ether / 2)) else {
                    Issue.record("an EVM fee estimate")
                    return
                }
                #expect(fees.gasLimit == 21_000)
                #expect(fees.baseFeePerGas == 1_000_000_000)
                #expect(fees.maxFeePerGas == 3_000_000_000)
                let native = try EVMTransaction.eip1559(
                    .nativeTransfer(
                        chainID: 1337,
                        nonce: 0,
                        maxPriorityFeePerGas: fees.maxPriorityFeePerGas,
                        maxFeePerGas: fees.maxFeePerGas,
                        to: x.evmAddress,
                        value: Self.ether / 2
                    )
                ).sign(with: key)
                let sent = try await client.broadcast(native.rawBytes)
                #expect(sent == BroadcastResult(txHash: EthHex.data(native.hash), alreadyKnown: false))
                guard case .confirmed(let receipt) = try await client.transactionStatus(sent.txHash) else {
                    Issue.record("the transfer should be confirmed")
                    return
                }
                #expect(receipt.fee == 21_000 * 2_000_000_000, "21000 gas at base fee + tip")
                #expect(try await client.nativeBalance(of: x).amount == Self.ether / 2)
                #expect(try await client.nativeBalance(of: sender).amount == before - Self.ether / 2 - receipt.fee)

                guard case .evm(let tokenFees) = try await client.feeEstimate(.token(token: node.evm.usdt, from: sender, to: y, amount: 2_500_000))
                else {
                    Issue.record("an EVM fee estimate")
                    return
                }
                #expect(tokenFees.gasEstimate > 50_000 && tokenFees.gasEstimate < 70_000, "a transfer to a new holder: \(tokenFees.gasEstimate)")
                let token = try EVMTransaction.legacy(
                    .erc20Transfer(
                        chainID: 1337,
                        nonce: 1,
                        gasPrice: tokenFees.gasPrice,
                        gasLimit: tokenFees.gasLimit,
                        token: node.evm.usdt.evmAddress,
                        to: y.evmAddress,
                        amount: 2_500_000
                    )
                ).sign(with: key)
                _ = try await client.broadcast(token.rawBytes)
                #expect(try await client.tokenBalance(of: y, token: node.evm.usdt) == 2_500_000)
                #expect(try await client.tokenBalance(of: sender, token: node.evm.usdt) == 1_000_000_000_000 - 2_500_000)
                #expect(try await client.nonce(of: sender) == AccountNonce(latest: 2, pending: 2))
                // Sending mined bytes again: geth's pool no longer has them and answers "nonce too low".
                let again = await expectNodeError { () throws(ChainNodeError) in try await client.broadcast(native.rawBytes) }
                guard case .rejected(.nonceTooLow)? = again else {
                    Issue.record("expected nonce too low, got \(String(describing: again))")
                    return
                }
            }
        }

        @Test func futureNoncesWaitForTheGapAndThePoolCanLoseOrFailTransactionsOnDemand() async throws {
            try await Node.with(DevChainOptions(automine: false, devAccounts: 1)) { (node: DevChain, url: String) async throws in
                let client = Node.evm(url)
                let key = node.keys.evmKey(DevChainKeys.firstDevAccountIndex)
                let sender = AccountID(EVMAddress(publicKey: key.publicKey))
                func transfer(_ nonce: UInt64, _ to: UInt8) throws -> SignedEVMTransaction {
                    try EVMTransaction.eip1559(EVMEIP1559Transaction.nativeTransfer(
                        chainID: 1337, nonce: nonce, maxPriorityFeePerGas: 1_000_000_000, maxFeePerGas: 3_000_000_000,
                        to: account(to).evmAddress, value: 1_000)).sign(with: key)
                }
                // Nonce 1 arrives before nonce 0 (two signers racing): queued, mined once the gap fills, in nonce order.
                _ = try await client.broadcast(try transfer(1, 31).rawBytes)
                node.evm.mine()
                #expect(try await client.nonce(of: sender).latest == 0, "nothing runs across a gap")
                _ = try await client.broadcast(try transfer(0, 30).rawBytes)
                node.evm.mine()
                #expect(try await client.nonce(of: sender).latest == 2)
                // Eviction: a pending transaction dropped from the pool is unknown to the node.
                let dropped = try transfer(2, 32)
                _ = try await client.broadcast(dropped.rawBytes)
                let (status, body) = try await Node.post(url, "/devchain/evm/drop", #"{"hash": "\#(EthHex.data(dropped.hash))"}"#)
                #expect(status == 200 && body["dropped"]?.int64Value == 1)
                #expect(try await client.transactionStatus(EthHex.data(dropped.hash)) == .notFound)
                // A lossy pool: the next accepted transaction vanishes; a forced failure reverts a token transfer (gas spent).
                _ = try await Node.post(url, "/devchain/evm/pool-faults", #"{"drop_next": 1, "fail_next": 1}"#)
                _ = try await client.broadcast(dropped.rawBytes)
                #expect(node.evm.pendingCount == 0)
                let token = try EVMTransaction.eip1559(EVMEIP1559Transaction.erc20Transfer(
                    chainID: 1337, nonce: 2, maxPriorityFeePerGas: 1_000_000_000, maxFeePerGas: 3_000_000_000, gasLimit: 100_000,
                    token: node.evm.usdt.evmAddress, to: account(33).evmAddress, amount: 5)).sign(with: key)
                _ = try await client.broadcast(token.rawBytes)
                node.evm.mine()
                guard case .failed(let receipt) = try await client.transactionStatus(EthHex.data(token.hash)) else {
                    Issue.record("expected the forced failure")
                    return
                }
                #expect(receipt.fee > 0)
                #expect(try await client.tokenBalance(of: account(33), token: node.evm.usdt) == 0)
            }
        }

        @Test func tamperedOrMisdirectedTransactionsAreRefused() async throws {
            try await Node.with { (node: DevChain, url: String) async throws in
                let client = Node.evm(url)
                let key = node.keys.evmKey(DevChainKeys.firstDevAccountIndex)
                let x = account(8)
                let tx = EVMEIP1559Transaction.nativeTransfer(
                    chainID: 1337,
                    nonce: 0,
                    maxPriorityFeePerGas: 1_000_000_000,
                    maxFeePerGas: 3_000_000_000,
                    to: x.evmAddress,
                    value: Self.ether
                )
                let signed = try EVMTransaction.eip1559(tx).sign(with: key)
                // Changing the value after signing makes the signature name another (empty) sender.
                var tampered = tx
                tampered.value = Self.ether * 100
                let forged = SignedEVMTransaction(transaction: .eip1559(tampered), signature: signed.signature)
                let refused = await expectNodeError { () throws(ChainNodeError) in try await client.broadcast(forged.rawBytes) }
                guard case .rejected(.insufficientFunds(let message))? = refused else {
                    Issue.record("expected a refusal, got \(String(describing: refused))")
                    return
                }
                #expect(!message.contains(ChainKind.evm.format(AccountID(EVMAddress(publicKey: key.publicKey))).lowercased()))
                var otherChain = tx
                otherChain.chainID = 1
                let otherChainRaw = try EVMTransaction.eip1559(otherChain).sign(with: key).rawBytes
                let wrongChain = await expectNodeError { () throws(ChainNodeError) in try await client.broadcast(otherChainRaw) }
                #expect(wrongChain == .rejected(.validation("invalid chain id for signer: have 1 want 1337")))
                var gap = tx
                gap.nonce = 5_000  // beyond what the pool queues behind a gap
                let gapRaw = try EVMTransaction.eip1559(gap).sign(with: key).rawBytes
                let gapped = await expectNodeError { () throws(ChainNodeError) in try await client.broadcast(gapRaw) }
                guard case .rejected(.nonceTooHigh)? = gapped else {
                    Issue.record("expected nonce too high, got \(String(describing: gapped))")
                    return
                }
                #expect(try await client.nativeBalance(of: x).amount == 0)
                #expect(try await client.tipHeight() == 0, "nothing was mined")
                #expect(try await client.transactionStatus(EthHex.data(forged.hash)) == .notFound)
            }
        }

        @Test func pendingTransactionsAndReplacements() async throws {
            try await Node.with(DevChainOptions(automine: false, devAccounts: 1)) { (node: DevChain, url: String) async throws in
                let client = Node.evm(url)
                let key = node.keys.evmKey(DevChainKeys.firstDevAccountIndex)
                let sender = AccountID(EVMAddress(publicKey: key.publicKey))
                func transfer(tip: BigUInt, fee: BigUInt) throws -> SignedEVMTransaction {
                    try EVMTransaction.eip1559(
                        .nativeTransfer(
                            chainID: 1337,
                            nonce: 0,
                            maxPriorityFeePerGas: tip,
                            maxFeePerGas: fee,
                            to: account(9).evmAddress,
                            value: 1
                        )
                    ).sign(with: key)
                }
                let first = try transfer(tip: 1_000_000_000, fee: 3_000_000_000)
                _ = try await client.broadcast(first.rawBytes)
                #expect(try await client.transactionStatus(EthHex.data(first.hash)) == .pending)
                #expect(try await client.nonce(of: sender) == AccountNonce(latest: 0, pending: 1))
                #expect(try await client.broadcast(first.rawBytes).alreadyKnown)
                let cheapRaw = try transfer(tip: 1_050_000_000, fee: 3_100_000_000).rawBytes
                let cheap = await expectNodeError { () throws(ChainNodeError) in try await client.broadcast(cheapRaw) }
                #expect(cheap == .rejected(.replacementUnderpriced("replacement transaction underpriced")))
                let replacement = try transfer(tip: 2_000_000_000, fee: 4_000_000_000)
                _ = try await client.broadcast(replacement.rawBytes)
                try await Node.blocking { node.evm.mine() }
                #expect(try await client.transactionStatus(EthHex.data(first.hash)) == .notFound)
                guard case .confirmed = try await client.transactionStatus(EthHex.data(replacement.hash)) else {
                    Issue.record("the replacement should be mined")
                    return
                }
            }
        }

        @Test func reorgReplacesBlockHashesAndCanDropTransactions() async throws {
            try await Node.with { (node: DevChain, url: String) async throws in
                let client = Node.evm(url)
                let a = account(10)
                try await Node.blocking { node.evm.mine(3) }
                try await Node.blocking { try node.evm.transferUSDT([(a, 42)]) }
                try await Node.blocking { node.evm.mine(1) }
                let before = try await client.blockRefs(0...5)
                let replaced = try await Node.blocking { try node.evm.reorg(depth: 2, dropTransactions: false) }
                #expect(replaced.map(\.number) == [4, 5])
                let after = try await client.blockRefs(0...5)
                #expect(Array(after[0...3]) == Array(before[0...3]))
                #expect(after[4].hash != before[4].hash && after[5].hash != before[5].hash)
                #expect(after[4].parentHash == after[3].hash && after[5].parentHash == after[4].hash)
                let kept = try await client.transfers(in: 1...5, to: WatchedAddresses([a]), tokens: [node.evm.usdt], includeNative: false)
                #expect(kept.transfers.map(\.blockHash) == [after[4].hash], "the transfer is in the new block 4")
                _ = try await Node.blocking { try node.evm.reorg(depth: 2, dropTransactions: true) }
                let dropped = try await client.transfers(in: 1...5, to: WatchedAddresses([a]), tokens: [node.evm.usdt], includeNative: false)
                #expect(dropped.transfers.isEmpty)
                #expect(try await client.tokenBalance(of: a, token: node.evm.usdt) == 0)
                #expect(try await client.tipHeight() == 5)
            }
        }
    }
}
