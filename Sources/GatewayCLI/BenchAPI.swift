import ArgumentParser
import AsyncHTTPClient
import ChainKit
import Foundation
import GatewayAPI
import GatewayCore
import GatewayRuntime
import GatewayServices
import Logging
import NIOCore
import NIOHTTP1
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// `gatewayctl bench api`: signed `/mch/withdraw` requests against an in-process gateway-api.
struct APIBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "api",
        abstract: "Signed /mch/withdraw requests per second and their latency, at a given concurrency.",
        discussion: """
            Runs gateway-api in this process on a loopback port, against a scratch database \
            (<database>_bench, created and migrated when missing), with a merchant, a coin and a wallet \
            of its own, and sends signed withdrawals from --concurrency connections. Each request is \
            durable: the withdrawal and its review job are committed before the answer. Prints \
            `withdraw_requests_per_s`, `p50_ms`, `p99_ms` and `errors`. scripts/bench-api.sh runs it \
            beside pgbench.
            """)

    @OptionGroup var options: ProcessOptions
    @Option(help: "Requests to send (after 200 warm-up requests).") var requests = 20_000
    @Option(help: "Concurrent connections.") var concurrency = 32
    @Option(help: "Scratch database name (default: <configured database>_bench).") var database: String?
    @Option(help: ArgumentHelp(
        "Instead of running: set up the merchant in the scratch database and write --requests signed /mch/withdraw envelopes "
            + "to this file, one per line, for an outside client (scripts/bench-api.sh drives gateway-api with wrk).", valueName: "path"))
    var writeRequests: String?
    @Option(help: ArgumentHelp(
        "With --write-requests: also write a pgbench script that runs the API's own withdrawal statement (withdrawal, review "
            + "job, replay record) for one request per transaction, for the same merchant and coin: the peer scripts/bench-api.sh "
            + "runs beside wrk.", valueName: "path"))
    var writePgbench: String?

    func run() async throws {
        if let path = writeRequests { return try await write(to: path) }
        var config = try options.loadConfig()
        Observability.bootstrapLogging(level: .warning)
        Observability.bootstrapMetrics()
        var logger = Logger(label: "gateway.bench")
        logger.logLevel = .warning
        config.database.database = database ?? config.database.database + "_bench"
        config.database.poolSize = max(config.database.poolSize, concurrency + 4)
        config.api.listen = ListenAddress(host: "127.0.0.1", port: 0)
        config.api.callbackURLs.allowLoopback = true
        try ScratchDatabase.prepare(config.database, logger: logger)
        let db = Database(config: config.database, logger: logger)
        let (total, concurrency) = (requests, self.concurrency)

        let portBox = Mutex<Int?>(nil)
        let (started, startedCont) = AsyncStream<Void>.makeStream()
        let app = buildApplication(config: config, database: db, directory: .standard, logger: logger, onServerRunning: { channel in
            portBox.withLock { $0 = channel.localAddress?.port }
            startedCont.yield()
        })
        let group = ServiceGroup(configuration: .init(services: [.init(service: db), .init(service: app)], logger: logger))
        let result = try await withThrowingTaskGroup(of: Void.self) { tasks -> (Double, Double, Double, Int) in
            tasks.addTask { try await group.run() }
            for await _ in started { break }
            let port = portBox.withLock { $0 } ?? 0
            let (merchant, key) = try await Self.setUp(db, logger: logger)
            var clientConfig = HTTPClient.Configuration()
            clientConfig.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = concurrency
            let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: clientConfig)
            let url = "http://127.0.0.1:\(port)/mch/withdraw"
            let run = UInt32.random(in: 0...UInt32.max)
            _ = try await Self.drive(client, url: url, merchant: merchant, key: key, prefix: "w\(run)-", count: 200, concurrency: concurrency)
            let t0 = ContinuousClock.now
            let (latencies, errors) = try await Self.drive(client, url: url, merchant: merchant, key: key, prefix: "b\(run)-", count: total, concurrency: concurrency)
            let elapsed = seconds(ContinuousClock.now - t0)
            try await client.shutdown()
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
            let sorted = latencies.sorted()
            func pct(_ p: Double) -> Double { sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))] * 1000 }
            return (Double(latencies.count) / elapsed, pct(0.5), pct(0.99), errors)
        }
        print("requests \(total) concurrency \(concurrency) database \(config.database.database)")
        print("withdraw_requests_per_s \(Int(result.0))")
        print(String(format: "p50_ms %.2f", result.1))
        print(String(format: "p99_ms %.2f", result.2))
        print("errors \(result.3)")
        if result.3 > 0 { throw ExitCode(1) }
    }

    /// Sets up a merchant and writes signed withdrawal envelopes (unique businessIds, signed now:
    /// use them within the timestamp window).
    func write(to path: String) async throws {
        var config = try options.loadConfig()
        Observability.bootstrapLogging(level: .warning)
        var logger = Logger(label: "gateway.bench")
        logger.logLevel = .warning
        config.database.database = database ?? config.database.database + "_bench"
        try ScratchDatabase.prepare(config.database, logger: logger)
        let db = Database(config: config.database, logger: logger)
        let frozen = logger
        let (merchant, key, coin) = try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try? await db.run() }
            defer { tasks.cancelAll() }
            let (merchant, key) = try await Self.setUp(db, logger: frozen)
            let coin = try await db.withConnection { c in
                try await Coins.find(mainCoinType: "195", coinType: "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t", on: c, logger: frozen)
            }
            return (merchant, key, coin)
        }
        let run = UInt32.random(in: 0...UInt32.max)
        let ts = String(Int64(Date().timeIntervalSince1970))
        var out = ""
        out.reserveCapacity(requests * 400)
        for i in 0..<requests {
            let body = JSONValue.array([.object([
                ("merchantId", .string(String(merchant))), ("mainCoinType", .string("195")),
                ("coinType", .string("TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t")), ("address", .string("TLng7RobC5jcNtw1XPxoyMiiifEksYEosp")),
                ("amount", .string("1.5")), ("callUrl", .string("http://127.0.0.1:9/cb")), ("businessId", .string("x\(run)-\(i)")),
            ])]).serialized
            out += UdunRequests.envelope(body: body, key: key, nonce: String(i), timestamp: ts) + "\n"
        }
        guard FileManager.default.createFile(atPath: path, contents: Data(out.utf8)) else { throw ValidationError("cannot write \(path)") }
        print("merchant \(merchant) database \(config.database.database) requests \(requests) file \(path)")
        if let script = writePgbench {
            guard let coin else { throw ValidationError("the bench coin is missing from \(config.database.database)") }
            let text = Self.pgbenchScript(merchant: merchant, coinID: coin.id)
            guard FileManager.default.createFile(atPath: script, contents: Data(text.utf8)) else { throw ValidationError("cannot write \(script)") }
            let plainPath = (script as NSString).deletingPathExtension + "-plain.sql"
            let plain = Self.pgbenchPlainScript(merchant: merchant, coinID: coin.id)
            guard FileManager.default.createFile(atPath: plainPath, contents: Data(plain.utf8)) else { throw ValidationError("cannot write \(plainPath)") }
            print("pgbench scripts \(script) \(plainPath)")
        }
    }

    /// The API's withdrawal statement with one request's values in place of its 13 array parameters (a fresh businessId
    /// and signature each time, as the wrk requests have), so pgbench commits exactly what one request commits.
    static func pgbenchScript(merchant: Int64, coinID: Int32) -> String {
        let sql = Withdrawals.insertSQL(replacingParametersWith: [
            "ARRAY[\(merchant)]", "ARRAY[md5(random()::text)]", "ARRAY[\(coinID)]", "ARRAY['tron']", "ARRAY['TLng7RobC5jcNtw1XPxoyMiiifEksYEosp']",
            "ARRAY['1500000']", "ARRAY['1000000']", "ARRAY['http://127.0.0.1:9/cb']", "ARRAY['']", "ARRAY['']", "ARRAY['']", "ARRAY[false]",
            "ARRAY[md5(random()::text)]",
        ])
        // pgbench reads a statement up to its semicolon; line breaks are fine inside, comment lines are left out.
        return sql.split(separator: "\n").filter { !$0.trimmingCharacters(in: .whitespaces).hasPrefix("--") }.joined(separator: "\n") + ";\n"
    }

    /// The same three rows the plain way: one transaction of three single-row inserts (the replay record, the
    /// withdrawal, its review job), each with its conflict handling — what an application without group commit does.
    static func pgbenchPlainScript(merchant: Int64, coinID: Int32) -> String {
        """
        BEGIN;
        INSERT INTO gateway.request_signatures (merchant_id, sign) VALUES (\(merchant), md5(random()::text)) ON CONFLICT DO NOTHING;
        INSERT INTO gateway.withdrawals (merchant_id, business_id, coin_id, chain, address, amount, fee, call_url, memo, remark, wallet_ref, proxypay)
            VALUES (\(merchant), md5(random()::text), \(coinID), 'tron', 'TLng7RobC5jcNtw1XPxoyMiiifEksYEosp', 1500000, 1000000, 'http://127.0.0.1:9/cb', '', '', '', false)
            ON CONFLICT (merchant_id, business_id) DO NOTHING RETURNING id AS wid \\gset
        INSERT INTO gateway.jobs (stage, kind, ref, unique_key) VALUES ('review', 'review', 'withdrawal:' || :wid, 'withdrawal:' || :wid)
            ON CONFLICT (stage, unique_key) WHERE unique_key IS NOT NULL DO NOTHING;
        COMMIT;

        """
    }

    /// A merchant with a TRON wallet and the USDT-TRC20 coin; returns its number and key. Each run's merchant gets an
    /// account of its own (an account's addresses belong to one wallet), so runs can share the scratch database.
    static func setUp(_ db: Database, logger: Logger) async throws -> (Int64, String) {
        let root = try ExtendedPrivateKey(seed: try BIP39.seed(fromMnemonic: "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"))
        let accounts = try await db.query("SELECT count(*) FROM gateway.wallets WHERE chain = 'tron'")
        var account: Int64 = 0
        for try await n in accounts.decode(Int64.self) { account = n }
        let xpub = try root.derived(path: .account(coinType: DerivationPath.tronCoinType, account: UInt32(account))).extendedPublicKey.serialized()
        return try await db.transaction { c in
            let (m, secrets) = try await Merchants.create(name: "bench \(Date())", actor: "bench", on: c, logger: logger)
            try await c.query("UPDATE gateway.merchants SET rate_limit_per_min = 100000000 WHERE id = \(m.id)", logger: logger)
            if try await Coins.find(mainCoinType: "195", coinType: "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t", on: c, logger: logger) == nil {
                _ = try await Coins.add(Coin(chain: "tron", mainCoinType: "195", coinType: "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t", symbol: "USDT",
                                             name: "USDT", coinName: "TRON", decimals: 6, isToken: true), directory: .standard, actor: "bench", on: c, logger: logger)
            }
            _ = try await Wallets.attach(merchantID: m.id, chain: "tron", xpub: xpub, accountIndex: Int(account), coldAddress: nil, directory: .standard,
                                         actor: "bench", on: c, logger: logger)
            return (m.id, secrets.apiKey)
        }
    }

    /// Sends `count` signed withdrawals from `concurrency` loops; returns each latency in seconds and the error count.
    static func drive(_ client: HTTPClient, url: String, merchant: Int64, key: String, prefix: String, count: Int,
                      concurrency: Int) async throws -> ([Double], Int) {
        let next = SharedCounter()
        return try await withThrowingTaskGroup(of: ([Double], Int).self) { group in
            for _ in 0..<concurrency {
                group.addTask {
                    var latencies: [Double] = []
                    var errors = 0
                    while true {
                        let i = next.value.add(1, ordering: .relaxed).oldValue
                        if i >= count { break }
                        let body = JSONValue.array([.object([
                            ("merchantId", .string(String(merchant))), ("mainCoinType", .string("195")),
                            ("coinType", .string("TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t")), ("address", .string("TLng7RobC5jcNtw1XPxoyMiiifEksYEosp")),
                            ("amount", .string("1.5")), ("callUrl", .string("http://127.0.0.1:9/cb")), ("businessId", .string("\(prefix)\(i)")),
                        ])]).serialized
                        let request = UdunRequests.post(url: url, body: body, key: key, nonce: String(i))
                        let t0 = ContinuousClock.now
                        do {
                            let response = try await client.execute(request, timeout: .seconds(30))
                            let reply = try await response.body.collect(upTo: 1 << 16)
                            latencies.append(seconds(ContinuousClock.now - t0))
                            if response.status != .ok || !String(buffer: reply).hasPrefix("{\"code\":200") { errors += 1 }
                        } catch {
                            errors += 1
                        }
                    }
                    return (latencies, errors)
                }
            }
            var all: [Double] = []
            var errors = 0
            for try await (l, e) in group {
                all += l
                errors += e
            }
            return (all, errors)
        }
    }
}

/// A counter shared by concurrent tasks.
final class SharedCounter: Sendable {
    let value = Atomic<Int>(0)
}
