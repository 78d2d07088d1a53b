import ArgumentParser
import AsyncHTTPClient
import BigInt
import ChainKit
import Foundation
import GatewayCore
import GatewayRuntime
import GatewayServices
import GatewayStages
import Logging
import MerchantSide
import NIOCore
import NIOHTTP1
import PostgresNIO
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

extension DemoCommand {
    /// `gatewayctl demo withdrawals`: the payment path after `demo deposits`.
    struct Withdrawals: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "withdrawals",
            abstract: "The payment path: a proxypay paid automatically, a larger withdrawal approved by a reviewer with gatewayctl, callbacks received.",
            discussion: """
                Run after `demo deposits`, with gateway-api and every worker running (scripts/run.sh does both). Turns on \
                automatic payment for "Demo Shop", funds its TRON hot wallet with TRX (gas) from devchain, deposits --large + \
                --small USDT to one of its deposit addresses, sweeps that address into the hot wallet (the sweep planner's plan \
                is shown with its estimated gas; sweep-worker tops up gas, waits for it, then sweeps), then through the Udun API: a /mch/withdraw/proxypay of --small USDT, under the review \
                rules' auto_approve_up_to, is approved by rule and paid (callbacks 1 and 3); a /mch/withdraw of --large USDT, \
                above it, waits for people (callback 0) until the demo approves it as reviewer "demo-reviewer" with \
                `gatewayctl review approve` (callbacks 1 and 3). Exits 1 when a callback does not arrive within --timeout seconds.
                """)

        @OptionGroup var options: ProcessOptions
        @Option(help: "USDT of the proxypay (under auto_approve_up_to).") var small = "5"
        @Option(help: "USDT of the withdrawal people approve (above auto_approve_up_to).") var large = "1500"
        @Option(help: "Seconds to wait for each step's callbacks.") var timeout = 180

        func run() async throws {
            let this = self
            // One database handle for the whole demo (its polls included).
            try await CLIContext.with(options) { ctx in try await this.demo(ctx) }
        }

        func demo(_ ctx: CLIContext) async throws {
            let config = ctx.config
            guard let chain = config.chains.first(where: { $0.kind == .tron && $0.token("USDT") != nil }), let usdt = chain.token("USDT") else {
                throw ValidationError("no tron chain with a USDT token in \(config.source)")
            }
            guard let smallUnits = Deposits.baseUnits(small, decimals: usdt.decimals), let largeUnits = Deposits.baseUnits(large, decimals: usdt.decimals)
            else { throw ValidationError("--small and --large are USDT amounts with at most \(usdt.decimals) decimals") }
            let configPath = options.configPath
            let (id, secrets) = try await Deposits.setUp(ctx, chains: [chain])
            let (merchantID, hot, depositAddress) = try await ctx.database.transaction { c in
                    try await c.query("UPDATE gateway.merchants SET auto_payment = true, updated_at = now() WHERE id = \(id)", logger: ctx.logger)
                    try await Audit.record(actor: "demo", action: "merchant.auto_payment", target: "merchant:\(id)", detail: ["on": .bool(true)],
                                           on: c, logger: ctx.logger)
                    let hot = try await Wallets.list(merchantID: id, on: c, logger: ctx.logger).first { $0.chain == chain.name }?.hotAddress
                    let address = try await Addresses.list(merchantID: id, chain: chain.name, limit: 1, on: c, logger: ctx.logger).first?.address
                    return (id, hot, address)
            }
            guard let hot, let depositAddress else { throw ValidationError("demo: run `gatewayctl demo deposits` first (no TRON wallet or address)") }
            say("merchant \(merchantID) \"Demo Shop\": automatic payment on; hot wallet \(hot)")

            let arrived = Mutex<[MerchantReceiver.Received]>([])
            let receiver = try await MerchantReceiver(apiKey: secrets.apiKey, webhookSecret: secrets.webhookSecret) { r in
                arrived.withLock { $0.append(r) }
                func field(_ k: String) -> String {
                    switch r.body?[k] {
                    case .string(let s)?: return s
                    case .number(let n)?: return n
                    default: return "?"
                    }
                }
                print("  callback  withdrawal \(field("tradeId")) (\(field("businessId"))) status \(field("status")) amount \(field("amount")) "
                      + "fee \(field("fee")) block \(field("blockHigh")) tx \(field("txId").isEmpty ? "-" : String(field("txId").prefix(18)) + "…")  "
                      + "signatures \(r.udunSignatureValid && r.webhookSignatureValid ? "ok" : "BAD")")
            }
            let http = HTTPClient(eventLoopGroupProvider: .singleton)
            defer { Task { try? await http.shutdown(); await receiver.stop() } }
            let node = DevchainControl(http: http, url: chain.nodeURL)
            _ = try await node.post("/devchain/tron/fund", ["address": .string(hot), "amount": .string("1000000000")])
            _ = try await node.post("/devchain/tron/usdt", ["to": .string(depositAddress), "amount": .string((largeUnits + smallUnits).description)])
            print("  funded    hot wallet with 1000 TRX (gas); deposited \(large)+\(small) USDT to \(depositAddress)")
            let deadline = ContinuousClock.now + .seconds(timeout)
            let coinType = Coins.canonicalCoinType(chain.kind.format(usdt.contract))
            say("waiting for the deposit to be credited")
            while try await balance(ctx, coinType: coinType, merchantID: merchantID) < BigInt(largeUnits + smallUnits) {
                guard ContinuousClock.now < deadline else { throw ValidationError("demo: the deposit was not credited within \(timeout) s") }
                try await Task.sleep(for: .milliseconds(300))
            }

            try await sweep(ctx, chain: chain, address: depositAddress, deadline: ContinuousClock.now + .seconds(timeout))

            let api = "http://\(config.api.listen.host == "0.0.0.0" ? "127.0.0.1" : config.api.listen.host):\(config.api.listen.port)"
            let run = String(Int(Date().timeIntervalSince1970))
            let destination = TronAddress(publicKey: try Secp256k1.PrivateKey(Data((0..<32).map { _ in UInt8.random(in: 0...255) })).publicKey).base58
            let callURL = receiver.baseURL + "/withdrawals"
            let smallID = try await withdraw(ctx, http, api: api, path: "/mch/withdraw/proxypay", merchantID: merchantID, key: secrets.apiKey, coinType: coinType,
                                             to: destination, amount: small, callURL: callURL, businessID: "demo-proxypay-\(run)")
            print("  proxypay  \(small) USDT to \(destination): withdrawal \(smallID) (POST \(api)/mch/withdraw/proxypay)")
            let largeID = try await withdraw(ctx, http, api: api, path: "/mch/withdraw", merchantID: merchantID, key: secrets.apiKey, coinType: coinType,
                                             to: destination, amount: large, callURL: callURL, businessID: "demo-withdraw-\(run)")
            print("  withdraw  \(large) USDT to \(destination): withdrawal \(largeID) (POST \(api)/mch/withdraw)")
            say("the proxypay is approved by rule and paid; the larger one waits for people")
            try await waitFor(arrived, [(smallID, "3"), (largeID, "0")], deadline: ContinuousClock.now + .seconds(timeout))

            let me = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
            say("a reviewer approves it: gatewayctl admin token add demo-reviewer --level 2; gatewayctl review approve \(largeID) --as demo-reviewer")
            _ = await Children.run([me, "admin", "token", "add", "demo-reviewer", "--level", "2", "--config", configPath], quiet: true,
                                   timeout: .seconds(60))  // exists already on a re-run
            let status = await Children.run([me, "review", "approve", String(largeID), "--as", "demo-reviewer", "--comment", "demo", "--config", configPath],
                                            quiet: false, timeout: .seconds(60))
            guard status == 0 else { throw ValidationError("demo: gatewayctl review approve exited \(status)") }
            try await waitFor(arrived, [(largeID, "3")], deadline: ContinuousClock.now + .seconds(timeout))
            say("both withdrawals paid and confirmed; signatures verified")
            let report = try await StatusReport.render(ctx.database)
            print(report, terminator: "")
        }

        func say(_ s: String) { print("==> \(s)") }

        /// Plans the deposit address's sweep now (as the scheduled planner would) and waits until
        /// sweep-worker has moved it into the hot wallet.
        func sweep(_ ctx: CLIContext, chain: ChainConfig, address: String, deadline: ContinuousClock.Instant) async throws {
            guard chain.sweep != nil else {
                say("chains.\(chain.name).sweep is not configured: the deposit stays on its address (the hot wallet must hold the USDT)")
                return
            }
            say("sweeping \(address) into the hot wallet")
            let planner = try SweepPlanner(chain: chain, database: ctx.database, logger: ctx.logger)
            var id: Int64?
            while id == nil {
                let report = try await planner.plan(address: address, dryRun: false)
                for p in report.planned {
                    print("  plan      \(p.symbol) \(p.amount) (base units) from \(p.address) to the \(p.destinationRole) address \(p.destination); "
                          + "gas up to \(p.gasEstimate), top-up \(p.topupAmount)")
                }
                for w in report.waiting { print("  waiting   \(w.address) \(w.symbol): \(w.reason)") }
                id = report.stored.first
                if id == nil {  // planned meanwhile by sweep-worker's own planner, or waiting
                    id = try await ctx.database.withConnection { c in
                        try await Sweeps.list(chain: chain.name, state: nil, limit: 50, on: c, logger: ctx.logger).first {
                            $0.address == address && $0.state != "failed" && $0.state != "swept"
                        }?.id
                    }
                }
                guard id == nil else { break }
                guard ContinuousClock.now < deadline else { throw ValidationError("demo: the deposit address was not planned for a sweep in time") }
                try await Task.sleep(for: .seconds(1))
            }
            var last = ""
            while true {
                let sweep = try await ctx.database.withConnection { c in try await Sweeps.find(id!, on: c, logger: ctx.logger) }
                let state = sweep?.state ?? "?"
                if state != last {
                    print("  sweep     \(id!) \(state)\(sweep?.stateReason.map { ": \($0)" } ?? "")")
                    last = state
                }
                if state == "swept" { break }
                if state == "failed" { throw ValidationError("demo: sweep \(id!) failed") }
                guard ContinuousClock.now < deadline else { throw ValidationError("demo: sweep \(id!) did not finish in time (state \(state))") }
                try await Task.sleep(for: .milliseconds(300))
            }
        }

        func balance(_ ctx: CLIContext, coinType: String, merchantID: Int64) async throws -> BigInt {
            try await ctx.database.withConnection { c in
                guard let coin = try await Coins.find(mainCoinType: "195", coinType: coinType, on: c, logger: ctx.logger) else { return 0 }
                return try await Ledger.available(merchantID: merchantID, on: c, logger: ctx.logger)[coin.id] ?? 0
            }
        }

        /// Waits until each (withdrawal id, status) callback arrived.
        func waitFor(_ arrived: borrowing Mutex<[MerchantReceiver.Received]>, _ wanted: [(Int64, String)], deadline: ContinuousClock.Instant) async throws {
            func has(_ id: Int64, _ status: String) -> Bool {
                arrived.withLock { list in
                    list.contains { r in
                        r.body?["tradeId"] == .string(String(id)) && (r.body?["status"] == .number(status) || r.body?["status"] == .string(status))
                    }
                }
            }
            while !wanted.allSatisfy({ has($0.0, $0.1) }) {
                guard ContinuousClock.now < deadline else {
                    let missing = wanted.filter { !has($0.0, $0.1) }.map { "withdrawal \($0.0) status \($0.1)" }
                    print("demo: no callback for \(missing.joined(separator: ", ")); see gatewayctl status and .local/logs/*.log")
                    throw ExitCode(1)
                }
                try await Task.sleep(for: .milliseconds(200))
            }
        }

        /// A withdrawal through the Udun API, signed as a merchant's SDK signs it; returns its id.
        func withdraw(_ ctx: CLIContext, _ http: HTTPClient, api: String, path: String, merchantID: Int64, key: String, coinType: String, to: String, amount: String,
                      callURL: String, businessID: String) async throws -> Int64 {
            let body = JSONValue.array([.object([
                ("merchantId", .string(String(merchantID))), ("mainCoinType", .string("195")), ("coinType", .string(coinType)),
                ("address", .string(to)), ("amount", .string(amount)), ("callUrl", .string(callURL)), ("businessId", .string(businessID)),
            ])]).serialized
            _ = try await Deposits.udunPost(http, url: api + path, body: body, key: key)
            // The API answers the withdrawal's businessId; its id is the callbacks' tradeId.
            var id: Int64?
            for try await v in try await ctx.database.query("""
                SELECT id FROM gateway.withdrawals WHERE merchant_id = \(merchantID) AND business_id = \(businessID)
                """).decode(Int64.self) { id = v }
            guard let id else { throw ValidationError("demo: withdrawal \(businessID) not found") }
            return id
        }
    }
}

/// The parsed options are read-only once `run` starts.
extension DemoCommand.Withdrawals: @unchecked Sendable {}
