import ArgumentParser
import BigInt
import ChainKit
import DevChain
import Foundation
import GatewayTesting
import Testing

@testable import GatewayCLI

extension ChainSuites {
    /// gatewayctl keys / address / chain as real processes.
    @Suite struct CLITests {
        static let vectors = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("../shared/vectors").standardizedFileURL

        /// Runs gatewayctl to completion: (exit status, output).
        static func gatewayctl(_ arguments: [String], environment: [String: String] = [:]) async throws -> (Int32, String) {
            var env = ProcessInfo.processInfo.environment
            env["GATEWAY_CONFIG"] = nil
            for (k, v) in environment { env[k] = v }
            let process = try TestProcesses.start("gatewayctl", arguments, environment: env)
            guard let status = await process.wait(timeout: .seconds(60)) else {
                process.signal(SIGKILL)
                Issue.record("gatewayctl \(arguments.joined(separator: " ")) did not finish")
                return (-1, process.output)
            }
            return (status, process.output)
        }

        static func temporaryFile(_ name: String) -> String {
            FileManager.default.temporaryDirectory.appendingPathComponent("gw-cli-\(UUID().uuidString)-\(name)").path
        }

        @Test func addressValidateExitCodesAndReasons() async throws {
            // The exit code contract, through real processes.
            let cases: [(chain: String, address: String, status: Int32, output: String)] = [
                ("ethereum", "0xdac17f958d2ee523a2206206994597c13d831ec7", 0, "valid: 0xdAC17F958D2ee523a2206206994597C13D831ec7"),
                ("evm", "0xdAC17F958D2ee523a2206206994597C13D831Ec7", 1, "invalid: mixed-case address fails EIP-55 checksum"),
                ("btc", "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx", 1, "invalid: testnet address not accepted on mainnet"),
            ]
            for c in cases {
                let (status, output) = try await Self.gatewayctl(["address", "validate", "--chain", c.chain, c.address])
                #expect(status == c.status, "\(c.chain) \(c.address): \(output)")
                #expect(output.trimmingCharacters(in: .whitespacesAndNewlines) == c.output, "\(c.chain) \(c.address)")
            }
            let (status, output) = try await Self.gatewayctl(["address", "validate", "--chain", "dogecoin", "D8"])
            #expect(status != 0 && status != 1, "a usage error is not an 'invalid address' answer")
            #expect(output.contains("unknown chain 'dogecoin'"))
        }

        /// Every case of address_validation.json through the command's own code path.
        @Test func addressValidateAgreesWithTheValidationVectors() throws {
            let document = try JSONValue.parse(try Data(contentsOf: Self.vectors.appendingPathComponent("address_validation.json")))
            var checked = 0
            for (section, chain) in [("eth", "evm"), ("tron", "tron"), ("btc", "btc")] {
                for vector in document[section]?.arrayValue ?? [] {
                    let address = try #require(vector["address"]?.stringValue)
                    let verdict = try AddressCommand.Validate.verdict(address, chain: chain, network: vector["network"]?.stringValue, config: nil)
                    guard let valid = vector["valid"]?.boolValue else {
                        Issue.record("vector without a verdict: \(address)")
                        continue
                    }
                    switch verdict {
                    case .success: #expect(valid, "\(section) \(address) should be invalid: \(vector["reason"]?.stringValue ?? "")")
                    case .failure(let reason):
                        #expect(!valid, "\(section) \(address) should be valid")
                        #expect(!reason.description.isEmpty)
                    }
                    checked += 1
                }
            }
            #expect(checked > 30)
        }

        @Test func addressDeriveMatchesTheHDWalletVectors() async throws {
            let document = try JSONValue.parse(try Data(contentsOf: Self.vectors.appendingPathComponent("hd_wallet.json")))
            let chains = ["eth_bip44": "evm", "tron_bip44": "tron", "btc_bip84": "btc", "btc_bip44": "btc-legacy"]
            var checked = 0
            for mnemonic in document["mnemonics"]?.arrayValue ?? [] {
                for scheme in mnemonic["schemes"]?.arrayValue ?? [] {
                    let id = try #require(scheme["id"]?.stringValue)
                    let chain = try #require(chains[id])
                    let xpub = try #require(scheme["account_xpub"]?.stringValue)
                    for child in scheme["children"]?.arrayValue ?? [] {
                        let index = try #require(child["index"]?.int64Value)
                        #expect(
                            try AddressCommand.Derive.address(xpub: xpub, chain: chain, index: UInt32(index), config: nil)
                                == child["address"]?.stringValue,
                            "\(id) \(index)"
                        )
                        checked += 1
                    }
                    if let zpub = scheme["account_zpub"]?.stringValue {
                        #expect(
                            try AddressCommand.Derive.parse(["--xpub", zpub, "--chain", chain, "--index", "0"]).address(config: nil)
                                == scheme["children"]?[0]?["address"]?.stringValue,
                            "\(id) from the zpub"
                        )
                    }
                }
            }
            #expect(checked == 160)
            // And once as a real process, with the error for a key that is not an account key.
            let eth = try #require(document["mnemonics"]?[0]?["schemes"]?[0])
            let (status, output) = try await Self.gatewayctl([
                "address", "derive", "--xpub", try #require(eth["account_xpub"]?.stringValue), "--chain", "ethereum", "--index", "19",
            ])
            #expect(status == 0)
            #expect(output.trimmingCharacters(in: .whitespacesAndNewlines) == eth["children"]?[19]?["address"]?.stringValue)
            let root = try #require(document["mnemonics"]?[0]?["root_xpub"]?.stringValue)
            let (rootStatus, rootOutput) = try await Self.gatewayctl(["address", "derive", "--xpub", root, "--chain", "tron", "--index", "0"])
            #expect(rootStatus != 0)
            #expect(rootOutput.contains("depth 0"), "a root xpub is not an account xpub: \(rootOutput)")
        }

        @Test func keysNewWritesAnOwnerOnlySeedOnceAndKeysXpubDerivesFromIt() async throws {
            let path = Self.temporaryFile("seed")
            defer { try? FileManager.default.removeItem(atPath: path) }
            let (status, output) = try await Self.gatewayctl(["keys", "new", "--out", path, "--words", "12"])
            #expect(status == 0, "\(output)")
            let attributes = try FileManager.default.attributesOfItem(atPath: path)
            #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
            let seedHex = try String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(seedHex.count == 128)
            // The printed words are the mnemonic of the written seed.
            let mnemonic = try #require(Self.mnemonic(in: output))
            #expect(mnemonic.split(separator: " ").count == 12, "\(output)")
            #expect(Hex.encode(try BIP39.seed(fromMnemonic: mnemonic)) == seedHex)
            #expect(!output.contains(seedHex), "the seed itself is not printed")

            let (again, refusal) = try await Self.gatewayctl(["keys", "new", "--out", path])
            #expect(again != 0)
            #expect(refusal.contains("refusing to overwrite"))
            #expect(try String(contentsOfFile: path, encoding: .utf8).contains(seedHex), "the existing seed is untouched")

            // keys xpub from a seed in the environment: the vector mnemonic gives the vector's account xpub.
            let config = Self.temporaryFile("workers.yml")
            defer { try? FileManager.default.removeItem(atPath: config) }
            try "wallet:\n  seed_env: TEST_GATEWAY_SEED\n".write(toFile: config, atomically: true, encoding: .utf8)
            let vector = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"
            let (xpubStatus, xpub) = try await Self.gatewayctl(
                ["keys", "xpub", "--config", config, "--chain", "tron", "--account", "0"],
                environment: ["TEST_GATEWAY_SEED": vector]
            )
            #expect(xpubStatus == 0, "\(xpub)")
            #expect(
                xpub.trimmingCharacters(in: .whitespacesAndNewlines)
                    == "xpub6D1AabNHCupeiLM65ZR9UStMhJ1vCpyV4XbZdyhMZBiJXALQtmn9p42VTQckoHVn8WNqS7dqnJokZHAHcHGoaQgmv8D45oNUKx6DZMNZBCd"
            )
            let (missing, reason) = try await Self.gatewayctl(["keys", "xpub", "--config", config, "--chain", "tron"])
            #expect(missing != 0)
            #expect(reason.contains("no seed"), "\(reason)")
        }

        static func mnemonic(in output: String) -> String? {
            var words: [String] = []
            for line in output.split(separator: "\n") where line.hasPrefix("  ") {
                let tokens = line.split(separator: " ")
                var i = 0
                while i + 1 < tokens.count {
                    if Int(tokens[i]) != nil { words.append(String(tokens[i + 1])) }
                    i += 2
                }
            }
            return words.isEmpty ? nil : words.joined(separator: " ")
        }

        @Test func chainTipAndBalanceAskTheConfiguredNode() async throws {
            try await Node.with { (node: DevChain, url: String) async throws in
                try await Node.blocking { try node.tron.fund(account(20), amount: 5_000_000) }
                try await Node.blocking { try node.tron.transferUSDT([(account(20), 1_500_000)]) }
                let config = Self.temporaryFile("workers.yml")
                defer { try? FileManager.default.removeItem(atPath: config) }
                try """
                chains:
                  tron:
                    kind: tron
                    node_url: \(url)
                    confirmations: 19
                    block_time: 3s
                    tokens:
                      USDT: { contract: \(ChainKind.tron.format(node.tron.usdt)), decimals: 6 }
                  eth:
                    kind: evm
                    node_url: \(url)
                    chain_id: 1
                    confirmations: 12
                    block_time: 12s
                """.write(toFile: config, atomically: true, encoding: .utf8)
                let (status, output) = try await Self.gatewayctl(["chain", "tip", "--config", config, "--chain", "tron"])
                #expect(status == 0, "\(output)")
                #expect(output.contains("height 2"))
                #expect(output.contains("hash   \(node.tron.blockID(2)!)"))
                let address = ChainKind.tron.format(account(20))
                let (_, trx) = try await Self.gatewayctl(["chain", "balance", "--config", config, "--chain", "tron", "--address", address])
                #expect(trx.trimmingCharacters(in: .whitespacesAndNewlines) == "5 TRX (5000000 base units)")
                let (_, usdt) = try await Self.gatewayctl([
                    "chain", "balance", "--config", config, "--chain", "tron", "--address", address, "--token", "USDT",
                ])
                #expect(usdt.trimmingCharacters(in: .whitespacesAndNewlines) == "1.5 USDT (1500000 base units)")
                let (fresh, unactivated) = try await Self.gatewayctl([
                    "chain", "balance", "--config", config, "--chain", "tron", "--address", "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t",
                ])
                #expect(fresh == 0 && unactivated.contains("account not activated"))
                let (wrongID, mismatch) = try await Self.gatewayctl(["chain", "tip", "--config", config, "--chain", "eth"])
                #expect(wrongID != 0)
                #expect(mismatch.contains("reports chain id 1337, the configuration says 1"))
            }
        }
    }
}
