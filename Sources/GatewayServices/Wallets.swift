import ChainKit
import Foundation
import GatewayCore
import GatewayRuntime
import Logging
import PostgresNIO

/// A merchant's HD account on one chain.
public struct Wallet: Sendable, Equatable {
    public var id: Int64
    public var merchantID: Int64
    public var chain: String
    public var accountXpub: String
    public var accountIndex: Int?
    public var nextIndex: Int
    public var hotAddress: String
    public var coldAddress: String?
    /// The wallet's gas address (`…/account'/2/0`, derived from the xpub): pays the sweeps' gas top-ups on a
    /// chain configured with a dedicated gas wallet (`chains.<name>.sweep.gas_wallet`). nil only before
    /// `gatewayctl migrate` filled it for a wallet attached earlier.
    public var gasAddress: String?
}

/// Wallet administration: one account xpub per merchant and chain.
public enum Wallets {
    static let columns = """
        id, merchant_id, chain, account_xpub, coalesce(account_index, -1), next_index, hot_address, coalesce(cold_address, ''), coalesce(gas_address, '')
        """

    static func decode(_ rows: PostgresRowSequence) async throws -> [Wallet] {
        var out: [Wallet] = []
        for try await (id, m, chain, xpub, account, next, hot, cold, gas) in rows.decode((Int64, Int64, String, String, Int32, Int32, String, String, String).self) {
            out.append(Wallet(id: id, merchantID: m, chain: chain, accountXpub: xpub, accountIndex: account < 0 ? nil : Int(account),
                              nextIndex: Int(next), hotAddress: hot, coldAddress: cold.isEmpty ? nil : cold, gasAddress: gas.isEmpty ? nil : gas))
        }
        return out
    }

    /// Attaches an account xpub to a merchant for a chain (once per chain). The hot address is
    /// derived from it (`1/0`); `accountIndex` records which account of the gateway seed it is.
    public static func attach(merchantID: Int64, chain: String, xpub: String, accountIndex: Int?, coldAddress: String?,
                              directory: ChainDirectory, actor: String, on c: DatabaseConnection, logger: Logger) async throws -> Wallet {
        guard let kind = directory.kind(chain) else { throw ServiceError.invalid("chain '\(chain)' is not configured") }
        let account: WatchOnlyAccount
        do {
            account = try WatchOnlyAccount(serialized: xpub, scheme: kind.scheme)
        } catch {
            throw ServiceError.invalid("not a usable account xpub: \(error)")
        }
        let hot: String, gas: String
        do {
            hot = try account.hotAddress()
            gas = try account.gasAddress()
        } catch { throw ServiceError.invalid("cannot derive the hot and gas addresses: \(error)") }
        var cold: String?
        if let coldAddress {
            switch directory.canonicalAddress(coldAddress, chain: chain) {
            case .success(let a): cold = a
            case .failure(let e): throw ServiceError.invalid("cold address: \(e)")
            }
        }
        guard try await Merchants.find(merchantID, on: c, logger: logger) != nil else { throw ServiceError.notFound("merchant \(merchantID)") }
        let inserted: [Wallet]
        do {
            inserted = try await decode(try await c.query("""
                INSERT INTO gateway.wallets (merchant_id, chain, account_xpub, account_index, hot_address, cold_address, gas_address)
                VALUES (\(merchantID), \(chain), \(xpub), \(accountIndex.map(Int32.init)), \(hot), \(cold), \(gas))
                RETURNING \(unescaped: columns)
                """, logger: logger))
        } catch where DatabaseErrors.sqlState(error) == "23505" {
            // Two constraints can refuse it; saying the wrong one sent an operator looking for a wallet that did not exist.
            if DatabaseErrors.constraintName(error) == "wallets_gas_address" {
                throw ServiceError.conflict("this account xpub is already attached to another merchant's wallet on \(chain) "
                    + "(its addresses would be shared): use another account of the seed")
            }
            throw ServiceError.conflict("merchant \(merchantID) already has a wallet on \(chain)")
        }
        guard let w = inserted.first else { throw ServiceError.invalid("wallet was not attached") }
        try await Audit.record(actor: actor, action: "wallet.attach", target: "merchant:\(merchantID)",
                               detail: ["chain": .string(chain), "hot_address": .string(hot)], on: c, logger: logger)
        return w
    }

    /// Fills the gas address (`…/account'/2/0`) of wallets attached before it existed (migration 0012 adds the
    /// column; the derivation needs the xpub, so `gatewayctl migrate` runs this after the SQL). Returns how many.
    public static func fillGasAddresses(directory: ChainDirectory, on c: DatabaseConnection, logger: Logger) async throws -> Int {
        var filled: [(Int64, String)] = []
        for try await (id, chain, xpub) in try await c.query("""
            SELECT id, chain, account_xpub FROM gateway.wallets WHERE gas_address IS NULL ORDER BY id FOR UPDATE
            """, logger: logger).decode((Int64, String, String).self) {
            guard let kind = directory.kind(chain), let gas = try? WatchOnlyAccount(serialized: xpub, scheme: kind.scheme).gasAddress() else {
                logger.warning("cannot derive the gas address of a wallet (chain not configured here, or an unusable xpub)", metadata: ["wallet.id": "\(id)"])
                continue
            }
            filled.append((id, gas))
        }
        guard !filled.isEmpty else { return 0 }
        try await c.query("""
            UPDATE gateway.wallets w SET gas_address = x.g FROM unnest(\(filled.map(\.0))::int8[], \(filled.map(\.1))::text[]) AS x(id, g) WHERE w.id = x.id
            """, logger: logger)
        return filled.count
    }

    public static func list(merchantID: Int64?, on c: DatabaseConnection, logger: Logger) async throws -> [Wallet] {
        try await decode(try await c.query("""
            SELECT \(unescaped: columns) FROM gateway.wallets WHERE (\(merchantID ?? 0)::int8 = 0 OR merchant_id = \(merchantID ?? 0))
            ORDER BY merchant_id, chain
            """, logger: logger))
    }

    /// The chains a merchant has wallets on.
    public static func chains(merchantID: Int64, on c: DatabaseConnection, logger: Logger) async throws -> Set<String> {
        var out = Set<String>()
        for try await chain in try await c.query("SELECT chain FROM gateway.wallets WHERE merchant_id = \(merchantID)", logger: logger).decode(String.self) {
            out.insert(chain)
        }
        return out
    }
}

/// A deposit address.
public struct DepositAddress: Sendable, Equatable {
    public var id: Int64
    public var merchantID: Int64
    public var chain: String
    public var address: String
    public var index: Int
    public var callURL: String
    public var alias: String
    public var createdAt: Date
}

/// Deposit addresses: derived from the merchant's account xpub, one index each, race-free.
public enum Addresses {
    /// Creates `count` addresses on `chain` for a merchant, inside the caller's transaction.
    /// The wallet row is locked while its next index is taken, so concurrent requests never get
    /// the same index. Errors are Open API errors (4017, 4168, -1).
    public static func create(merchantID: Int64, chain: String, callURL: String, alias: String, walletRef: String, count: Int = 1,
                              maxAddresses: Int?, directory: ChainDirectory, on c: DatabaseConnection, logger: Logger) async throws -> [String] {
        guard let kind = directory.kind(chain) else { throw UdunError(.unknownCoin, "chain \(chain) is not configured") }
        let rows = try await c.query("""
            SELECT id, account_xpub, next_index FROM gateway.wallets WHERE merchant_id = \(merchantID) AND chain = \(chain) FOR UPDATE
            """, logger: logger)
        var wallet: (Int64, String, Int32)?
        for try await w in rows.decode((Int64, String, Int32).self) { wallet = w }
        guard let (walletID, xpub, next) = wallet else { throw UdunError(.noWalletForChain, "merchant has no wallet for \(chain)") }
        if let maxAddresses {
            var existing: Int64 = 0
            for try await n in try await c.query("SELECT count(*) FROM gateway.addresses WHERE merchant_id = \(merchantID)", logger: logger).decode(Int64.self) {
                existing = n
            }
            guard existing + Int64(count) <= Int64(maxAddresses) else {
                throw UdunError(.addressLimitReached, "merchant address limit of \(maxAddresses) reached")
            }
        }
        let addresses: [String]
        do {
            let account = try WatchOnlyAccount(serialized: xpub, scheme: kind.scheme)
            addresses = try account.depositAddresses(UInt32(next)..<UInt32(next) + UInt32(count))
        } catch {
            logger.error("address derivation failed", metadata: ["merchant.id": "\(merchantID)", "chain": "\(chain)", "error": "\(error)"])
            throw UdunError(.addressNotGenerated, "address could not be generated")
        }
        try await c.query("UPDATE gateway.wallets SET next_index = next_index + \(Int32(count)) WHERE id = \(walletID)", logger: logger)
        let indices = (0..<count).map { Int32(next) + Int32($0) }
        try await c.query("""
            INSERT INTO gateway.addresses (merchant_id, wallet_id, chain, address, derivation_index, call_url, alias, wallet_ref)
            SELECT \(merchantID), \(walletID), \(chain), a, i, \(callURL), \(alias), \(walletRef)
            FROM unnest(\(addresses)::text[], \(indices)::int4[]) AS t(a, i)
            """, logger: logger)
        return addresses
    }

    /// How many of `addresses` (canonical forms) are stored as the merchant's on that chain: after a commit whose outcome
    /// is unknown, the addresses a create request derived are read back by their own key before anyone is told them.
    public static func stored(chain: String, addresses: [String], merchantID: Int64, on c: DatabaseConnection, logger: Logger) async throws -> Int {
        var n = 0
        for try await count in try await c.query("""
            SELECT count(*) FROM gateway.addresses WHERE chain = \(chain) AND address = ANY(\(addresses)) AND merchant_id = \(merchantID)
            """, logger: logger).decode(Int64.self) {
            n = Int(count)
        }
        return n
    }

    /// Whether an address (canonical form) is one of the merchant's on that chain.
    public static func belongs(address: String, chain: String, merchantID: Int64, on c: DatabaseConnection, logger: Logger) async throws -> Bool {
        for try await _ in try await c.query("""
            SELECT 1 FROM gateway.addresses WHERE chain = \(chain) AND address = \(address) AND merchant_id = \(merchantID)
            """, logger: logger).decode(Int32.self) {
            return true
        }
        return false
    }

    public static func list(merchantID: Int64?, chain: String?, limit: Int, on c: DatabaseConnection, logger: Logger) async throws -> [DepositAddress] {
        let rows = try await c.query("""
            SELECT id, merchant_id, chain, address, derivation_index, call_url, alias, created_at FROM gateway.addresses
            WHERE (\(merchantID ?? 0)::int8 = 0 OR merchant_id = \(merchantID ?? 0)) AND (\(chain ?? "")::text = '' OR chain = \(chain ?? ""))
            ORDER BY id DESC LIMIT \(Int32(clamping: limit))
            """, logger: logger)
        var out: [DepositAddress] = []
        for try await (id, m, chain, address, index, url, alias, created) in rows.decode((Int64, Int64, String, String, Int32, String, String, Date).self) {
            out.append(DepositAddress(id: id, merchantID: m, chain: chain, address: address, index: Int(index), callURL: url, alias: alias, createdAt: created))
        }
        return out
    }
}
