import ArgumentParser
import AsyncHTTPClient
import BigInt
import ChainKit
import Foundation
import GatewayCore
import GatewayRuntime
import GatewayServices
import Logging
import MerchantSide
import NIOCore
import NIOHTTP1
import PostgresNIO
import Synchronization

/// `gatewayctl demo …`: the scripted demo the run command drives against devchain.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Scripted demos against a running gateway and devchain (scripts/run.sh runs them).",
        subcommands: [Deposits.self, Withdrawals.self])

    struct Deposits: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The deposit path: a merchant, TRON and Ethereum addresses through the Udun API, USDT sent by devchain, callbacks received.",
            discussion: """
                Needs gateway-api, chain-worker and callback-worker running with this configuration, and devchain at the \
                chains' node_url. Sets up what is missing (the configured tokens as coins, the merchant "Demo Shop", its \
                wallets derived from the gateway seed — created under wallet.seed_file when there is none), starts a merchant \
                receiver on loopback that verifies both callback signatures, creates one deposit address per chain with \
                /mch/address/create, has devchain send USDT to each, and prints the callbacks as they arrive. Exits 1 when \
                they do not all arrive within --timeout seconds.
                """)

        @OptionGroup var options: ProcessOptions
        @Option(help: "USDT to send to each address (whole units).") var amount = "25"
        @Option(help: "Seconds to wait for the callbacks.") var timeout = 180

        func validate() throws {
            guard timeout > 0 else { throw ValidationError("--timeout must be positive") }
            guard let value = Decimal(string: amount), value > 0 else { throw ValidationError("--amount must be a positive number") }
        }

        func run() async throws {
            let config = try options.loadConfig()
            let chains = config.chains.filter { $0.token("USDT") != nil }
            guard !chains.isEmpty else { throw ValidationError("no chain in \(config.source) has a USDT token") }
            let (amountText, timeout) = (amount, self.timeout)
            let (merchantID, secrets) = try await CLIContext.with(options) { ctx in try await Self.setUp(ctx, chains: chains) }
            say("merchant \(merchantID) \"Demo Shop\" is ready; starting its callback receiver")

            let arrived = Mutex<[MerchantReceiver.Received]>([])
            let receiver = try await MerchantReceiver(apiKey: secrets.apiKey, webhookSecret: secrets.webhookSecret) { r in
                arrived.withLock { $0.append(r) }
                let body = r.body
                func field(_ k: String) -> String {
                    switch body?[k] {
                    case .string(let s)?: return s
                    case .number(let n)?: return n
                    default: return "?"
                    }
                }
                print("  callback  tradeType \(field("tradeType")) status \(field("status")) amount \(field("amount")) (base units) "
                      + "to \(field("address")) block \(field("blockHigh")) tx \(field("txId").prefix(18))…  "
                      + "md5 signature \(r.udunSignatureValid ? "ok" : "BAD"), webhook signature \(r.webhookSignatureValid ? "ok" : "BAD")")
            }
            let http = HTTPClient(eventLoopGroupProvider: .singleton)
            do {
                let api = "http://\(config.api.listen.host == "0.0.0.0" ? "127.0.0.1" : config.api.listen.host):\(config.api.listen.port)"
                var sent: [(chain: String, address: String, tx: String)] = []
                for chain in chains {
                    let mainCoinType = chain.kind == .tron ? "195" : "60"
                    let address = try await Self.createAddress(http, api: api, merchantID: merchantID, key: secrets.apiKey, mainCoinType: mainCoinType,
                                                               callURL: receiver.baseURL + "/callbacks/\(chain.name)")
                    print("  address   \(chain.name): \(address) (POST \(api)/mch/address/create)")
                    let token = chain.token("USDT")!
                    guard let units = Self.baseUnits(amountText, decimals: token.decimals) else {
                        throw ValidationError("--amount has more decimals than USDT's \(token.decimals)")
                    }
                    let tx = try await Self.devchainSend(http, nodeURL: chain.nodeURL, chain: chain.kind == .tron ? "tron" : "evm", to: address, amount: units)
                    print("  sent      \(amountText) USDT on \(chain.name): tx \(tx) (devchain); \(chain.confirmations) confirmations to go")
                    sent.append((chain.name, address, tx))
                }
                say("waiting for \(sent.count) deposit callback(s) (chain-worker credits at the configured depth, callback-worker delivers)")
                let deadline = ContinuousClock.now + .seconds(timeout)
                while ContinuousClock.now < deadline {
                    let got = arrived.withLock { list in Set(list.compactMap { r -> String? in
                        if case .string(let tx)? = r.body?["txId"] { return tx }
                        return nil
                    }) }
                    if sent.allSatisfy({ got.contains($0.tx) }) { break }
                    try await Task.sleep(for: .milliseconds(200))
                }
                let got = arrived.withLock { $0 }
                let missing = sent.filter { s in !got.contains { r in r.body?["txId"] == .string(s.tx) } }
                try await http.shutdown()
                await receiver.stop()
                guard missing.isEmpty else {
                    print("demo: no callback within \(timeout) s for \(missing.map { "\($0.chain) tx \($0.tx)" }.joined(separator: ", ")); "
                          + "see gatewayctl status and .local/logs/chain-worker.log")
                    throw ExitCode(1)
                }
                guard got.allSatisfy({ $0.udunSignatureValid && $0.webhookSignatureValid }) else {
                    print("demo: a callback arrived with a signature that does not verify")
                    throw ExitCode(1)
                }
                say("every deposit was credited and called back; signatures verified")
            } catch {
                try? await http.shutdown()
                await receiver.stop()
                throw error
            }
            let status = try await CLIContext.with(options) { ctx in try await StatusReport.render(ctx.database) }
            print(status, terminator: "")
        }

        func say(_ s: String) { print("==> \(s)") }

        /// Coins for the configured tokens and native coins, the demo merchant and its wallets.
        /// `account` nil: the next account of the seed no wallet uses yet (a fresh hot address).
        static func setUp(_ ctx: CLIContext, chains: [ChainConfig], merchantName: String = "Demo Shop",
                          account: Int? = 0) async throws -> (Int64, MerchantSecrets) {
            let directory = ChainDirectory(config: ctx.config)
            var seed: Data
            do {
                seed = try ctx.config.wallet.loadSeed(relativeTo: ctx.config.source)
            } catch {
                guard let file = ctx.config.wallet.seedFile else { throw ValidationError("demo: no gateway seed and no wallet.seed_file to create one in") }
                let path = file.hasPrefix("/") ? file : URL(fileURLWithPath: ctx.config.source).deletingLastPathComponent().appendingPathComponent(file).path
                seed = try BIP39.seed(fromMnemonic: try BIP39.generateMnemonic(wordCount: 24))
                try SeedFile.create(at: path, contents: Hex.encode(seed) + "\n")
                print("==> no gateway seed yet: created \(path) for this local set-up (gatewayctl keys new makes one with a mnemonic backup)")
            }
            let master = try ExtendedPrivateKey(seed: seed)
            let logger = ctx.logger
            var accountIndex = account ?? 0
            if account == nil {
                for try await n in try await ctx.database.query("SELECT coalesce(max(account_index) + 1, 0)::int4 FROM gateway.wallets")
                    .decode(Int32.self) { accountIndex = Int(n) }
            }
            var xpubs: [String: String] = [:]
            for chain in chains {
                guard let kind = directory.kind(chain.name) else { continue }
                xpubs[chain.name] = try master.derived(path: kind.scheme.accountPath(account: UInt32(accountIndex))).extendedPublicKey.serialized()
            }
            return try await ctx.database.transaction { c in
                for chain in chains {
                    let main = chain.kind == .tron ? "195" : "60"
                    let coins = [Coin(chain: chain.name, mainCoinType: main, coinType: main, symbol: chain.nativeSymbol, name: chain.nativeSymbol,
                                      coinName: chain.name.capitalized, decimals: chain.nativeDecimals, isToken: false)]
                        + chain.tokens.map { t in
                            Coin(chain: chain.name, mainCoinType: main, coinType: Coins.canonicalCoinType(chain.kind.format(t.contract)), symbol: t.symbol,
                                 name: t.symbol, coinName: chain.name.capitalized, mainSymbol: chain.nativeSymbol, decimals: t.decimals, isToken: true,
                                 minDeposit: BigUInt(10).power(max(0, t.decimals - 2)))
                        }
                    for coin in coins where try await Coins.find(mainCoinType: coin.mainCoinType, coinType: coin.coinType, includeDisabled: true,
                                                                  on: c, logger: logger) == nil {
                        _ = try await Coins.add(coin, directory: directory, actor: "demo", on: c, logger: logger)
                    }
                }
                var merchant: Int64?
                for try await id in try await c.query("SELECT id FROM gateway.merchants WHERE name = \(merchantName) ORDER BY id LIMIT 1",
                                                      logger: logger).decode(Int64.self) { merchant = id }
                if merchant == nil {
                    merchant = try await Merchants.create(name: merchantName, actor: "demo", on: c, logger: logger).0.id
                }
                let id = merchant!
                let attached = try await Wallets.chains(merchantID: id, on: c, logger: logger)
                for (chain, xpub) in xpubs where !attached.contains(chain) {
                    _ = try await Wallets.attach(merchantID: id, chain: chain, xpub: xpub, accountIndex: accountIndex, coldAddress: nil, directory: directory,
                                                 actor: "demo", on: c, logger: logger)
                }
                guard let secrets = try await Merchants.signingSecrets(id, on: c, logger: logger) else { throw ServiceError.notFound("merchant \(id)") }
                return (id, secrets)
            }
        }

        /// `/mch/address/create`, signed as a merchant's SDK signs it.
        static func createAddress(_ http: HTTPClient, api: String, merchantID: Int64, key: String, mainCoinType: String, callURL: String) async throws -> String {
            let body = JSONValue.array([.object([
                ("merchantId", .string(String(merchantID))), ("mainCoinType", .string(mainCoinType)), ("callUrl", .string(callURL)),
                ("alias", .string("demo")),
            ])]).serialized
            let reply = try await udunPost(http, url: api + "/mch/address/create", body: body, key: key)
            guard case .string(let address)? = reply["data"]?["address"] else { throw ValidationError("demo: /mch/address/create answered \(reply)") }
            return address
        }

        /// POSTs a Udun request envelope (`body` signed with the merchant's key, second timestamp, 6-digit nonce) and
        /// returns the reply; a reply whose code is not 200 is an error naming it.
        static func udunPost(_ http: HTTPClient, url: String, body: String, key: String) async throws -> JSONValue {
            let request = UdunRequests.post(url: url, body: body, key: key, nonce: String(Int.random(in: 100_000...999_999)))
            let response = try await http.execute(request, timeout: .seconds(30))
            let text = String(buffer: try await response.body.collect(upTo: 1 << 16))
            guard let reply = try? JSONValue.parse(text), reply["code"] == .number("200") else {
                throw ValidationError("demo: \(url) answered \(text.prefix(300))")
            }
            return reply
        }

        /// Asks devchain's control API to send USDT from its treasury.
        static func devchainSend(_ http: HTTPClient, nodeURL: String, chain: String, to: String, amount: BigUInt) async throws -> String {
            let reply: ChainKit.JSONValue
            do {
                reply = try await DevchainControl(http: http, url: nodeURL).post("/devchain/\(chain)/usdt", ["to": .string(to), "amount": .string(amount.description)])
            } catch {
                throw ValidationError("demo: devchain refused the transfer (is devchain at \(nodeURL)?): \(error)")
            }
            guard let tx = reply["txs"]?.arrayValue?.first?.stringValue else { throw ValidationError("demo: devchain answered \(reply)") }
            return tx
        }

        /// "25.5" with 6 decimals → 25500000; nil when it has more decimals.
        static func baseUnits(_ text: String, decimals: Int) -> BigUInt? {
            let parts = text.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count <= 2, let whole = BigUInt(String(parts[0])) else { return nil }
            let fraction = parts.count == 2 ? String(parts[1]) : ""
            guard fraction.count <= decimals, fraction.allSatisfy(\.isNumber) else { return nil }
            return whole * BigUInt(10).power(decimals) + (BigUInt(fraction + String(repeating: "0", count: decimals - fraction.count)) ?? 0)
        }
    }
}
