import BigInt
import ChainKit
import Foundation
import Hummingbird
import Synchronization

/// The control API under `/devchain/` (JSON in, JSON out; errors are HTTP 400 `{"error": …}`).
extension DevChain {
    /// A summary of both chains: ids, contracts, faucets, treasuries, dev accounts, heights.
    public var info: ChainKit.JSONValue {
        .object([
            "seed": .string(options.seed), "mnemonic": .string(keys.mnemonic),
            "evm": .object([
                "chain_id": .int(evm.chainID), "height": .int(evm.height), "usdt": .string(ChainKind.evm.format(evm.usdt)), "usdt_decimals": .int(6),
                "faucet": .string(ChainKind.evm.format(evm.faucet)), "treasury": .string(ChainKind.evm.format(evm.treasury)),
                "dev_accounts": .array(evm.devAccounts.map { .string(ChainKind.evm.format($0)) }),
                "max_log_range": evm.state.withLock { $0.maxLogRange }.map { .int($0) } ?? .null,
            ]),
            "tron": .object([
                "height": .int(tron.height), "usdt": .string(ChainKind.tron.format(tron.usdt)), "usdt_decimals": .int(6),
                "faucet": .string(ChainKind.tron.format(tron.faucet)), "treasury": .string(ChainKind.tron.format(tron.treasury)),
                "dev_accounts": .array(tron.devAccounts.map { .string(ChainKind.tron.format($0)) }), "solid_depth": .int(options.tronSolidDepth),
            ]),
            "automine": .bool(options.automine), "faults_pending": .int(faults.pending),
            "time_ms": .int(clock.nowMillis()), "genesis_time_ms": .int(options.genesisTimeMillis),
        ])
    }

    func control(path: String, isPost: Bool, query: [String: String], body: [UInt8]) -> Response {
        do {
            let params: JSONValue = body.isEmpty ? .object([]) : try JSONValue.parse(body)
            return Self.response(200, try controlResult(path: path, isPost: isPost, query: query, params: params).encoded())
        } catch let error as DevChainError {
            return Self.response(400, JSONValue.object(["error": .string(error.message)]).encoded())
        } catch {
            return Self.response(400, JSONValue.object(["error": .string("\(error)")]).encoded())
        }
    }

    private func controlResult(path: String, isPost: Bool, query: [String: String], params: JSONValue) throws -> JSONValue {
        let parts = path.split(separator: "/").map(String.init)
        guard parts.first == "devchain" else { throw DevChainError("no such control endpoint") }
        let rest = Array(parts.dropFirst())
        if rest == ["info"] || rest.isEmpty { return info }
        guard isPost else {
            if rest.count == 2, rest[1] == "balance", let address = query["address"] { return try balance(chain: rest[0], address: address) }
            throw DevChainError("control endpoints other than info and balance are POSTed")
        }
        switch rest {
        case ["mine"]:
            let n = try count(params["blocks"], default: 1)
            return .object(["evm_height": .int(evm.mine(n)), "tron_height": .int(tron.mine(n))])
        case ["faults"]:
            guard let modeText = params["mode"]?.stringValue, let mode = FaultMode(rawValue: modeText) else {
                throw DevChainError("mode must be one of \(FaultMode.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            let scopeText = params["scope"]?.stringValue ?? "any"
            guard let scope = FaultScope(rawValue: scopeText) else { throw DevChainError("scope must be evm, tron or any") }
            let hang = try count(params["hang_ms"], default: 30_000)
            if let rateValue = params["rate"], !rateValue.isNull {
                // A standing fault: every request of the scope fails at this probability until /devchain/faults/clear.
                guard let text = rateValue.stringValue ?? rateValue.int64Value.map(String.init) ?? Optional(rateValue.description),
                    let rate = Double(text), rate >= 0, rate <= 1
                else { throw DevChainError("rate must be a number from 0 to 1") }
                faults.inject(mode, rate: rate, scope: scope)
            } else {
                faults.inject(mode, count: try count(params["count"], default: 1), scope: scope, hang: .milliseconds(hang))
            }
            return .object(["faults_pending": .int(faults.pending)])
        case ["faults", "clear"]:
            faults.clear()
            return .object(["faults_pending": .int(0)])
        case ["evm", "limits"]:
            let range: UInt64? = params["max_log_range"].flatMap { $0.isNull ? nil : $0.int64Value }.map { UInt64(max(1, $0)) }
            let results = params["max_log_results"]?.int64Value.map { Int(max(1, $0)) }
            evm.setLogLimits(maxRange: range, maxResults: results)
            return info["evm"] ?? .null
        default:
            break
        }
        guard rest.count == 2, rest[0] == "evm" || rest[0] == "tron" else {
            throw DevChainError("no such control endpoint: \(path) (see devchain --help)")
        }
        let isEVM = rest[0] == "evm"
        let kind: ChainKind = isEVM ? .evm : .tron
        switch rest[1] {
        case "fund":
            let to = try address(params["address"], kind)
            let amount = try (params["amount"] ?? .null).amount("amount")
            if isEVM { return .object(["tx": .string(try evm.fund(to, amount: amount)), "height": .int(evm.height)]) }
            guard amount <= BigUInt(Int64.max) else { throw DevChainError("amount exceeds int64 sun") }
            return .object(["tx": .string(try tron.fund(to, amount: Int64(amount))), "height": .int(tron.height)])
        case "usdt":
            var transfers: [(to: AccountID, amount: BigUInt)] = []
            if let list = params["transfers"]?.arrayValue {
                for (i, item) in list.enumerated() {
                    transfers.append((try address(item["to"], kind), try (item["amount"] ?? .null).amount("transfers[\(i)].amount")))
                }
            } else {
                transfers.append((try address(params["to"], kind), try (params["amount"] ?? .null).amount("amount")))
            }
            let ids = isEVM ? try evm.transferUSDT(transfers) : try tron.transferUSDT(transfers)
            return .object(["txs": .array(ids.map { .string($0) }), "height": .int(isEVM ? evm.height : tron.height)])
        case "mine":
            let n = try count(params["blocks"], default: 1)
            return .object(["height": .int(isEVM ? evm.mine(n) : tron.mine(n))])
        case "drop":
            // Mempool eviction: {"hash": "…"} one pending transaction, or every pending one without it.
            let hash = params["hash"]?.stringValue
            return .object(["dropped": .int(isEVM ? evm.drop(hash: hash) : tron.drop(id: hash))])
        case "pool-faults":
            // {"drop_next": n}: the next n accepted transactions vanish; {"drop_rate": p}: each accepted one vanishes at
            // probability p; {"fail_next": n}: the next n token transfers fail.
            let dropNext = try params["drop_next"].map { try count($0, default: 0) }
            let failNext = try params["fail_next"].map { try count($0, default: 0) }
            var dropRate: Double?
            if let v = params["drop_rate"], !v.isNull {
                guard let r = Double(v.stringValue ?? v.description), r >= 0, r <= 1 else { throw DevChainError("drop_rate must be a number from 0 to 1") }
                dropRate = r
            }
            if isEVM {
                evm.injectPoolFaults(dropNext: dropNext, failNext: failNext, dropRate: dropRate)
            } else {
                tron.injectPoolFaults(dropNext: dropNext, failNext: failNext, dropRate: dropRate)
            }
            return .object(["pending": .int(isEVM ? evm.pendingCount : tron.pendingCount)])
        case "reorg":
            let depth = try count(params["depth"], default: 1)
            let drop = params["drop_transactions"]?.boolValue ?? false
            let replaced = isEVM ? try evm.reorg(depth: depth, dropTransactions: drop) : try tron.reorg(depth: depth, dropTransactions: drop)
            return .object([
                "height": .int(isEVM ? evm.height : tron.height),
                "replaced": .array(
                    replaced.map { .object(["number": .int($0.number), "old_hash": .string($0.oldHash), "new_hash": .string($0.newHash)]) }
                ),
            ])
        default:
            throw DevChainError("no such control endpoint: \(path) (see devchain --help)")
        }
    }

    private func balance(chain: String, address text: String) throws -> JSONValue {
        switch chain {
        case "evm":
            let a = try address(.string(text), .evm)
            return .object(["native": .string(String(evm.balance(of: a))), "usdt": .string(String(evm.usdtBalance(of: a)))])
        case "tron":
            let a = try address(.string(text), .tron)
            let trx = tron.balance(of: a)
            return .object(["native": .string(String(trx ?? 0)), "activated": .bool(trx != nil), "usdt": .string(String(tron.usdtBalance(of: a)))])
        default:
            throw DevChainError("chain must be evm or tron")
        }
    }

    private func address(_ value: JSONValue?, _ kind: ChainKind) throws -> AccountID {
        guard let text = value?.stringValue else { throw DevChainError("an address is required") }
        do {
            return try kind.parseAddress(text)
        } catch {
            throw DevChainError("invalid \(kind) address: \(error)")
        }
    }

    private func count(_ value: JSONValue?, default d: Int) throws -> Int {
        guard let value, !value.isNull else { return d }
        guard let n = value.int64Value, n >= 0, n <= 1_000_000 else { throw DevChainError("expected a whole number from 0 to 1000000") }
        return Int(n)
    }
}
