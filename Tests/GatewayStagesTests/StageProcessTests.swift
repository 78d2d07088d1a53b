import AsyncHTTPClient
import BigInt
import ChainKit
import DevChain
import Foundation
import GatewayCore
import GatewayRuntime
import GatewayServices
import GatewayTesting
import NIOCore
import NIOHTTP1
import PostgresNIO
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The stage executables as real processes: killed with SIGKILL, replaced, and checked for
/// exactly-once effects in the database and at the merchant.
@Suite(.serialized) struct StageProcessTests {
    static func yaml(devchain url: String) -> String {
        """
        log_level: info
        api:
          callback_urls: { allow_loopback: true }
        callbacks:
          request_timeout: 20s
          per_endpoint_concurrency: 4
          dead_after: 24h
        stages:
          chain: { lease: 2s, backoff: { base: 100ms, factor: 2, cap: 1s } }
          callback: { concurrency: 8, batch_size: 8, poll_interval: 100ms, lease: 2s, backoff: { base: 200ms, factor: 2, cap: 1s } }
        chains:
          tron:
            kind: tron
            node_url: \(url)
            confirmations: 2
            block_time: 1s
            poll_interval: 50ms
            request_timeout: 2s
            retry_attempts: 2
            scan_from: 1

        """
    }

    @Test func twoChainWorkerProcessesAndAKillNineCreditEachDepositOnce() async throws {
        try await TestDatabase.withDatabase { db in
            try await withDevChain("processes") { node, url in
                let h = try await DepositHarness.make(db, node: node, url: url)
                let config = try TestProcesses.configFile(Self.yaml(devchain: url))
                defer { try? FileManager.default.removeItem(atPath: config) }
                let env = TestProcesses.environment(for: db.config)
                let first = try TestProcesses.start("chain-worker", ["--config", config], environment: env)
                let second = try TestProcesses.start("chain-worker", ["--config", config], environment: env)
                #expect(await first.waitForOutput("ready", timeout: .seconds(30)))
                #expect(await second.waitForOutput("ready", timeout: .seconds(30)))

                var sent: BigUInt = 0
                for i in 0..<6 {
                    _ = try h.sendTronUSDT(h.tron[i % 3], BigUInt(1_000_000 + i))
                    sent += BigUInt(1_000_000 + i)
                    try await Task.sleep(for: .milliseconds(100))
                }
                node.tron.mine(2)
                #expect(try await eventually(timeout: .seconds(30)) { try await h.statuses() == ["confirmed": 6] })

                // Kill the leader outright: no lease release, no goodbye.
                var leader = ""
                for try await l in try await db.query("SELECT leader FROM gateway.chain_scanners WHERE chain = 'tron'").decode(String.self) { leader = l }
                let (victim, survivor) = leader.contains(":\(first.pid):") ? (first, second) : (second, first)
                #expect(leader.contains(":\(victim.pid):"))
                victim.signal(SIGKILL)
                _ = await victim.wait(timeout: .seconds(10))
                // And the node fails for a while, through devchain's control endpoint.
                var request = HTTPClientRequest(url: url + "/devchain/faults")
                request.method = .POST
                request.body = .bytes(ByteBuffer(string: #"{"mode":"http500","count":5,"scope":"tron"}"#))
                let reply = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
                #expect(reply.status == .ok)
                for i in 0..<6 {
                    _ = try h.sendTronUSDT(h.tron[i % 3], BigUInt(2_000_000 + i))
                    sent += BigUInt(2_000_000 + i)
                }
                node.tron.mine(2)
                #expect(try await eventually(timeout: .seconds(30)) { try await h.statuses() == ["confirmed": 12] },
                        "the stand-by takes over once the lease runs out")
                var now = ""
                for try await l in try await db.query("SELECT leader FROM gateway.chain_scanners WHERE chain = 'tron'").decode(String.self) { now = l }
                #expect(now.contains(":\(survivor.pid):"))
                survivor.signal(SIGTERM)
                #expect(await survivor.wait(timeout: .seconds(20)) == 0)
                #expect(try await h.available("tron.USDT") == BigInt(sent))
                #expect(try await count(db, "SELECT count(*) FROM gateway.callbacks") == 12)
                #expect(try await count(db, "SELECT count(*) FROM gateway.ledger_entries") == 24)
                #expect(try await h.ledgerProblems() == [])
                #expect(survivor.output.contains("scanner lease taken"), "the survivor logs the takeover")
                #expect(node.faults.pending == 0 && survivor.output.contains("HTTP 500"), "the node's failures were met and retried")
            }
        }
    }

    @Test func killNineOfTheCallbackWorkerMidDeliveryRedeliversTheSameCallback() async throws {
        try await TestDatabase.withDatabase { db in
            let h = try await CallbackHarness.make(db)
            h.receiver.setBehaviour(.init(hangPaths: ["/cb"], hang: .seconds(30)))
            let id = try #require(try await h.deposit(tradeID: 77))
            let config = try TestProcesses.configFile(Self.yaml(devchain: "http://127.0.0.1:9"))
            defer { try? FileManager.default.removeItem(atPath: config) }
            let env = TestProcesses.environment(for: db.config)
            let victim = try TestProcesses.start("callback-worker", ["--config", config], environment: env)
            #expect(try await eventually(timeout: .seconds(30)) { h.receiver.received.count == 1 }, "the delivery is in flight")
            victim.signal(SIGKILL)
            _ = await victim.wait(timeout: .seconds(10))
            #expect(try await count(db, "SELECT count(*) FROM gateway.callbacks WHERE state = 'pending'") == 1)

            h.receiver.setBehaviour(.init())
            let next = try TestProcesses.start("callback-worker", ["--config", config], environment: env)
            #expect(try await eventually(timeout: .seconds(30)) {
                try await count(db, "SELECT count(*) FROM gateway.callbacks WHERE state = 'delivered' AND id = \(id)") == 1
            }, "redelivered once the dead worker's lease ran out")
            next.signal(SIGTERM)
            #expect(await next.wait(timeout: .seconds(20)) == 0)
            let got = h.receiver.received
            #expect(got.count == 2)
            #expect(Set(got.map(\.rawBody)).count == 1, "the same stored bytes both times")
            #expect(Set(got.compactMap(\.webhookID)).count == 1, "the same webhook-id: the merchant's idempotency key")
            #expect(got.allSatisfy { $0.udunSignatureValid && $0.webhookSignatureValid })
        }
    }
}
