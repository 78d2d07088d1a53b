import BigInt
import ChainKit
import DevChain
import Foundation
import GatewayCore
import GatewayRuntime
import GatewayServices
import GatewayStages
import GatewayTesting
import Logging
import PostgresNIO
import Testing

extension DepositHarness {
    /// The merchant's hot address on `chain`.
    func hotAddress(_ chain: String) async throws -> String {
        for try await a in try await db.query("SELECT hot_address FROM gateway.wallets WHERE chain = \(chain)").decode(String.self) { return a }
        throw ServiceError.notFound("hot wallet on \(chain)")
    }

    /// A gateway account's balance (merchant NULL).
    func gatewayBalance(_ coin: String, _ kind: String) async throws -> BigInt {
        let id = coins[coin]!.id
        for try await b in try await db.query("""
            SELECT balance::text FROM gateway.ledger_accounts WHERE coin_id = \(id) AND kind = \(kind) AND merchant_id IS NULL
            """).decode(String.self) { return BigInt(b) ?? 0 }
        return 0
    }

    func hotReceipts() async throws -> [String: Int64] {
        var out: [String: Int64] = [:]
        for try await (s, n) in try await db.query("SELECT status, count(*) FROM gateway.hot_receipts GROUP BY status").decode((String, Int64).self) {
            out[s] = n
        }
        return out
    }

    /// Reconciles `chain` the way gatewayctl ledger reconcile does.
    func reconcile(_ chain: String) async throws -> ReconciliationReport {
        let config = chainConfig(chain)
        return try await Reconciliation.run(chain: chain, node: ChainStage.nodeClient(for: config, logger: log), database: db, logger: log)
    }
}

@Suite(.serialized) struct HotWalletTests {
    let tronDest = "TXYZopYRdj2D9XRtbG411XZZ3kM5VkAeBf"
    let ethDest = "0x52908400098527886E0F7030069857D2E4169EE7"

    @Test func fundingTheHotWalletIsSeenBookedOnceAtDepthAndRewoundByAReorgBeforeIt() async throws {
        try await TestDatabase.withDatabase { db in
            try await withDevChain("hot-funding") { node, url in
                let h = try await DepositHarness.make(db, node: node, url: url)
                let s = h.scanner(confirmations: 3)
                let hot = try ChainKit.ChainKind.tron.parseAddress(try await h.hotAddress("tron"))
                _ = try node.tron.transferUSDT([(to: hot, amount: 2_000_000_000)])
                _ = try node.tron.fund(hot, amount: 300_000_000)
                try await h.catchUp(s)
                #expect(try await h.hotReceipts() == ["seen": 2], "recorded when seen")
                #expect(try await h.statuses() == [:], "not a deposit")
                #expect(try await count(db, "SELECT count(*) FROM gateway.ledger_entries") == 0, "not booked before its depth")

                node.tron.mine(3)
                try await h.catchUp(s)
                #expect(try await h.hotReceipts() == ["confirmed": 2])
                #expect(try await h.gatewayBalance("tron.USDT", LedgerAccountKind.treasury) == 2_000_000_000)
                #expect(try await h.gatewayBalance("tron.USDT", LedgerAccountKind.chain) == -2_000_000_000)
                #expect(try await h.gatewayBalance("tron.TRX", LedgerAccountKind.treasury) == 300_000_000)
                #expect(try await h.gatewayBalance("tron.TRX", LedgerAccountKind.chain) == -300_000_000)
                #expect(try await h.available("tron.USDT") == 0, "no merchant credit")
                #expect(try await count(db, "SELECT count(*) FROM gateway.callbacks") == 0, "no callback")
                #expect(try await count(db, "SELECT count(*) FROM gateway.ledger_entries") == 4, "two legs per receipt, once")

                // Scanning the same blocks again books nothing twice.
                _ = try await db.transaction { c in try await c.query("UPDATE gateway.chain_scanners SET scanned_height = 1", logger: log) }
                node.tron.mine(1)
                try await h.catchUp(s)
                #expect(try await h.hotReceipts() == ["confirmed": 2])
                #expect(try await count(db, "SELECT count(*) FROM gateway.ledger_entries") == 4)

                // A receipt whose block is replaced before its depth is orphaned, never booked.
                _ = try node.tron.transferUSDT([(to: hot, amount: 7_000_000)])
                try await h.catchUp(s)
                #expect(try await h.hotReceipts() == ["confirmed": 2, "seen": 1])
                _ = try node.tron.reorg(depth: 2, dropTransactions: true)
                node.tron.mine(5)
                let steps = try await h.catchUp(s)
                #expect(steps.contains { if case .rewound(_, 2, 0, false) = $0 { return true } else { return false } }, "\(steps)")
                #expect(try await h.hotReceipts() == ["confirmed": 2, "orphaned": 1])
                #expect(try await h.gatewayBalance("tron.USDT", LedgerAccountKind.treasury) == 2_000_000_000)
                #expect(try await count(db, "SELECT count(*) FROM gateway.ledger_entries") == 4)
                #expect(try await count(db, "SELECT count(*) FROM gateway.reorg_alerts") == 0)
                #expect(try await h.ledgerProblems() == [])

                // What our records expect the hot wallet to hold is what the node says it holds.
                let report = try await h.reconcile("tron")
                #expect(report.isClean, "\(report.differences) \(report.ledgerDifferences)")
                #expect(try await count(db, "SELECT expected::int8 FROM monitor.hot_wallets WHERE symbol = 'USDT' AND chain = 'tron'") == 2_000_000_000)
            }
        }
    }

    @Test func afterPaymentsSettleReconcileFindsNothingAndThenExactlyAnOutOfBandTransfer() async throws {
        try await TestDatabase.withDatabase { db in
            try await withPayChain("hot-reconcile") { node, url in
                // The merchant is funded by real deposits and the hot wallets by transfers the scanner sees:
                // every ledger row has its counterpart on chain.
                let p = try await PaymentHarness.make(db, node: node, url: url, balance: 0, fundHot: false)
                let h = p.h
                let tron = h.scanner("tron", confirmations: 2), eth = h.scanner("ethereum", confirmations: 2)
                _ = try h.sendTronUSDT(h.tron[0], 50_000_000)
                _ = try node.tron.fund(try ChainKit.ChainKind.tron.parseAddress(h.tron[1]), amount: 3_000_000)
                let eth0 = try ChainKit.ChainKind.evm.parseAddress(h.eth[0])
                _ = try node.evm.transferUSDT([(to: eth0, amount: 40_000_000)])
                _ = try node.evm.fund(eth0, amount: BigUInt(10).power(17))
                try p.fundHotWallets(usdt: 1_000_000_000)
                node.tron.mine(2)
                node.evm.mine(2)
                try await h.catchUp(tron)
                try await h.catchUp(eth)
                #expect(try await h.statuses() == ["confirmed": 4])
                #expect(try await h.hotReceipts() == ["confirmed": 4])
                for chain in ["tron", "ethereum"] {
                    let before = try await h.reconcile(chain)
                    #expect(before.isClean, "\(chain): \(before.differences) \(before.ledgerDifferences)")
                }

                let tronID = try await p.approve(chain: "tron", to: tronDest, amount: "12.5", business: "r-1")
                let ethID = try await p.approve(chain: "ethereum", to: ethDest, amount: "7", business: "r-2")
                try await p.run(p.config()) { let a = try await p.state(tronID), b = try await p.state(ethID)
                    return a == "confirmed" && b == "confirmed" }
                try await h.catchUp(tron)
                try await h.catchUp(eth)
                for chain in ["tron", "ethereum"] {
                    let report = try await h.reconcile(chain)
                    #expect(report.isClean, "\(chain): \(report.differences) \(report.ledgerDifferences)")
                    #expect(report.addresses == (chain == "tron" ? 5 : 4), "deposit addresses, the hot address and the gas address")
                    #expect(report.coins == 2)
                    let hot = try await h.hotAddress(chain)
                    #expect(report.balances.contains { $0.address == hot && $0.symbol == "USDT" && $0.expected == 1_000_000_000 - (chain == "tron" ? 12_500_000 : 7_000_000) })
                }
                #expect(try await h.ledgerProblems() == [])

                // Someone moves 1 USDT out of a deposit address behind the gateway's back.
                let seed = try BIP39.seed(fromMnemonic: abandonMnemonic)
                let key = try ExtendedPrivateKey(seed: seed).addressKey(scheme: .evm, account: 0, change: 0, index: 0)
                let client = ChainStage.nodeClient(for: h.chainConfig("ethereum"), logger: log)
                let usdt = node.evm.usdt
                guard case .evm(let fee) = try await client.feeEstimate(.token(token: usdt, from: eth0, to: try ChainKit.ChainKind.evm.parseAddress(ethDest),
                                                                                amount: 1_000_000)) else { throw ServiceError.invalid("not an evm estimate") }
                let tx = try EVMTransaction.eip1559(.erc20Transfer(chainID: 1337, nonce: 0, maxPriorityFeePerGas: fee.maxPriorityFeePerGas,
                                                                   maxFeePerGas: fee.maxFeePerGas, gasLimit: fee.gasLimit, token: usdt.evmAddress,
                                                                   to: try ChainKit.ChainKind.evm.parseAddress(ethDest).evmAddress, amount: 1_000_000))
                    .sign(with: key)
                let ethBefore = node.evm.balance(of: eth0)
                _ = try await client.broadcast(tx.rawBytes)
                node.evm.mine()
                try await h.catchUp(eth)
                let gas = ethBefore - node.evm.balance(of: eth0)
                #expect(gas > 0)
                let report = try await h.reconcile("ethereum")
                #expect(!report.isClean)
                #expect(report.ledgerDifferences.isEmpty, "the ledger still agrees with our records: the chain does not")
                let diffs = Dictionary(uniqueKeysWithValues: report.differences.map { ("\($0.address) \($0.symbol)", $0.difference) })
                #expect(diffs == ["\(h.eth[0]) USDT": -1_000_000, "\(h.eth[0]) ETH": -BigInt(gas)], "\(report.differences)")
                #expect(try await h.reconcile("tron").isClean)

                // Moving coins from a deposit address to the hot address is internal: recorded at the hot address
                // (which then holds what our records say), never booked as treasury funding.
                let ethHot = try ChainKit.ChainKind.evm.parseAddress(try await h.hotAddress("ethereum"))
                let treasury = try await h.gatewayBalance("ethereum.USDT", LedgerAccountKind.treasury)
                let move = try EVMTransaction.eip1559(.erc20Transfer(chainID: 1337, nonce: 1, maxPriorityFeePerGas: fee.maxPriorityFeePerGas,
                                                                     maxFeePerGas: fee.maxFeePerGas, gasLimit: fee.gasLimit, token: usdt.evmAddress,
                                                                     to: ethHot.evmAddress, amount: 2_000_000)).sign(with: key)
                _ = try await client.broadcast(move.rawBytes)
                node.evm.mine(2)
                try await h.catchUp(eth)
                #expect(try await count(db, "SELECT count(*) FROM gateway.hot_receipts WHERE internal AND status = 'confirmed' AND amount = 2000000") == 1)
                #expect(try await h.gatewayBalance("ethereum.USDT", LedgerAccountKind.treasury) == treasury)
                let gasAll = ethBefore - node.evm.balance(of: eth0)
                let after = try await h.reconcile("ethereum")
                #expect(after.ledgerDifferences.isEmpty)
                let afterDiffs = Dictionary(uniqueKeysWithValues: after.differences.map { ("\($0.address) \($0.symbol)", $0.difference) })
                #expect(afterDiffs == ["\(h.eth[0]) USDT": -3_000_000, "\(h.eth[0]) ETH": -BigInt(gasAll)], "\(after.differences)")

                // The same through gatewayctl: exit 1 and the differences as JSON; exit 0 on the clean chain.
                let config = try TestProcesses.configFile(Self.yaml(devchain: url, tronUSDT: ChainKit.ChainKind.tron.format(node.tron.usdt)))
                defer { try? FileManager.default.removeItem(atPath: config) }
                let env = TestProcesses.environment(for: db.config)
                let run = try TestProcesses.start("gatewayctl", ["ledger", "reconcile", "--chain", "ethereum", "--json", "--config", config], environment: env)
                #expect(await run.wait(timeout: .seconds(60)) == 1, "\(run.output)")
                let line = try #require(run.output.split(separator: "\n").first { $0.hasPrefix("{") })
                let json = try GatewayCore.JSONValue.parse(String(line))
                #expect(json["differences"] == .number("2"), "\(line)")
                #expect(json["clean"] == .bool(false))
                let clean = try TestProcesses.start("gatewayctl", ["ledger", "reconcile", "--chain", "tron", "--config", config], environment: env)
                #expect(await clean.wait(timeout: .seconds(60)) == 0, "\(clean.output)")
                #expect(clean.output.contains("addresses 5, coins 2, differences 0"), "\(clean.output)")

                // And the operator's views of the hot wallets: status from our records, wallet show from the node.
                let status = try TestProcesses.start("gatewayctl", ["status", "--config", config], environment: env)
                #expect(await status.wait(timeout: .seconds(60)) == 0, "\(status.output)")
                #expect(status.output.contains("hot wallets"), "\(status.output)")
                #expect(status.output.contains("987.5"), "the tron hot wallet's USDT after paying 12.5: \(status.output)")
                let show = try TestProcesses.start("gatewayctl", ["wallet", "show", "--chain", "tron", "--config", config], environment: env)
                #expect(await show.wait(timeout: .seconds(60)) == 0, "\(show.output)")
                let wallets = try await db.withConnection { c in try await Wallets.list(merchantID: nil, on: c, logger: log) }
                let tronGas = try #require(wallets.first { $0.chain == "tron" }?.gasAddress)
                #expect(show.output.contains("gas address \(tronGas)"), "the wallet's gas address: \(show.output)")
                #expect(show.output.contains("LOW"), "below the 5000 USDT mark of the test config: \(show.output)")
            }
        }
    }

    static func yaml(devchain url: String, tronUSDT: String) -> String {
        """
        log_level: info
        chains:
          tron:
            kind: tron
            node_url: \(url)
            confirmations: 2
            block_time: 1s
            request_timeout: 5s
            tokens:
              USDT: { contract: \(tronUSDT), decimals: 6 }
            hot_wallet_low_water: { USDT: "5000", TRX: "1" }
          ethereum:
            kind: evm
            node_url: \(url)
            chain_id: 1337
            confirmations: 2
            block_time: 1s
            request_timeout: 5s

        """
    }
}
