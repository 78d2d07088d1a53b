import BigInt
import Foundation
import GatewayCore
import GatewayRuntime
import Logging
import PostgresNIO

/// One sweep (`gateway.sweeps`): a deposit address's funds on their way to the hot or cold address.
public struct Sweep: Sendable, Equatable {
    public var id: Int64
    public var chain: String
    public var merchantID: Int64
    public var walletID: Int64
    public var addressID: Int64
    /// The deposit address (canonical form).
    public var address: String
    public var coinID: Int32
    public var symbol: String
    public var isToken: Bool
    /// The token's contract (canonical coin type) or nil for the native coin.
    public var tokenContract: String?
    public var amount: BigUInt
    public var destination: String
    /// `hot` or `cold`.
    public var destinationRole: String
    public var gasEstimate: BigUInt
    public var topupAmount: BigUInt
    public var state: String
    public var stateReason: String?
    public var txHash: String?
    public var networkFee: BigUInt?
    /// The deposit address's HD index and its wallet's account (nil: attached from a foreign xpub).
    public var derivationIndex: Int
    public var accountIndex: Int?
    public var hotAddress: String
    /// The wallet's gas address (`…/account'/2/0`; nil before `gatewayctl migrate` filled it).
    public var gasAddress: String?
    /// Seconds since it was planned.
    public var age: Double
}

/// What a planner decided for one deposit address (not yet stored).
public struct PlannedSweep: Sendable, Equatable {
    public var chain: String
    public var merchantID: Int64
    public var walletID: Int64
    public var addressID: Int64
    public var address: String
    public var coinID: Int32
    public var symbol: String
    public var amount: BigUInt
    public var destination: String
    public var destinationRole: String
    public var gasEstimate: BigUInt
    public var topupAmount: BigUInt

    public init(chain: String, merchantID: Int64, walletID: Int64, addressID: Int64, address: String, coinID: Int32, symbol: String, amount: BigUInt,
                destination: String, destinationRole: String, gasEstimate: BigUInt, topupAmount: BigUInt) {
        self.chain = chain
        self.merchantID = merchantID
        self.walletID = walletID
        self.addressID = addressID
        self.address = address
        self.coinID = coinID
        self.symbol = symbol
        self.amount = amount
        self.destination = destination
        self.destinationRole = destinationRole
        self.gasEstimate = gasEstimate
        self.topupAmount = topupAmount
    }
}

/// A deposit address and coin whose confirmed balance (by our records) a planner considers.
public struct SweepCandidate: Sendable, Equatable {
    public var addressID: Int64
    public var address: String
    public var merchantID: Int64
    public var walletID: Int64
    public var hotAddress: String
    public var coldAddress: String?
    public var coinID: Int32
    public var symbol: String
    public var isToken: Bool
    public var coinType: String
    /// Confirmed by our records: confirmed deposits, top-ups received, less what left and burned.
    public var balance: BigInt
}

/// Sweeps in the database: planning, the state machine, settling (DESIGN.md §4 "Sweep").
public enum Sweeps {
    /// Sweep stage job kinds: the chain's scheduled planner (ref `chain:<name>`), and one sweep's next
    /// step (ref `sweep:<id>`).
    public static let planJobKind = "plan"
    public static let sweepJobKind = "sweep"

    /// The planner job of `chain` (unique: two sweep-workers never plan the same chain at once).
    public static func planJob(chain: String, runAt: RunAt = .now) -> NewJob {
        NewJob(stage: .sweep, kind: planJobKind, ref: "chain:\(chain)", runAt: runAt, uniqueKey: "plan:\(chain)")
    }

    static func stepJob(_ id: Int64) -> NewJob {
        NewJob(stage: .sweep, kind: sweepJobKind, ref: "sweep:\(id)", uniqueKey: "sweep:\(id)")
    }

    /// The sweep id of a job ref `sweep:<id>`.
    public static func sweepID(ref: String?) -> Int64? {
        guard let ref, ref.hasPrefix("sweep:") else { return nil }
        return Int64(ref.dropFirst("sweep:".count))
    }

    /// Which deposit addresses a candidates query looks at.
    public enum CandidateScope: Sendable {
        /// Every deposit address of the chain (a full pass: sums every address's whole history).
        case all
        /// These addresses (the watched ones, `watched(chain:)`), each summed on its own through the indexes.
        case addresses([Int64])
        /// The one deposit address with this text.
        case address(String)
    }

    /// Deposit addresses of `chain` (within `scope`) holding a coin of `coinIDs` by our records
    /// (confirmed only, more than nothing), with no sweep in flight. (Swept addresses net to zero and are
    /// left out here rather than decoded and dropped.)
    public static func candidates(chain: String, coinIDs: [Int32], scope: CandidateScope, on c: DatabaseConnection,
                                  logger: Logger) async throws -> [SweepCandidate] {
        var out: [SweepCandidate] = []
        let rows: PostgresRowSequence
        switch scope {
        case .all:
            rows = try await c.query("""
                SELECT address_id, address, merchant_id, wallet_id, hot_address, cold_address, coin_id, symbol, is_token, coin_type, balance::text
                FROM (
                  SELECT a.id AS address_id, a.address, a.merchant_id, w.id AS wallet_id, w.hot_address, coalesce(w.cold_address, '') AS cold_address,
                         k.id AS coin_id, k.symbol, k.is_token, k.coin_type,
                         sum(f.moved) - coalesce((SELECT sum(d.amount) FROM gateway.deposits d
                                                  WHERE d.address_id = a.id AND d.coin_id = k.id AND d.status = 'seen'), 0) AS balance
                  FROM gateway.addresses a
                  JOIN gateway.wallets w ON w.id = a.wallet_id
                  JOIN gateway.address_flows f ON f.chain = a.chain AND f.address = a.address
                  JOIN gateway.coins k ON k.id = f.coin_id
                  WHERE a.chain = \(chain) AND k.id = ANY(\(coinIDs)::int4[])
                    AND NOT EXISTS (SELECT 1 FROM gateway.sweeps s WHERE s.chain = a.chain AND s.address = a.address AND s.state NOT IN ('swept', 'failed'))
                  GROUP BY a.id, w.id, k.id
                ) held
                WHERE balance > 0
                ORDER BY is_token DESC, address_id
                """, logger: logger)
        case .addresses, .address:
            // One address's flows at a time (LATERAL, chain and address given): the view's branches are
            // read through their indexes, where a join with the whole view would sum every address first.
            var ids: [Int64] = []
            if case .addresses(let a) = scope { ids = a }
            if case .address(let text) = scope {
                for try await id in try await c.query("SELECT id FROM gateway.addresses WHERE chain = \(chain) AND address = \(text)",
                                                      logger: logger).decode(Int64.self) {
                    ids.append(id)
                }
            }
            rows = try await c.query("""
                SELECT address_id, address, merchant_id, wallet_id, hot_address, cold_address, coin_id, symbol, is_token, coin_type, balance::text
                FROM (
                  SELECT a.id AS address_id, a.address, a.merchant_id, w.id AS wallet_id, w.hot_address, coalesce(w.cold_address, '') AS cold_address,
                         k.id AS coin_id, k.symbol, k.is_token, k.coin_type,
                         f.total - coalesce((SELECT sum(d.amount) FROM gateway.deposits d
                                             WHERE d.address_id = a.id AND d.coin_id = k.id AND d.status = 'seen'), 0) AS balance
                  FROM gateway.addresses a
                  JOIN gateway.wallets w ON w.id = a.wallet_id
                  JOIN LATERAL (SELECT f.coin_id, sum(f.moved) AS total FROM gateway.address_flows f
                                WHERE f.chain = a.chain AND f.address = a.address GROUP BY f.coin_id) f ON true
                  JOIN gateway.coins k ON k.id = f.coin_id
                  WHERE a.chain = \(chain) AND k.id = ANY(\(coinIDs)::int4[])
                    AND a.id = ANY(\(ids)::int8[])
                    AND NOT EXISTS (SELECT 1 FROM gateway.sweeps s WHERE s.chain = a.chain AND s.address = a.address AND s.state NOT IN ('swept', 'failed'))
                ) held
                WHERE balance > 0
                ORDER BY is_token DESC, address_id
                """, logger: logger)
        }
        for try await r in rows.decode((Int64, String, Int64, Int64, String, String, Int32, String, Bool, String, String).self) {
            out.append(SweepCandidate(addressID: r.0, address: r.1, merchantID: r.2, walletID: r.3, hotAddress: r.4, coldAddress: r.5.isEmpty ? nil : r.5,
                                      coinID: r.6, symbol: r.7, isToken: r.8, coinType: r.9, balance: BigInt(r.10) ?? 0))
        }
        return out
    }

    /// The watched deposit addresses of `chain` with no sweep in flight, with the mark each was read with
    /// (`unwatch` removes a row only with that mark).
    public static func watched(chain: String, on c: DatabaseConnection, logger: Logger) async throws -> [(addressID: Int64, mark: Int64)] {
        var out: [(addressID: Int64, mark: Int64)] = []
        for try await (id, mark) in try await c.query("""
            SELECT sw.address_id, sw.mark FROM gateway.sweep_watch sw JOIN gateway.addresses a ON a.id = sw.address_id
            WHERE sw.chain = \(chain)
              AND NOT EXISTS (SELECT 1 FROM gateway.sweeps s WHERE s.chain = a.chain AND s.address = a.address AND s.state NOT IN ('swept', 'failed'))
            ORDER BY sw.address_id
            """, logger: logger).decode((Int64, Int64).self) {
            out.append((id, mark))
        }
        return out
    }

    /// Watches these deposit addresses of `chain` (in the caller's transaction; ones already watched keep
    /// their mark).
    public static func watch(chain: String, addressIDs: [Int64], on c: DatabaseConnection, logger: Logger) async throws {
        guard !addressIDs.isEmpty else { return }
        _ = try await c.query("""
            INSERT INTO gateway.sweep_watch (address_id, chain)
            SELECT id, \(chain) FROM unnest(\(addressIDs.sorted())::int8[]) id ORDER BY id
            ON CONFLICT (address_id) DO NOTHING
            """, logger: logger).collect()
    }

    /// Stops watching addresses the planner is done with, each only if it still has the mark the planner
    /// read (an address marked again meanwhile stays watched; marks are never reused, so the set of marks
    /// read names exactly those rows). Locks in address order, as the marking triggers do; written so that
    /// no plan depends on the table's statistics (it churns).
    public static func unwatch(_ rows: [(addressID: Int64, mark: Int64)], on c: DatabaseConnection, logger: Logger) async throws {
        guard !rows.isEmpty else { return }
        _ = try await c.query("""
            WITH done AS (
              SELECT address_id FROM gateway.sweep_watch
              WHERE address_id = ANY(\(rows.map(\.addressID))::int8[]) AND mark = ANY(\(rows.map(\.mark))::int8[])
              ORDER BY address_id
              FOR UPDATE)
            DELETE FROM gateway.sweep_watch WHERE address_id = ANY(ARRAY(SELECT address_id FROM done))
            """, logger: logger).collect()
    }

    /// Per (wallet id, coin id) of `chain`: what its hot address holds by our records, plus what open
    /// sweeps are bringing it (the hot cap compares against this).
    /// Only for `coinIDs` (the swept coins): each (wallet, coin) sums its hot address's whole history.
    public static func hotHoldings(chain: String, coinIDs: [Int32], on c: DatabaseConnection, logger: Logger) async throws -> [Int64: [Int32: BigInt]] {
        var out: [Int64: [Int32: BigInt]] = [:]
        for try await (wallet, coin, held) in try await c.query("""
            SELECT w.id, k.id,
                   (coalesce((SELECT sum(f.moved) FROM gateway.address_flows f WHERE f.chain = w.chain AND f.address = w.hot_address AND f.coin_id = k.id), 0)
                    + coalesce((SELECT sum(s.amount) FROM gateway.sweeps s WHERE s.wallet_id = w.id AND s.coin_id = k.id AND s.destination_role = 'hot'
                                AND s.state NOT IN ('swept', 'failed')), 0))::text
            FROM gateway.wallets w JOIN gateway.coins k ON k.chain = w.chain WHERE w.chain = \(chain) AND k.id = ANY(\(coinIDs)::int4[])
            """, logger: logger).decode((Int64, Int32, String).self) {
            out[wallet, default: [:]][coin] = BigInt(held) ?? 0
        }
        return out
    }

    /// Stores planned sweeps, each with its first step job, in the caller's transaction. An address that
    /// got a sweep meanwhile (another planner) is skipped. Returns the ids stored.
    public static func insert(_ plans: [PlannedSweep], on c: DatabaseConnection, logger: Logger) async throws -> [Int64] {
        guard !plans.isEmpty else { return [] }
        var ids: [Int64] = []
        for try await id in try await c.query("""
            INSERT INTO gateway.sweeps (chain, merchant_id, wallet_id, address_id, address, coin_id, amount, destination, destination_role,
                                        gas_estimate, topup_amount)
            SELECT ch, m, w, a, ad, k, am::numeric, d, r, g::numeric, t::numeric
            FROM unnest(\(plans.map(\.chain))::text[], \(plans.map(\.merchantID))::int8[], \(plans.map(\.walletID))::int8[],
                        \(plans.map(\.addressID))::int8[], \(plans.map(\.address))::text[], \(plans.map(\.coinID))::int4[],
                        \(plans.map(\.amount.description))::text[], \(plans.map(\.destination))::text[], \(plans.map(\.destinationRole))::text[],
                        \(plans.map(\.gasEstimate.description))::text[], \(plans.map(\.topupAmount.description))::text[])
                 AS x(ch, m, w, a, ad, k, am, d, r, g, t)
            ON CONFLICT (chain, address) WHERE state NOT IN ('swept', 'failed') DO NOTHING
            RETURNING id
            """, logger: logger).decode(Int64.self) {
            ids.append(id)
        }
        _ = try await JobQueue.enqueue(ids.map(stepJob), on: c, logger: logger)
        return ids
    }

    static let columns = """
        s.id, s.chain, s.merchant_id, s.wallet_id, s.address_id, s.address, s.coin_id, k.symbol, k.is_token, k.coin_type, s.amount::text,
        s.destination, s.destination_role, s.gas_estimate::text, s.topup_amount::text, s.state, s.state_reason, s.tx_hash, s.network_fee::text,
        a.derivation_index, coalesce(w.account_index, -1), w.hot_address, extract(epoch FROM now() - s.created_at)::float8, coalesce(w.gas_address, '')
        """
    static let from = """
        gateway.sweeps s JOIN gateway.coins k ON k.id = s.coin_id JOIN gateway.addresses a ON a.id = s.address_id
        JOIN gateway.wallets w ON w.id = s.wallet_id
        """

    static func decode(_ rows: PostgresRowSequence) async throws -> [Sweep] {
        var out: [Sweep] = []
        for try await row in rows {
            let r = try row.decode((Int64, String, Int64, Int64, Int64, String, Int32, String, Bool, String, String, String, String, String, String,
                                    String, String?, String?, String?, Int32, Int32, String, Double, String).self)
            out.append(Sweep(id: r.0, chain: r.1, merchantID: r.2, walletID: r.3, addressID: r.4, address: r.5, coinID: r.6, symbol: r.7, isToken: r.8,
                             tokenContract: r.8 ? r.9 : nil, amount: BigUInt(r.10) ?? 0, destination: r.11, destinationRole: r.12,
                             gasEstimate: BigUInt(r.13) ?? 0, topupAmount: BigUInt(r.14) ?? 0, state: r.15, stateReason: r.16, txHash: r.17,
                             networkFee: r.18.flatMap { BigUInt($0) }, derivationIndex: Int(r.19), accountIndex: r.20 < 0 ? nil : Int(r.20),
                             hotAddress: r.21, gasAddress: r.23.isEmpty ? nil : r.23, age: r.22))
        }
        return out
    }

    /// One sweep; `lock` takes its row lock (until the caller's transaction ends).
    public static func find(_ id: Int64, lock: Bool = false, on c: DatabaseConnection, logger: Logger) async throws -> Sweep? {
        try await decode(try await c.query("""
            SELECT \(unescaped: columns) FROM \(unescaped: from) WHERE s.id = \(id) \(unescaped: lock ? "FOR UPDATE OF s" : "")
            """, logger: logger)).first
    }

    /// Several sweeps at once; `lock` takes their row locks in id order (until the caller's transaction ends).
    public static func find(ids: [Int64], lock: Bool = false, on c: DatabaseConnection, logger: Logger) async throws -> [Sweep] {
        guard !ids.isEmpty else { return [] }
        return try await decode(try await c.query("""
            SELECT \(unescaped: columns) FROM \(unescaped: from) WHERE s.id = ANY(\(ids)::int8[]) ORDER BY s.id \(unescaped: lock ? "FOR UPDATE OF s" : "")
            """, logger: logger))
    }

    /// Sweeps, newest first, optionally of one chain and state.
    public static func list(chain: String?, state: String?, limit: Int, on c: DatabaseConnection, logger: Logger) async throws -> [Sweep] {
        try await decode(try await c.query("""
            SELECT \(unescaped: columns) FROM \(unescaped: from)
            WHERE (\(chain ?? "") = '' OR s.chain = \(chain ?? "")) AND (\(state ?? "") = '' OR s.state = \(state ?? ""))
            ORDER BY s.id DESC LIMIT \(Int64(limit))
            """, logger: logger))
    }

    /// Counts of sweeps by state.
    public static func counts(on c: DatabaseConnection, logger: Logger) async throws -> [String: Int64] {
        var out: [String: Int64] = [:]
        for try await (s, n) in try await c.query("SELECT state, count(*) FROM gateway.sweeps GROUP BY state", logger: logger).decode((String, Int64).self) {
            out[s] = n
        }
        return out
    }

    /// Moves a sweep (whose row the caller locked) to `state` after its transaction was stored.
    public static func markSigned(_ id: Int64, state: String, txHash: String?, on c: DatabaseConnection, logger: Logger) async throws {
        try await c.query("""
            UPDATE gateway.sweeps SET state = \(state), tx_hash = coalesce(\(txHash), tx_hash), updated_at = now() WHERE id = \(id)
            """, logger: logger)
    }

    /// `markSigned` of many sweeps (rows the caller locked) at once.
    public static func markSigned(_ items: [(id: Int64, txHash: String?)], state: String, on c: DatabaseConnection, logger: Logger) async throws {
        guard !items.isEmpty else { return }
        try await c.query("""
            UPDATE gateway.sweeps s SET state = \(state), tx_hash = coalesce(nullif(x.h, ''), s.tx_hash), updated_at = now()
            FROM unnest(\(items.map(\.id))::int8[], \(items.map { $0.txHash ?? "" })::text[]) AS x(id, h) WHERE s.id = x.id
            """, logger: logger)
    }

    /// A sweep that cannot go on (the reason says why); its funds stay where they are and a later
    /// planner run may plan the address again.
    public static func fail(_ id: Int64, reason: String, on c: DatabaseConnection, logger: Logger) async throws {
        try await c.query("""
            UPDATE gateway.sweeps SET state = 'failed', state_reason = \(String(reason.prefix(500))), finished_at = now(), updated_at = now()
            WHERE id = \(id) AND state NOT IN ('swept', 'failed')
            """, logger: logger)
    }

    /// Settles top-ups or sweeps (`purpose`) whose transactions are deep enough, in the caller's
    /// transaction: the transaction confirmed or failed (siblings replaced), its network fee booked to the
    /// chain's fee account (a token sweep's out of `sweep_gas`, where its top-up's amount was booked). A confirmed
    /// top-up makes the sweep `gas_confirmed` and queues its signing; a
    /// confirmed sweep is `swept`. A failed one fails the sweep with the chain's reason. The amount a
    /// sweep moves stays among our own addresses: no merchant balance changes.
    /// Returns the sweep ids settled.
    public static func settle(_ items: [Payments.Settlement], purpose: String, on c: DatabaseConnection, logger: Logger) async throws -> Set<Int64> {
        precondition(purpose == "sweep" || purpose == "topup")
        guard !items.isEmpty else { return [] }
        var byID: [Int64: Payments.Settlement] = [:]
        for item in items where byID[item.withdrawalID] == nil { byID[item.withdrawalID] = item }
        let ids = byID.keys.sorted()
        let expected = purpose == "topup" ? "gas_topup_sent" : "sweep_sent"
        var chains: [Int64: String] = [:], isToken: [Int64: Bool] = [:], topups: [Int64: BigUInt] = [:]
        for try await (id, chain, token, topup) in try await c.query("""
            SELECT s.id, s.chain, k.is_token, s.topup_amount::text FROM gateway.sweeps s JOIN gateway.coins k ON k.id = s.coin_id
            WHERE s.id = ANY(\(ids)::int8[]) AND s.state = \(expected) ORDER BY s.id FOR UPDATE OF s
            """, logger: logger).decode((Int64, String, Bool, String).self) {
            chains[id] = chain
            isToken[id] = token
            topups[id] = BigUInt(topup) ?? 0
        }
        let candidates = ids.filter { chains[$0] != nil }.map { byID[$0]! }
        let hashes = try await Payments.closeTransactions(candidates, purpose: purpose, on: c, logger: logger)
        let settled = candidates.filter { hashes[$0.withdrawalID] != nil }
        guard !settled.isEmpty else { return [] }
        var natives: [String: Int32?] = [:]
        var transfers: [LedgerTransfer] = []
        for item in settled {
            let id = item.withdrawalID, chain = chains[id]!
            if var fee = try await Payments.networkFeeTransfer(chain: chain, fee: item.networkFee, reason: "\(purpose).network_fee",
                                                              ref: "\(purpose):\(id)", natives: &natives, on: c, logger: logger) {
                // A token sweep burns the native coin its top-ups put on the deposit address.
                if purpose == "sweep" && isToken[id] == true { fee.legs[0].kind = LedgerAccountKind.sweepGas }
                transfers.append(fee)
            }
            // A confirmed top-up moves native coin from the hot (or gas) address to the deposit address: still ours,
            // now waiting there for the sweep's gas (LedgerAccountKind.sweepGas).
            if purpose == "topup", item.outcome == .confirmed, let amount = topups[id], amount > 0 {
                if natives[chain] == nil { natives[chain] = .some(try await Payments.nativeCoinID(chain: chain, on: c, logger: logger)) }
                if let native = natives[chain] ?? nil {
                    transfers.append(LedgerTransfer(reason: "topup.amount", ref: "topup:\(id)", legs: [
                        LedgerLeg(merchantID: nil, coinID: native, kind: LedgerAccountKind.chain, amount: BigInt(amount)),
                        LedgerLeg(merchantID: nil, coinID: native, kind: LedgerAccountKind.sweepGas, amount: -BigInt(amount)),
                    ]))
                }
            }
        }
        try await Ledger.post(transfers, on: c, logger: logger)
        var next: [Int64] = []
        for item in settled {
            let id = item.withdrawalID
            switch (purpose, item.outcome) {
            case ("topup", .confirmed):
                try await c.query("UPDATE gateway.sweeps SET state = 'gas_confirmed', updated_at = now() WHERE id = \(id)", logger: logger)
                next.append(id)
            case ("topup", .failed(let reason)):
                try await fail(id, reason: "gas top-up failed on chain: \(reason)", on: c, logger: logger)
            case (_, .confirmed):
                try await c.query("""
                    UPDATE gateway.sweeps SET state = 'swept', tx_hash = \(hashes[id]!), network_fee = \(item.networkFee.description)::numeric,
                           finished_at = now(), updated_at = now() WHERE id = \(id)
                    """, logger: logger)
            case (_, .failed(let reason)):
                try await c.query("""
                    UPDATE gateway.sweeps SET network_fee = \(item.networkFee.description)::numeric WHERE id = \(id)
                    """, logger: logger)
                try await fail(id, reason: "sweep failed on chain: \(reason)", on: c, logger: logger)
            }
        }
        _ = try await JobQueue.enqueue(next.map(stepJob), on: c, logger: logger)
        return Set(settled.map(\.withdrawalID))
    }

    /// A TRON top-up or sweep transaction that expired unseen (checked against solidified state by the
    /// caller): marked expired and, when its sweep has no other open one, the sweep steps back (a top-up
    /// to `planned`, a sweep to `gas_confirmed` or `planned`) and signs a new one. Returns whether it did.
    public static func expire(purpose: String, sweepID: Int64, txID: Int64, on c: DatabaseConnection, logger: Logger) async throws -> Bool {
        guard let sweep = try await find(sweepID, lock: true, on: c, logger: logger) else { return false }
        let expected = purpose == "topup" ? "gas_topup_sent" : "sweep_sent"
        guard sweep.state == expected else { return false }
        try await c.query("""
            UPDATE gateway.outgoing_txs SET state = 'expired', updated_at = now()
            WHERE id = \(txID) AND state IN ('signed', 'broadcast') AND expiration IS NOT NULL
            """, logger: logger)
        guard try await Payments.openTransactions(withdrawalIDs: [sweepID], purpose: purpose, on: c, logger: logger).isEmpty else { return false }
        let back = purpose == "topup" || sweep.topupAmount == 0 ? "planned" : "gas_confirmed"
        try await c.query("UPDATE gateway.sweeps SET state = \(back), tx_hash = NULL, updated_at = now() WHERE id = \(sweepID)", logger: logger)
        _ = try await JobQueue.enqueue(stepJob(sweepID), on: c, logger: logger)
        return true
    }
}
