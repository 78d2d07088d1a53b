import ArgumentParser
import BigInt
import ChainKit
import DevChain
import Foundation
import GatewayCore
import GatewayRuntime
import Logging

/// A small deterministic generator (SplitMix64) so benchmark inputs are the same on every run.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func account() -> AccountID {
        AccountID(bytes: (0..<20).map { _ in UInt8.random(in: 0...255, using: &self) })!
    }
}

/// Fixed benchmark key material (never funds): account xpubs of a fixed seed.
enum BenchKeys {
    static let master = try! ExtendedPrivateKey(seed: Data(repeating: 0x5a, count: 64))

    static func account(_ scheme: AddressScheme) -> WatchOnlyAccount {
        try! WatchOnlyAccount(accountKey: master.derived(path: scheme.accountPath(account: 0)).extendedPublicKey, scheme: scheme)
    }

    static let schemes: [(String, AddressScheme)] = [("tron", .tron), ("evm", .evm), ("btc", .bitcoinP2WPKH(.mainnet))]
}

/// `gatewayctl bench addresses`: deposit-address derivations per second from an account xpub.
struct AddressBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "addresses",
        abstract: "Derive deposit addresses 0/i from an account xpub; print derive_<chain>_addresses_per_s.",
        discussion: "Each derivation is one BIP32 public child step (a secp256k1 tweak-add) and the address encoding."
    )

    @Option(help: "Addresses per chain.") var count = 20_000

    func run() async throws {
        for (name, scheme) in BenchKeys.schemes {
            let account = BenchKeys.account(scheme)
            var checksum = 0
            let start = ContinuousClock.now
            for i in 0..<UInt32(count) { checksum &+= try account.depositAddress(index: i).utf8.count }
            let elapsed = seconds(ContinuousClock.now - start)
            guard checksum > 0 else { throw ValidationError("no addresses derived") }
            print("derive_\(name)_addresses_per_s \(Int(Double(count) / elapsed))")
        }
    }
}

/// `gatewayctl bench validate`: address validations per second.
struct ValidateBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Validate user-supplied addresses (1,000 distinct ones per chain, cycled); print validate_<chain>_per_s."
    )

    @Option(help: "Validations per chain.") var count = 200_000

    func run() async throws {
        for (name, scheme) in BenchKeys.schemes {
            let account = BenchKeys.account(scheme)
            let addresses = try account.depositAddresses(0..<1000)
            let chain: AddressChain = name == "tron" ? .tron : name == "evm" ? .evm : .bitcoin(.mainnet)
            var valid = 0
            let start = ContinuousClock.now
            for i in 0..<count {
                if (try? AddressValidator.validate(addresses[i % addresses.count], chain: chain)) != nil { valid += 1 }
            }
            let elapsed = seconds(ContinuousClock.now - start)
            guard valid == count else { throw ValidationError("\(count - valid) of the \(name) addresses failed validation") }
            print("validate_\(name)_per_s \(Int(Double(count) / elapsed))")
        }
    }
}

/// `gatewayctl bench scan`: blocks per second scanned from an in-process devchain over loopback HTTP.
struct ScanBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scan",
        abstract: "Scan devchain blocks of USDT transfers against a large watched set; print scan_<chain>_blocks_per_s.",
        discussion: """
            Starts devchain in this process on a loopback port, mines --blocks blocks of --transfers USDT transfers each \
            (every second one to a watched address), then scans them with the gateway's node client in ranges of \
            --range blocks, as chain-worker does: block hashes for reorg detection, token transfers (eth_getLogs / \
            gettransactioninfobyblocknum) and native transfers (full blocks), filtered against --watched addresses. \
            Only the scan is timed. Prints scan_<chain>_blocks_per_s, scan_<chain>_transfers_per_s and \
            scan_<chain>_deposits (the count found, checked against the count sent).
            """
    )

    @Option(help: "Blocks to scan per chain.") var blocks = 200
    @Option(help: "USDT transfers per block.") var transfers = 200
    @Option(help: "Watched addresses.") var watched = 100_000
    @Option(help: "Blocks per scan call.") var range = 20
    @Option(help: "evm, tron or both.") var chain = "both"

    func validate() throws {
        guard blocks > 0, transfers > 0, watched >= transfers, range > 0 else {
            throw ValidationError("--blocks, --transfers, --range must be positive; --watched ≥ --transfers")
        }
        guard ["evm", "tron", "both"].contains(chain) else { throw ValidationError("--chain must be evm, tron or both") }
    }

    func run() async throws {
        var quiet = Logger(label: "gateway.bench")
        quiet.logLevel = .warning
        let logger = quiet
        let (blocks, transfers, watchedCount, range, which) = (self.blocks, self.transfers, self.watched, self.range, self.chain)
        let options = DevChainOptions(seed: "bench", devAccounts: 0)
        let lines = try await DevChain.withRunning(options, logger: logger) { node, url -> [String] in
            var rng = SplitMix64(state: 42)
            let watchedIDs = (0..<watchedCount).map { _ in rng.account() }
            let watchedSet = WatchedAddresses(watchedIDs)
            // The same recipients for both chains: half watched, half not.
            let plan: [[(to: AccountID, amount: BigUInt)]] = (0..<blocks).map { _ in
                (0..<transfers).map { i in
                    (
                        i % 2 == 0 ? watchedIDs[Int.random(in: 0..<watchedIDs.count, using: &rng)] : rng.account(),
                        BigUInt(UInt64.random(in: 1...1_000_000_000, using: &rng))
                    )
                }
            }
            let expected = blocks * ((transfers + 1) / 2)
            var out: [String] = []
            for kind in [ChainKind.evm, .tron] where which == "both" || which == kind.rawValue {
                let first = (kind == .evm ? node.evm.height : node.tron.height) + 1
                for block in plan {
                    if kind == .evm { try node.evm.transferUSDT(block) } else { try node.tron.transferUSDT(block) }
                }
                let last = kind == .evm ? node.evm.height : node.tron.height
                let clientOptions = NodeClientOptions(
                    url: url,
                    requestTimeout: .seconds(30),
                    maxBatchSize: 50,
                    maxLogBlockRange: 2000,
                    maxConcurrentRequests: 4
                )
                let client: any ChainNodeClient =
                    kind == .evm ? EVMNodeClient(options: clientOptions, logger: logger) : TronNodeClient(options: clientOptions, logger: logger)
                let token = kind == .evm ? node.evm.usdt : node.tron.usdt
                var found = 0
                let start = ContinuousClock.now
                var from = first
                while from <= last {
                    let to = min(last, from + UInt64(range) - 1)
                    let scan = try await client.transfers(in: from...to, to: watchedSet, tokens: [token], includeNative: true)
                    found += scan.transfers.count
                    from = to + 1
                }
                let elapsed = seconds(ContinuousClock.now - start)
                guard found == expected else { throw ValidationError("\(kind) scan found \(found) deposits, expected \(expected)") }
                let scanned = Double(last - first + 1)
                out.append("scan_\(kind)_blocks_per_s \(String(format: "%.1f", scanned / elapsed))")
                out.append("scan_\(kind)_transfers_per_s \(Int(scanned * Double(transfers) / elapsed))")
                out.append("scan_\(kind)_deposits \(found)")
            }
            return out
        }
        for line in lines { print(line) }
    }
}
