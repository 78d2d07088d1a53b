import BigInt
import ChainKit
import Foundation
import GatewayRuntime
import Logging
import PostgresNIO

/// One of our addresses and one coin: what our records say it holds against what the node says.
public struct AddressBalance: Sendable, Equatable {
    /// `deposit`, `hot`, `gas` (a wallet's gas address, sweep top-ups) or `cold`.
    public var role: String
    public var merchantID: Int64
    public var address: String
    public var coinID: Int32
    public var symbol: String
    /// Base units, from `gateway.address_flows` (deposits and hot receipts in blocks, less what our
    /// transactions sent and burned).
    public var expected: BigInt
    /// Base units, from the node (`balanceOf` / native balance).
    public var node: BigInt
    /// node − expected.
    public var difference: BigInt { node - expected }
}

/// One coin of the chain: the ledger's `chain` account against the domain tables.
public struct LedgerCoinCheck: Sendable, Equatable {
    public var coinID: Int32
    public var symbol: String
    /// −(the coin's `chain` + `sweep_gas` accounts): what the ledger believes our addresses hold. For the row
    /// "<native> sweep gas": −(its `sweep_gas` account), the top-ups' native waiting on deposit addresses.
    public var ledger: BigInt
    /// Σ confirmed deposits + booked hot receipts − confirmed sent amounts (− settled network fees for the native coin).
    public var records: BigInt
    /// ledger − records.
    public var difference: BigInt { ledger - records }
}

/// What `gatewayctl ledger reconcile` found on one chain.
public struct ReconciliationReport: Sendable, Equatable {
    public var chain: String
    /// Where the chain's scanner stands and the node's tip when the balances were read: transfers in
    /// blocks above `scannedHeight` are on the node but not yet in our records.
    public var scannedHeight: Int64?
    public var nodeTip: UInt64
    public var addresses: Int
    public var coins: Int
    /// Every (address, coin) whose expected or node balance is not zero.
    public var balances: [AddressBalance]
    public var ledger: [LedgerCoinCheck]

    /// The (address, coin) pairs whose node balance differs from the expected one.
    public var differences: [AddressBalance] { balances.filter { $0.difference != 0 } }
    /// The coins whose ledger `chain` account disagrees with the domain tables.
    public var ledgerDifferences: [LedgerCoinCheck] { ledger.filter { $0.difference != 0 } }
    /// Whether everything agrees.
    public var isClean: Bool { differences.isEmpty && ledgerDifferences.isEmpty }
}

/// Reconciliation of our records with the chain (DESIGN.md §3: "the ledger must reconcile with what
/// the chain shows for our addresses").
public enum Reconciliation {
    /// An address of ours on a chain.
    public struct OurAddress: Sendable, Equatable {
        public var role: String
        public var merchantID: Int64
        public var address: String
    }

    /// A coin of a chain as the scanner knows it (`gateway.coins`).
    public struct ChainCoin: Sendable, Equatable {
        public var id: Int32
        public var symbol: String
        public var isToken: Bool
        public var coinType: String
        public var decimals: Int
    }

    /// Deposit, hot, gas and (watch-only) cold addresses of `chain`.
    public static func addresses(chain: String, on c: DatabaseConnection, logger: Logger) async throws -> [OurAddress] {
        var out: [OurAddress] = []
        for try await (role, merchant, address) in try await c.query("""
            SELECT role, m, a FROM (
                SELECT 'hot', merchant_id, hot_address FROM gateway.wallets WHERE chain = \(chain)
                UNION ALL
                SELECT 'cold', merchant_id, cold_address FROM gateway.wallets WHERE chain = \(chain) AND cold_address IS NOT NULL
                UNION ALL
                SELECT 'gas', merchant_id, gas_address FROM gateway.wallets WHERE chain = \(chain) AND gas_address IS NOT NULL
                UNION ALL
                SELECT 'deposit', merchant_id, address FROM gateway.addresses WHERE chain = \(chain)
            ) AS t(role, m, a)
            ORDER BY role = 'deposit', role DESC, m, a
            """, logger: logger).decode((String, Int64, String).self) {
            out.append(OurAddress(role: role, merchantID: merchant, address: address))
        }
        return out
    }

    /// The coins of `chain`.
    public static func coins(chain: String, on c: DatabaseConnection, logger: Logger) async throws -> [ChainCoin] {
        var out: [ChainCoin] = []
        for try await (id, symbol, isToken, coinType, decimals) in try await c.query("""
            SELECT id, symbol, is_token, coin_type, decimals FROM gateway.coins WHERE chain = \(chain) ORDER BY is_token, id
            """, logger: logger).decode((Int32, String, Bool, String, Int32).self) {
            out.append(ChainCoin(id: id, symbol: symbol, isToken: isToken, coinType: coinType, decimals: Int(decimals)))
        }
        return out
    }

    /// What our records say each address of `chain` holds, per (address, coin id); absent pairs hold 0.
    public static func expected(chain: String, on c: DatabaseConnection, logger: Logger) async throws -> [String: [Int32: BigInt]] {
        var out: [String: [Int32: BigInt]] = [:]
        for try await (address, coin, sum) in try await c.query("""
            SELECT address, coin_id, sum(moved)::text FROM gateway.address_flows WHERE chain = \(chain) GROUP BY address, coin_id
            """, logger: logger).decode((String, Int32, String).self) {
            out[address, default: [:]][coin] = BigInt(sum) ?? 0
        }
        return out
    }

    /// Per coin of `chain`: −(its `chain` ledger account) against confirmed deposits + booked (external)
    /// hot receipts − confirmed withdrawal amounts − settled network fees (native coin). Sweeps and gas
    /// top-ups move coins among our own addresses: only their network fees count. A top-up moves its amount
    /// from `chain` to `sweep_gas` (both ours), which a second row per chain checks.
    public static func ledgerCheck(chain: String, on c: DatabaseConnection, logger: Logger) async throws -> [LedgerCoinCheck] {
        var out: [LedgerCoinCheck] = []
        for try await (id, symbol, ledger, records) in try await c.query("""
            WITH native AS (SELECT id FROM gateway.coins WHERE chain = \(chain) AND NOT is_token ORDER BY id LIMIT 1)
            SELECT k.id, k.symbol,
                   (-coalesce((SELECT sum(balance) FROM gateway.ledger_accounts a
                               WHERE a.merchant_id IS NULL AND a.coin_id = k.id AND a.kind IN ('chain', 'sweep_gas')), 0))::text,
                   (coalesce((SELECT sum(amount) FROM gateway.deposits d WHERE d.coin_id = k.id AND d.status = 'confirmed'), 0)
                    + coalesce((SELECT sum(amount) FROM gateway.hot_receipts r WHERE r.coin_id = k.id AND r.status = 'confirmed' AND NOT r.internal), 0)
                    - coalesce((SELECT sum(amount) FROM gateway.outgoing_txs o WHERE o.coin_id = k.id AND o.state = 'confirmed' AND o.purpose = 'withdrawal'), 0)
                    - CASE WHEN k.id IN (SELECT id FROM native)
                           THEN coalesce((SELECT sum(network_fee) FROM gateway.outgoing_txs o
                                          WHERE o.chain = k.chain AND o.state IN ('confirmed', 'failed')), 0)
                           ELSE 0 END)::text
            FROM gateway.coins k WHERE k.chain = \(chain) ORDER BY k.is_token, k.id
            """, logger: logger).decode((Int32, String, String, String).self) {
            out.append(LedgerCoinCheck(coinID: id, symbol: symbol, ledger: BigInt(ledger) ?? 0, records: BigInt(records) ?? 0))
        }
        // The native coin's sweep gas: −(its `sweep_gas` account) against confirmed top-ups − the network fees of
        // settled token sweeps (what our records say the top-ups left on deposit addresses).
        for try await (id, symbol, ledger, records) in try await c.query("""
            SELECT k.id, k.symbol,
                   (-coalesce((SELECT balance FROM gateway.ledger_accounts a WHERE a.merchant_id IS NULL AND a.coin_id = k.id AND a.kind = 'sweep_gas'), 0))::text,
                   (coalesce((SELECT sum(o.amount) FROM gateway.outgoing_txs o WHERE o.chain = k.chain AND o.purpose = 'topup' AND o.state = 'confirmed'), 0)
                    - coalesce((SELECT sum(o.network_fee) FROM gateway.outgoing_txs o JOIN gateway.sweeps s ON s.id = o.ref_id
                                JOIN gateway.coins t ON t.id = s.coin_id
                                WHERE o.chain = k.chain AND o.purpose = 'sweep' AND o.state IN ('confirmed', 'failed') AND t.is_token), 0))::text
            FROM gateway.coins k WHERE k.id = (SELECT id FROM gateway.coins WHERE chain = \(chain) AND NOT is_token ORDER BY id LIMIT 1)
            """, logger: logger).decode((Int32, String, String, String).self) {
            out.append(LedgerCoinCheck(coinID: id, symbol: "\(symbol) sweep gas", ledger: BigInt(ledger) ?? 0, records: BigInt(records) ?? 0))
        }
        return out
    }

    /// Reads our records of `chain`, then every (address, coin) balance from `node` (at most
    /// `concurrency` requests at a time), and compares. A node failure fails the whole run: a
    /// reconciliation with holes would look cleaner than it is.
    public static func run(chain: String, node: any ChainNodeClient, database: Database, concurrency: Int = 16, logger: Logger) async throws
        -> ReconciliationReport
    {
        struct Records: Sendable {
            var addresses: [OurAddress], coins: [ChainCoin], expected: [String: [Int32: BigInt]], ledger: [LedgerCoinCheck], scanned: Int64?
        }
        let records: Records = try await database.withConnection { c in
            var scanned: Int64?
            for try await h in try await c.query("SELECT scanned_height FROM gateway.chain_scanners WHERE chain = \(chain)", logger: logger)
                .decode(Int64?.self) { scanned = h }
            return Records(addresses: try await Self.addresses(chain: chain, on: c, logger: logger), coins: try await Self.coins(chain: chain, on: c, logger: logger),
                           expected: try await Self.expected(chain: chain, on: c, logger: logger),
                           ledger: try await Self.ledgerCheck(chain: chain, on: c, logger: logger), scanned: scanned)
        }
        let (addresses, coins, expected, ledger, scanned) = (records.addresses, records.coins, records.expected, records.ledger, records.scanned)
        let kind = node.kind
        var tokenContracts: [Int32: AccountID] = [:]
        for coin in coins where coin.isToken {
            guard let contract = try? kind.parseAddress(coin.coinType) else {
                throw ServiceError.invalid("coin \(coin.id) (\(coin.symbol)) has coin type \(coin.coinType), not a contract address of \(chain)")
            }
            tokenContracts[coin.id] = contract
        }
        var accounts: [String: AccountID] = [:]
        for a in addresses {
            guard let account = try? kind.parseAddress(a.address) else { throw ServiceError.invalid("stored address \(a.address) is not an address of \(chain)") }
            accounts[a.address] = account
        }
        let tip = try await node.tipHeight()
        struct Query: Sendable { var index: Int, coin: Int32, account: AccountID, token: AccountID? }
        var queries: [Query] = []
        for (i, a) in addresses.enumerated() {
            for coin in coins { queries.append(Query(index: i, coin: coin.id, account: accounts[a.address]!, token: tokenContracts[coin.id])) }
        }
        var onNode: [Int: [Int32: BigInt]] = [:]
        try await withThrowingTaskGroup(of: (Int, Int32, BigInt).self) { group in
            var next = 0
            func add(_ q: Query) {
                group.addTask {
                    if let token = q.token {
                        return (q.index, q.coin, BigInt(try await node.tokenBalance(of: q.account, token: token)))
                    }
                    return (q.index, q.coin, BigInt(try await node.nativeBalance(of: q.account).amount))
                }
            }
            while next < min(max(1, concurrency), queries.count) {
                add(queries[next])
                next += 1
            }
            while let (i, coin, balance) = try await group.next() {
                onNode[i, default: [:]][coin] = balance
                if next < queries.count {
                    add(queries[next])
                    next += 1
                }
            }
        }
        var balances: [AddressBalance] = []
        for (i, a) in addresses.enumerated() {
            for coin in coins {
                let e = expected[a.address]?[coin.id] ?? 0
                let n = onNode[i]?[coin.id] ?? 0
                guard e != 0 || n != 0 else { continue }
                balances.append(AddressBalance(role: a.role, merchantID: a.merchantID, address: a.address, coinID: coin.id, symbol: coin.symbol,
                                               expected: e, node: n))
            }
        }
        return ReconciliationReport(chain: chain, scannedHeight: scanned, nodeTip: tip, addresses: addresses.count, coins: coins.count,
                                    balances: balances, ledger: ledger)
    }
}
