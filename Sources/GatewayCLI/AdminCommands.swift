import ArgumentParser
import BigInt
import ChainKit
import Foundation
import GatewayCore
import GatewayRuntime
import GatewayServices
import Logging
import PostgresNIO

let cliActor = "gatewayctl:\(ProcessInfo.processInfo.environment["USER"] ?? "operator")"
func iso(_ date: Date) -> String { date.ISO8601Format() }

/// A command that failed at run time (not a usage error): printed as `Error: …`, exit status 1.
struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Runs a write in a transaction and turns service errors into the CLI's validation errors.
func write<R: Sendable>(_ options: ProcessOptions, _ body: @escaping @Sendable (DatabaseConnection, Logger) async throws -> R) async throws -> R {
    do {
        return try await CLIContext.with(options) { ctx in try await ctx.database.transaction { c in try await body(c, ctx.logger) } }
    } catch let e as ServiceError {
        throw CLIError(e.description)
    } catch let e as ReviewNotAllowed {
        throw CLIError(e.description)
    } catch let e as PSQLError {
        throw CLIError("database: \(DatabaseErrors.describe(e))")
    }
}

func read<R: Sendable>(_ options: ProcessOptions, _ body: @escaping @Sendable (DatabaseConnection, Logger) async throws -> R) async throws -> R {
    do {
        return try await CLIContext.with(options) { ctx in try await ctx.database.withConnection { c in try await body(c, ctx.logger) } }
    } catch let e as ServiceError {
        throw CLIError(e.description)
    } catch let e as PSQLError {
        throw CLIError("database: \(DatabaseErrors.describe(e))")
    }
}

struct MerchantCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merchant", abstract: "Create and administer merchants.",
        subcommands: [Add.self, List.self, Show.self, Enable.self, Disable.self, RotateKey.self, AutoPayment.self, FeeMode.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a merchant; prints its number, API key and webhook secret once.")
        @OptionGroup var options: ProcessOptions
        @Option(help: "The merchant's name.") var name: String
        @Flag(help: "Pay /mch/withdraw/proxypay automatically when the review rules pass.") var autoPayment = false
        @Option(help: "Most deposit addresses it may create.") var maxAddresses: Int?

        func run() async throws {
            let (name, auto, maxA) = (self.name, autoPayment, maxAddresses)
            let (m, secrets) = try await write(options) { c, l in try await Merchants.create(name: name, autoPayment: auto, maxAddresses: maxA, actor: cliActor, on: c, logger: l) }
            print("merchant \(m.id) created: \(m.name)")
            print("merchantId      \(m.id)")
            print("api key         \(secrets.apiKey)")
            print("webhook secret  \(secrets.webhookSecret)")
            print("Store the key and secret now: they are not shown again (rotate-key makes a new key).")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List merchants.")
        @OptionGroup var options: ProcessOptions

        func run() async throws {
            let all = try await read(options) { c, l in try await Merchants.list(on: c, logger: l) }
            var t = TextTable(header: ["id", "name", "status", "auto payment", "max addresses", "created"])
            for m in all {
                t.add(["\(m.id)", m.name, m.active ? "active" : "disabled", m.autoPayment ? "on" : "off", m.maxAddresses.map(String.init) ?? "-",
                       iso(m.createdAt)])
            }
            print(all.isEmpty ? "no merchants" : t.render(), terminator: all.isEmpty ? "\n" : "")
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a merchant with its wallets (never its key).")
        @OptionGroup var options: ProcessOptions
        @Argument(help: "Merchant number.") var id: Int64

        func run() async throws {
            let id = self.id
            let (m, wallets) = try await read(options) { c, l in
                guard let m = try await Merchants.find(id, on: c, logger: l) else { throw ServiceError.notFound("merchant \(id)") }
                return (m, try await Wallets.list(merchantID: id, on: c, logger: l))
            }
            print("merchant \(m.id): \(m.name)\n  status        \(m.active ? "active" : "disabled")\n  auto payment  \(m.autoPayment ? "on" : "off")")
            print("  max addresses \(m.maxAddresses.map(String.init) ?? "no limit")\n  created       \(iso(m.createdAt))")
            for w in wallets {
                print("  wallet \(w.chain): next index \(w.nextIndex), hot \(w.hotAddress)\(w.coldAddress.map { ", cold \($0)" } ?? "")")
            }
        }
    }

    struct Enable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Let a disabled merchant use the API again.")
        @OptionGroup var options: ProcessOptions
        @Argument(help: "Merchant number.") var id: Int64
        func run() async throws {
            let id = self.id
            let m = try await write(options) { c, l in try await Merchants.setActive(id, true, actor: cliActor, on: c, logger: l) }
            print("merchant \(m.id) enabled")
        }
    }

    struct Disable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Refuse a merchant's API requests (code 4169) until enabled again.")
        @OptionGroup var options: ProcessOptions
        @Argument(help: "Merchant number.") var id: Int64
        func run() async throws {
            let id = self.id
            let m = try await write(options) { c, l in try await Merchants.setActive(id, false, actor: cliActor, on: c, logger: l) }
            print("merchant \(m.id) disabled")
        }
    }

    struct RotateKey: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Replace a merchant's API key; the old key stops working at once. Prints the new key once.")
        @OptionGroup var options: ProcessOptions
        @Argument(help: "Merchant number.") var id: Int64
        func run() async throws {
            let id = self.id
            let key = try await write(options) { c, l in try await Merchants.rotateKey(id, actor: cliActor, on: c, logger: l) }
            print("new api key for merchant \(id): \(key)\nStore it now: it is not shown again.")
        }
    }

    struct AutoPayment: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "auto-payment", abstract: "Turn automatic payment (proxypay) on or off.")
        @OptionGroup var options: ProcessOptions
        @Argument(help: "Merchant number.") var id: Int64
        @Argument(help: "on or off.") var setting: String
        func validate() throws { guard ["on", "off"].contains(setting) else { throw ValidationError("say on or off") } }
        func run() async throws {
            let (id, on) = (self.id, setting == "on")
            _ = try await write(options) { c, l in try await Merchants.setAutoPayment(id, on, actor: cliActor, on: c, logger: l) }
            print("automatic payment \(setting) for merchant \(id)")
        }
    }

    struct FeeMode: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "fee-mode",
            abstract: "How the coin's withdrawal fee is charged: deduct (from the amount sent; the default) or add (reserved on top).")
        @OptionGroup var options: ProcessOptions
        @Argument(help: "Merchant number.") var id: Int64
        @Argument(help: "deduct or add.") var mode: String
        func validate() throws { guard ["deduct", "add"].contains(mode) else { throw ValidationError("say deduct or add") } }
        func run() async throws {
            let (id, mode) = (self.id, self.mode)
            try await write(options) { c, l in try await Merchants.setWithdrawalFeeMode(id, mode, actor: cliActor, on: c, logger: l) }
            print("merchant \(id): withdrawal fees \(mode == "add" ? "are reserved on top of the amount" : "are deducted from the amount sent")")
        }
    }
}

struct CoinCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "coin", abstract: "The coins the gateway handles.",
                                                    subcommands: [List.self, Add.self, Enable.self, Disable.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List coins.")
        @OptionGroup var options: ProcessOptions
        func run() async throws {
            let coins = try await read(options) { c, l in try await Coins.list(on: c, logger: l) }
            var t = TextTable(header: ["id", "chain", "symbol", "mainCoinType", "coinType", "decimals", "min deposit", "withdrawal fee", "enabled"])
            for coin in coins {
                t.add(["\(coin.id)", coin.chain, coin.symbol, coin.mainCoinType, coin.coinType, "\(coin.decimals)",
                       CoinAmount.format(coin.minDeposit, decimals: coin.decimals), CoinAmount.format(coin.withdrawalFee, decimals: coin.decimals),
                       coin.enabled ? "yes" : "no"])
            }
            print(coins.isEmpty ? "no coins" : t.render(), terminator: coins.isEmpty ? "\n" : "")
        }
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a coin.",
            discussion: "Examples: --chain tron --main-coin-type 195 --symbol TRX --decimals 6; --chain tron --main-coin-type 195 --token TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t --symbol USDT --decimals 6")
        @OptionGroup var options: ProcessOptions
        @Option(help: "Chain name from workers.yml (tron, ethereum, …).") var chain: String
        @Option(help: "The chain's SLIP-44 code (195 TRON, 60 Ethereum, 0 Bitcoin).") var mainCoinType: String
        @Option(help: "The token's contract address (omit for the native coin).") var token: String?
        @Option(help: "Symbol, e.g. USDT.") var symbol: String
        @Option(help: "Display name (default: the symbol).") var name: String?
        @Option(help: "Chain display name, e.g. TRON (default: the chain name).") var coinName: String?
        @Option(help: "Decimals.") var decimals: Int
        @Option(help: "Smallest deposit credited, in whole coin units.") var minDeposit = "0"
        @Option(help: "Fee charged per withdrawal, in whole coin units.") var withdrawalFee = "0"

        func run() async throws {
            let minDep = try units(minDeposit, "--min-deposit"), fee = try units(withdrawalFee, "--withdrawal-fee")
            let coin = Coin(chain: chain, mainCoinType: mainCoinType, coinType: token ?? mainCoinType, symbol: symbol, name: name ?? symbol,
                            coinName: coinName ?? chain.uppercased(), mainSymbol: token == nil ? "" : "", decimals: decimals, isToken: token != nil,
                            minDeposit: minDep, withdrawalFee: fee)
            let directory = ChainDirectory(config: try options.loadConfig())
            let added = try await write(options) { c, l in try await Coins.add(coin, directory: directory, actor: cliActor, on: c, logger: l) }
            print("coin \(added.id) added: \(added.symbol) on \(added.chain) (\(added.mainCoinType)/\(added.coinType))")
        }

        func units(_ text: String, _ flag: String) throws -> BigUInt {
            if text == "0" { return 0 }
            do { return try CoinAmount.parse(text, decimals: decimals) } catch { throw ValidationError("\(flag): \(text) is not an amount with at most \(decimals) decimals") }
        }
    }

    struct Enable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Enable a coin.")
        @OptionGroup var options: ProcessOptions
        @Argument(help: "Coin id (see coin list).") var id: Int32
        func run() async throws {
            let id = self.id
            let coin = try await write(options) { c, l in try await Coins.setEnabled(id, true, actor: cliActor, on: c, logger: l) }
            print("coin \(coin.id) (\(coin.symbol)) enabled")
        }
    }

    struct Disable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Disable a coin: the Open API answers 4045 for it.")
        @OptionGroup var options: ProcessOptions
        @Argument(help: "Coin id (see coin list).") var id: Int32
        func run() async throws {
            let id = self.id
            let coin = try await write(options) { c, l in try await Coins.setEnabled(id, false, actor: cliActor, on: c, logger: l) }
            print("coin \(coin.id) (\(coin.symbol)) disabled")
        }
    }
}

struct WalletCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "wallet", abstract: "Merchant wallets: one HD account per chain.",
                                                    subcommands: [Attach.self, List.self, Show.self])

    struct Attach: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Attach an account xpub to a merchant for a chain.",
            discussion: "Deposit address i is account/0/i; the hot address is account/1/0. Get an xpub with `gatewayctl keys xpub --chain C --account N`.")
        @OptionGroup var options: ProcessOptions
        @Option(help: "Merchant number.") var merchant: Int64
        @Option(help: "Chain name from workers.yml.") var chain: String
        @Option(help: "The account-level extended public key (m/44'/coin'/account'), when the keys live elsewhere.") var xpub: String?
        @Option(help: "Derive the account from the gateway seed (wallet: in workers.yml); the signing stages find its keys by this number.")
        var account: UInt32?
        @Option(help: "Watch-only cold address that receives sweeps above the hot wallet's cap.") var cold: String?

        func validate() throws {
            guard (xpub == nil) != (account == nil) else { throw ValidationError("give --xpub, or --account to derive it from the gateway seed") }
            if let account, account >= DerivationPath.hardenedOffset { throw ValidationError("--account must be below 2^31") }
        }

        func run() async throws {
            let config = try options.loadConfig()
            let directory = ChainDirectory(config: config)
            guard let kind = directory.kind(chain) else { throw ValidationError("chain '\(chain)' is not in workers.yml") }
            var xpub = self.xpub
            if let account {
                let seed: Data
                do { seed = try config.wallet.loadSeed(relativeTo: config.source) } catch let e as ConfigError { throw ValidationError(e.description) }
                let master = try ExtendedPrivateKey(seed: seed)
                xpub = try master.derived(path: kind.scheme.accountPath(account: account)).extendedPublicKey.serialized()
            }
            let (m, chain, accountIndex, cold, key) = (merchant, self.chain, account.map(Int.init), self.cold, xpub ?? "")
            let w = try await write(options) { c, l in
                try await Wallets.attach(merchantID: m, chain: chain, xpub: key, accountIndex: accountIndex, coldAddress: cold, directory: directory,
                                         actor: cliActor, on: c, logger: l)
            }
            print("wallet attached: merchant \(w.merchantID) on \(w.chain), hot address \(w.hotAddress)")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List wallets.")
        @OptionGroup var options: ProcessOptions
        @Option(help: "Only this merchant.") var merchant: Int64?
        func run() async throws {
            let m = merchant
            let all = try await read(options) { c, l in try await Wallets.list(merchantID: m, on: c, logger: l) }
            var t = TextTable(header: ["merchant", "chain", "account", "next index", "hot address", "cold address"])
            for w in all { t.add(["\(w.merchantID)", w.chain, w.accountIndex.map(String.init) ?? "-", "\(w.nextIndex)", w.hotAddress, w.coldAddress ?? "-"]) }
            print(all.isEmpty ? "no wallets" : t.render(), terminator: all.isEmpty ? "\n" : "")
        }
    }
}

/// `gatewayctl address list` (a subcommand of `address`, beside derive and validate).
struct AddressListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List merchants' deposit addresses, newest first.")
    @OptionGroup var options: ProcessOptions
    @Option(help: "Only this merchant.") var merchant: Int64?
    @Option(help: "Only this chain.") var chain: String?
    @Option(help: "At most this many.") var limit = 100
    func run() async throws {
        let (m, ch, lim) = (merchant, chain, limit)
        let all = try await read(options) { c, l in try await Addresses.list(merchantID: m, chain: ch, limit: lim, on: c, logger: l) }
        var t = TextTable(header: ["merchant", "chain", "index", "address", "alias", "callUrl", "created"])
        for a in all { t.add(["\(a.merchantID)", a.chain, "\(a.index)", a.address, a.alias, a.callURL, iso(a.createdAt)]) }
        print(all.isEmpty ? "no addresses" : t.render(), terminator: all.isEmpty ? "\n" : "")
    }
}

struct WithdrawalCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "withdrawal", abstract: "Withdrawals.", subcommands: [List.self, Show.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List withdrawals, newest first.")
        @OptionGroup var options: ProcessOptions
        @Option(help: "Only this merchant.") var merchant: Int64?
        @Option(help: "Only this state (received, pending_review, approved, rejected, signed, broadcast, confirmed, failed).") var state: String?
        @Option(help: "At most this many.") var limit = 100
        func run() async throws {
            let (m, st, lim) = (merchant, state, limit)
            let all = try await read(options) { c, l in try await Withdrawals.list(merchantID: m, state: st, limit: lim, on: c, logger: l) }
            var t = TextTable(header: ["id", "merchant", "businessId", "chain", "address", "amount (base units)", "state", "created"])
            for w in all { t.add(["\(w.id)", "\(w.merchantID)", w.businessID, w.chain, w.address, w.amount.description, w.state, iso(w.createdAt)]) }
            print(all.isEmpty ? "no withdrawals" : t.render(), terminator: all.isEmpty ? "\n" : "")
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one withdrawal.")
        @OptionGroup var options: ProcessOptions
        @Argument(help: "Withdrawal id (the callbacks' tradeId).") var id: Int64
        func run() async throws {
            let id = self.id
            let w = try await read(options) { c, l in
                guard let w = try await Withdrawals.find(id, on: c, logger: l) else { throw ServiceError.notFound("withdrawal \(id)") }
                return w
            }
            let lines: [(String, String)] = [
                ("merchant", "\(w.merchantID)"), ("businessId", w.businessID), ("chain", w.chain), ("address", w.address),
                ("amount", "\(w.amount) base units"), ("fee", "\(w.fee) base units"), ("kind", w.proxypay ? "proxypay" : "withdraw"),
                ("state", w.state + (w.stateReason.map { " (\($0))" } ?? "")), ("tx", w.txHash ?? "-"), ("memo", w.memo), ("remark", w.remark),
                ("version", "\(w.version)"), ("created", iso(w.createdAt)), ("updated", iso(w.updatedAt)),
            ]
            print("withdrawal \(w.id)")
            for (k, v) in lines { print("  \(k.padding(toLength: 11, withPad: " ", startingAt: 0)) \(v)") }
        }
    }
}

struct DepositCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "deposit", abstract: "Deposits found by chain-worker.", subcommands: [List.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List deposits, newest first.")
        @OptionGroup var options: ProcessOptions
        @Option(help: "Only this merchant.") var merchant: Int64?
        @Option(help: "Only this chain.") var chain: String?
        @Option(help: "Only this status (seen, confirmed, orphaned, ignored).") var status: String?
        @Option(help: "At most this many.") var limit = 100

        func validate() throws {
            if let status, !["seen", "confirmed", "orphaned", "ignored"].contains(status) {
                throw ValidationError("--status must be seen, confirmed, orphaned or ignored")
            }
            guard (1...100_000).contains(limit) else { throw ValidationError("--limit must be between 1 and 100000") }
        }

        func run() async throws {
            let (m, ch, st, lim) = (merchant, chain, status, limit)
            let all = try await read(options) { c, l in try await Deposits.list(merchantID: m, chain: ch, status: st, limit: lim, on: c, logger: l) }
            var t = TextTable(header: ["id", "merchant", "chain", "coin", "address", "amount (base units)", "block", "status", "tx", "seen"])
            for d in all {
                t.add(["\(d.id)", "\(d.merchantID)", d.chain, d.symbol, d.address, d.amount.description, "\(d.blockHeight)",
                       d.status + (d.statusReason.map { " (\($0.prefix(40)))" } ?? ""), d.txHash, iso(d.createdAt)])
            }
            print(all.isEmpty ? "no deposits" : t.render(), terminator: all.isEmpty ? "\n" : "")
        }
    }
}

struct AdminCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "admin", abstract: "Admin API access.", subcommands: [Token.self])

    struct Token: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Bearer tokens for /admin/*; a token's name is also a reviewer's name.",
            discussion: """
                A token names a reviewer and the highest review level they may decide (review.levels in workers.yml: 1 is \
                the first level; 0 decides none). The same name decides through the admin API (with the token) and through \
                gatewayctl review approve|reject --as NAME.
                """,
            subcommands: [Add.self, Level.self, Disable.self])

        struct Add: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Create a token; prints it once.")
            @OptionGroup var options: ProcessOptions
            @Argument(help: "A name for the token (who or what uses it); the reviewer's name in review decisions.") var name: String
            @Option(help: "The highest review level this reviewer may decide (1 = the first of review.levels; 0: none).") var level = 1

            func validate() throws {
                guard (0...1000).contains(level) else { throw ValidationError("--level must be between 0 and 1000") }
            }

            func run() async throws {
                let (name, level) = (self.name, self.level)
                let token = try await write(options) { c, l in
                    try await AdminTokens.create(name: name, reviewLevel: level, actor: cliActor, on: c, logger: l)
                }
                print("admin token \(name) (reviews up to level \(level)): \(token)\nUse it as `Authorization: Bearer <token>`. It is not shown again.")
            }
        }

        struct Level: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Set the highest review level a token's reviewer may decide.")
            @OptionGroup var options: ProcessOptions
            @Argument(help: "The token's name.") var name: String
            @Argument(help: "The level (0: decides no reviews).") var level: Int

            func run() async throws {
                let (name, level) = (self.name, self.level)
                try await write(options) { c, l in try await AdminTokens.setReviewLevel(name: name, level: level, actor: cliActor, on: c, logger: l) }
                print("admin token \(name) may now decide reviews up to level \(level)")
            }
        }

        struct Disable: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Disable a token.")
            @OptionGroup var options: ProcessOptions
            @Argument(help: "The token's name.") var name: String
            func run() async throws {
                let name = self.name
                try await write(options) { c, l in try await AdminTokens.disable(name: name, actor: cliActor, on: c, logger: l) }
                print("admin token \(name) disabled")
            }
        }
    }
}

struct CallbacksCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "callbacks", abstract: "Callbacks to merchants.", subcommands: [List.self, Resend.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List callbacks, newest first.")
        @OptionGroup var options: ProcessOptions
        @Option(help: "Only this merchant.") var merchant: Int64?
        @Option(help: "Only this state (pending, delivered, dead).") var state: String?
        @Option(help: "At most this many.") var limit = 100
        func run() async throws {
            let (m, st, lim) = (merchant, state, limit)
            let all = try await read(options) { c, l in try await Callbacks.list(merchantID: m, state: st, limit: lim, on: c, logger: l) }
            var t = TextTable(header: ["id", "merchant", "trade", "status", "state", "attempts", "created", "last error"])
            for cb in all {
                t.add(["\(cb.id)", "\(cb.merchantID)", "\(cb.tradeType == 1 ? "deposit" : "withdrawal") \(cb.tradeID)", "\(cb.status)", cb.state,
                       "\(cb.attempts)", iso(cb.createdAt), String((cb.lastError ?? "").prefix(60))])
            }
            print(all.isEmpty ? "no callbacks" : t.render(), terminator: all.isEmpty ? "\n" : "")
        }
    }

    struct Resend: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Send callbacks again, byte for byte: one by id, or all of a merchant's (dead or delivered) since a time.")
        @OptionGroup var options: ProcessOptions
        @Option(help: "The callback's id.") var id: Int64?
        @Option(help: "Every callback of this merchant created since --since.") var merchant: Int64?
        @Option(help: "ISO 8601 time, e.g. 2026-11-26T00:00:00Z (with --merchant).") var since: String?
        @Flag(help: "With --merchant: also re-send delivered ones (default: dead ones only).") var includeDelivered = false

        func validate() throws {
            guard (id == nil) != (merchant == nil) else { throw ValidationError("give --id, or --merchant with --since") }
            if merchant != nil, since.flatMap({ try? Date($0, strategy: .iso8601) }) == nil {
                throw ValidationError("--since must be an ISO 8601 time such as 2026-11-26T00:00:00Z")
            }
        }

        func run() async throws {
            let (id, merchant, delivered) = (self.id, self.merchant, includeDelivered)
            let since = self.since.flatMap { try? Date($0, strategy: .iso8601) }
            let ids = try await write(options) { c, l -> [Int64] in
                var ids: [Int64] = []
                if let id {
                    ids = [id]
                } else if let merchant, let since {
                    for try await i in try await c.query("""
                        SELECT id FROM gateway.callbacks WHERE merchant_id = \(merchant) AND created_at >= \(since)
                        AND (state = 'dead' OR (\(delivered) AND state = 'delivered')) ORDER BY id
                        """, logger: l).decode(Int64.self) { ids.append(i) }
                }
                for i in ids { try await Callbacks.resend(i, actor: cliActor, on: c, logger: l) }
                return ids
            }
            print(ids.isEmpty ? "nothing to re-send" : "re-sending \(ids.count) callback(s): \(ids.prefix(20).map(String.init).joined(separator: ", "))")
        }
    }
}
