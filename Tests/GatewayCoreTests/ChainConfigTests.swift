import BigInt
import ChainKit
import Foundation
import GatewayCore
import Testing

@Suite struct ChainConfigTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func error(_ yaml: String, env: [String: String] = [:]) -> ConfigError? {
        do {
            _ = try GatewayConfig.parse(yaml: yaml, environment: env)
            return nil
        } catch let e as ConfigError {
            return e
        } catch {
            Issue.record("unexpected error \(error)")
            return nil
        }
    }

    static let tron = """
        chains:
          tron:
            kind: tron
            node_url: http://127.0.0.1:8545
            confirmations: 19
            block_time: 3s
            tokens:
              USDT: { contract: TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t, decimals: 6 }

        """

    @Test func committedWorkersYmlHasTheDevchainChainsAndAWallet() throws {
        let c = try GatewayConfig.load(path: Self.root.appendingPathComponent("workers.yml").path, environment: [:])
        #expect(c.chains.map(\.name) == ["tron", "ethereum"])
        let tron = try c.chain(named: "tron")
        #expect(tron.kind == .tron && tron.confirmations == 19 && tron.blockTime == .seconds(3))
        #expect(tron.token("usdt")?.decimals == 6)
        let eth = try c.chain(named: "ethereum")
        #expect(eth.kind == .evm && eth.chainID == 1337 && eth.maxLogRange == 2000)
        #expect(eth.token("USDT").map { ChainKind.evm.format($0.contract) } == "0x72B256e9F62F7D4B17c867F749C63607771eFd3e")
        #expect(c.wallet == WalletConfig(seedFile: ".local/wallet.seed", seedEnv: "GATEWAY_WALLET_SEED", btcNetwork: .mainnet))
        #expect(throws: ConfigError.self) { try c.chain(named: "bitcoin") }
    }

    @Test func chainKeysAreCheckedAndNamed() {
        #expect(error(Self.tron.replacingOccurrences(of: "kind: tron", with: "kind: solana"))?.key == "chains.tron.kind")
        #expect(error(Self.tron.replacingOccurrences(of: "http://127.0.0.1:8545", with: "127.0.0.1:8545"))?.key == "chains.tron.node_url")
        #expect(error(Self.tron.replacingOccurrences(of: "confirmations: 19", with: "confirmations: many"))?.key == "chains.tron.confirmations")
        #expect(error(Self.tron.replacingOccurrences(of: "    confirmations: 19\n", with: ""))?.key == "chains.tron.confirmations")
        #expect(error(Self.tron.replacingOccurrences(of: "block_time: 3s", with: "blocktime: 3s"))?.key == "chains.tron.block_time")
        #expect(error(Self.tron + "    chain_id: 1\n")?.key == "chains.tron.chain_id", "a TRON chain has no chain id")
        #expect(
            error(Self.tron.replacingOccurrences(of: "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t", with: "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6T"))?.key
                == "chains.tron.tokens.USDT.contract"
        )
        #expect(error(Self.tron.replacingOccurrences(of: "decimals: 6", with: "decimals: 6, symbol: x"))?.key == "chains.tron.tokens.USDT.symbol")
        let evm = Self.tron.replacingOccurrences(of: "kind: tron", with: "kind: evm").replacingOccurrences(
            of: "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t",
            with: "\"0xdAC17F958D2ee523a2206206994597C13D831ec7\""
        )
        #expect(error(evm)?.key == "chains.tron.chain_id", "an EVM chain needs its chain id")
        #expect(error(evm + "    chain_id: 1\n") == nil)
        #expect(error("chains:\n  Tron!: {}\n")?.key == "chains.Tron!")
        #expect(
            error(Self.tron + "    api_key_header: TRON-PRO-API-KEY\n    api_key_env: TRONGRID_KEY\n")?.key == "chains.tron.api_key_env",
            "the variable is not set"
        )
        let withKey = try? GatewayConfig.parse(
            yaml: Self.tron + "    api_key_header: TRON-PRO-API-KEY\n    api_key_env: TRONGRID_KEY\n",
            environment: ["TRONGRID_KEY": "k"]
        )
        #expect(withKey?.chains.first?.headers == ["TRON-PRO-API-KEY": "k"])
        #expect(error("wallet:\n  btc_network: signet\n")?.key == "wallet.btc_network")
        #expect(error("wallet:\n  seed: abc\n")?.key == "wallet.seed")
    }

    @Test func hotWalletLowWaterMarksAreWholeCoinsOfTheChainsCoins() throws {
        let c = try GatewayConfig.parse(yaml: Self.tron + "    hot_wallet_low_water: { USDT: \"1000\", trx: \"0.5\" }\n", environment: [:])
        let tron = try c.chain(named: "tron")
        #expect(tron.lowWater("usdt")?.description == "1000000000")
        #expect(tron.lowWater("TRX")?.description == "500000")
        #expect(try GatewayConfig.parse(yaml: Self.tron, environment: [:]).chains[0].hotWalletLowWater.isEmpty, "optional")
        let committed = try GatewayConfig.load(path: Self.root.appendingPathComponent("workers.yml").path, environment: [:])
        #expect(try committed.chain(named: "ethereum").lowWater("ETH")?.description == "500000000000000000")
        #expect(error(Self.tron + "    hot_wallet_low_water: { BTC: \"1\" }\n")?.key == "chains.tron.hot_wallet_low_water.BTC", "not a coin of the chain")
        #expect(error(Self.tron + "    hot_wallet_low_water: { USDT: \"0.0000001\" }\n")?.key == "chains.tron.hot_wallet_low_water.USDT",
                "more decimals than the coin has")
        #expect(error(Self.tron + "    hot_wallet_low_water: { USDT: lots }\n")?.key == "chains.tron.hot_wallet_low_water.USDT")
        #expect(error(Self.tron + "    hot_wallet_low_water: { USDT: \"-1\" }\n")?.key == "chains.tron.hot_wallet_low_water.USDT")
        #expect(error(Self.tron + "    hot_wallet_low_water: 5\n")?.key == "chains.tron.hot_wallet_low_water")
    }

    @Test func sweepSettingsAreWholeCoinsPerCoinAndNamedWhenWrong() throws {
        let committed = try GatewayConfig.load(path: Self.root.appendingPathComponent("workers.yml").path, environment: [:])
        let eth = try committed.chain(named: "ethereum").sweep
        #expect(eth?.coins["USDT"] == SweepCoinConfig(symbol: "USDT", threshold: 100_000_000, hotCap: 100_000_000_000, dustFractionPPM: 50_000,
                                                      nativePrice: 3_000_000_000))
        #expect(eth?.coins["ETH"]?.threshold == BigUInt(5) * BigUInt(10).power(17))
        #expect(eth?.gasMarginPercent == 150)

        let swept = Self.tron + """
                sweep:
                  interval: 5s
                  coins:
                    USDT: { threshold: "10.5", hot_cap: "1000" }
                    TRX: { threshold: "100", dust_fraction: "0.01" }

            """
        let c = try GatewayConfig.parse(yaml: swept, environment: [:])
        let sweep = try #require(try c.chain(named: "tron").sweep)
        #expect(sweep.interval == .seconds(5) && sweep.gasMarginPercent == 150 && sweep.maxPerRun == 500 && sweep.fullScanEvery == .seconds(6 * 3600))
        #expect(try GatewayConfig.parse(yaml: swept.replacingOccurrences(of: "interval: 5s", with: "full_scan_every: 2h"), environment: [:]).chain(named: "tron").sweep?.fullScanEvery == .seconds(7200))
        #expect(sweep.coins["USDT"] == SweepCoinConfig(symbol: "USDT", threshold: 10_500_000, hotCap: 1_000_000_000))
        #expect(sweep.coins["TRX"]?.dustFractionPPM == 10_000)
        #expect(try GatewayConfig.parse(yaml: Self.tron, environment: [:]).chain(named: "tron").sweep == nil)

        #expect(error(swept.replacingOccurrences(of: "TRX: {", with: "BTC: {"))?.key == "chains.tron.sweep.coins.BTC")
        #expect(error(swept.replacingOccurrences(of: "threshold: \"10.5\", ", with: ""))?.key == "chains.tron.sweep.coins.USDT.threshold")
        #expect(error(swept.replacingOccurrences(of: "\"10.5\"", with: "\"10.1234567\""))?.key == "chains.tron.sweep.coins.USDT.threshold")
        #expect(error(swept.replacingOccurrences(of: "\"10.5\"", with: "\"0\""))?.key == "chains.tron.sweep.coins.USDT.threshold")
        #expect(error(swept.replacingOccurrences(of: "\"0.01\"", with: "\"1.5\""))?.key == "chains.tron.sweep.coins.TRX.dust_fraction")
        #expect(error(swept.replacingOccurrences(of: "dust_fraction: \"0.01\"", with: "native_price: \"1\""))?.key
                    == "chains.tron.sweep.coins.TRX.native_price")
        #expect(error(swept.replacingOccurrences(of: "interval: 5s", with: "gas_margin_percent: 50"))?.key == "chains.tron.sweep.gas_margin_percent")
        #expect(error(swept.replacingOccurrences(of: "interval: 5s", with: "gas_wallet: TXYZ"))?.key == "chains.tron.sweep.gas_wallet")
        #expect(error(swept.replacingOccurrences(of: "interval: 5s", with: "intervall: 5s"))?.key == "chains.tron.sweep.intervall")
        #expect(error(swept.replacingOccurrences(of: "interval: 5s", with: "full_scan_every: 0s"))?.key == "chains.tron.sweep.full_scan_every")
    }

    @Test func paymentKeysAreReadPerChainKindAndNamedWhenWrong() throws {
        let evm = """
            chains:
              ethereum:
                kind: evm
                node_url: http://127.0.0.1:8545
                chain_id: 1337
                confirmations: 12
                block_time: 12s
                payments: { max_fee_per_gas: "100000000000", replace_after: 90s, replace_bump_percent: 25 }
            autopay: { hot_wallet_retry: 10m, max_batch: 50 }
            """
        let c = try GatewayConfig.parse(yaml: evm)
        let p = try c.chain(named: "ethereum").payments
        #expect(p.maxFeePerGas == 100_000_000_000 && p.replaceAfter == .seconds(90) && p.replaceBumpPercent == 25)
        #expect(c.autopay.hotWalletRetry == .seconds(600) && c.autopay.maxBatch == 50)
        #expect(error(evm.replacingOccurrences(of: "replace_bump_percent: 25", with: "replace_bump_percent: 5"))?.key
            == "chains.ethereum.payments.replace_bump_percent")
        #expect(error(evm.replacingOccurrences(of: "\"100000000000\"", with: "lots"))?.key == "chains.ethereum.payments.max_fee_per_gas")
        // TRON has no nonces to replace, EVM no expiration: a key of the other kind is unknown.
        #expect(error(evm.replacingOccurrences(of: "replace_after: 90s", with: "expiration: 60s"))?.key == "chains.ethereum.payments.expiration")
        let tron = Self.tron + "    payments: { fee_limit: 40000000, expiration: 2m }\n"
        let t = try GatewayConfig.parse(yaml: tron).chain(named: "tron").payments
        #expect(t.feeLimit == 40_000_000 && t.expiration == .seconds(120))
        #expect(error(Self.tron + "    payments: { expiration: 2d }\n")?.key == "chains.tron.payments.expiration")
        #expect(error(Self.tron + "    payments: { max_fee_per_gas: \"1\" }\n")?.key == "chains.tron.payments.max_fee_per_gas")
    }

    @Test func theSeedComesFromTheEnvironmentOrTheFile() throws {
        let mnemonic = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"
        let expected = try BIP39.seed(fromMnemonic: mnemonic)
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("seed-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: file) }
        try (Hex.encode(expected) + "\n").write(toFile: file, atomically: true, encoding: .utf8)
        let wallet = WalletConfig(seedFile: file, seedEnv: "SEED")
        #expect(try wallet.loadSeed(environment: [:]) == expected)
        #expect(try wallet.loadSeed(environment: ["SEED": mnemonic]) == expected, "a mnemonic in the environment wins")
        #expect(throws: ConfigError.self) { try WalletConfig(seedFile: file + ".missing").loadSeed(environment: [:]) }
        do {
            _ = try wallet.loadSeed(environment: ["SEED": "legal winner thank year wave sausage worth useful legal winner thank thank"])
            Issue.record("a bad mnemonic must not load")
        } catch let error as ConfigError {
            #expect(!error.description.contains("legal"), "the error never repeats the secret")
        }
    }
}
