import BigInt
import Foundation
import GatewayCore
import GatewayRuntime
import Logging
import PostgresNIO

/// One stage of the queue, as `monitor.queue` has it (ages in seconds).
public struct PipelineStage: Sendable, Equatable {
    public var stage: String
    public var ready: Int64
    public var scheduled: Int64
    public var running: Int64
    public var expiredLeases: Int64
    public var dead: Int64
    /// Seconds the oldest ready job has waited; nil when none is ready.
    public var oldestReady: Double?
    public var completedLastMinute: Int64
    public var completedLastHour: Int64
    public var retriedLastHour: Int64
    public var diedLastHour: Int64
}

/// One chain's scanner, as `monitor.chains` has it (ages in seconds).
public struct PipelineChain: Sendable, Equatable {
    public var chain: String
    public var nodeTip: Int64?
    public var scanned: Int64?
    public var lag: Int64?
    public var lastScanAge: Double?
    public var leader: String?
    /// The leader's lease has not run out.
    public var leaderAlive: Bool
    public var lastError: String?
    public var lastErrorAge: Double?
    public var depositsWaiting: Int64
    public var openReorgAlerts: Int64
}

/// Reviews waiting at one level, as `monitor.reviews` has it (durations in seconds).
public struct PipelineReviewLevel: Sendable, Equatable {
    public var level: Int
    public var name: String
    public var sla: Double?
    public var waiting: Int64
    public var merchants: Int64
    public var overdue: Int64
    public var fourEyes: Int64
    public var awaitingSecondApproval: Int64
    public var oldestAtLevel: Double?
    public var oldestWaiting: Double?
    public var mostOverdueBy: Double?
}

/// Withdrawals of one coin in one state (open ones, and those finished in the last day).
public struct PipelineWithdrawals: Sendable, Equatable {
    public var chain: String
    public var symbol: String
    public var decimals: Int
    public var state: String
    public var count: Int64
    /// Base units.
    public var amount: BigUInt
    /// Seconds since the oldest of them changed state.
    public var oldestInState: Double?
}

/// Signed transactions of one hot address, coin and state (open ones, and those settled in the last day).
public struct PipelinePayments: Sendable, Equatable {
    public var chain: String
    public var fromAddress: String
    public var symbol: String
    public var decimals: Int
    public var state: String
    public var count: Int64
    /// Base units.
    public var amount: BigUInt
    public var oldest: Double?
    public var mostBroadcasts: Int
}

/// A merchant's callbacks, as `monitor.callbacks` has it.
public struct PipelineCallbacks: Sendable, Equatable {
    public var merchantID: Int64
    public var merchant: String
    public var pending: Int64
    public var oldestPending: Double?
    public var dead: Int64
    public var lastDeliveredAt: Date?
}

/// A hot wallet's holding of one coin, as `monitor.hot_wallets` has it (amounts in base units).
public struct PipelineHotWallet: Sendable, Equatable {
    public var walletID: Int64
    public var merchantID: Int64
    public var merchant: String
    public var chain: String
    public var hotAddress: String
    /// The HD account (nil: a wallet attached by xpub alone).
    public var accountIndex: Int64?
    public var symbol: String
    public var decimals: Int
    public var isToken: Bool
    /// Receipts − payments − fees by our records.
    public var expected: BigInt
    /// Receipts not yet at the confirmation depth.
    public var receiptsWaiting: BigInt
    /// What open transactions (signed or broadcast) take from it.
    public var inFlight: BigInt
    public var inFlightTxs: Int64
}

/// Sweeps of one coin, state and destination (open ones, and those finished in the last day).
public struct PipelineSweeps: Sendable, Equatable {
    public var chain: String
    public var symbol: String
    public var decimals: Int
    public var state: String
    /// `hot` or `cold`.
    public var destinationRole: String
    public var count: Int64
    /// Base units.
    public var amount: BigUInt
    public var oldest: Double?
}

/// A deep reorganisation not yet acknowledged, as `monitor.reorg_alerts` has it.
public struct PipelineReorgAlert: Sendable, Equatable {
    public var id: Int64
    public var chain: String
    public var forkHeight: Int64
    public var depth: Int
    public var confirmations: Int
    public var oldHash: String
    public var newHash: String
    public var affectedDeposits: [Int64]
    public var detail: String
    public var detectedAt: Date
}

/// A dead job, as `monitor.dead_jobs` has it.
public struct PipelineDeadJob: Sendable, Equatable {
    public var id: Int64
    public var stage: String
    public var kind: String
    public var ref: String?
    public var attempt: Int
    /// nil: the stage's configured maximum.
    public var maxAttempts: Int?
    public var diedAt: Date?
    public var lastError: String?
}

/// A dead callback, as `monitor.dead_callbacks` has it, with the merchant's name.
public struct PipelineDeadCallback: Sendable, Equatable {
    public var id: Int64
    public var merchantID: Int64
    public var merchant: String
    /// 1 deposit, 2 withdrawal.
    public var tradeType: Int
    public var tradeID: Int64
    /// The Udun callback status: 0 entered review … 4 failed on chain.
    public var status: Int
    public var url: String
    public var attempts: Int
    public var lastError: String?
    public var createdAt: Date
}

/// Everything the pipeline page shows now, read on one connection.
public struct PipelineSnapshot: Sendable {
    public var stages: [PipelineStage] = []
    public var chains: [PipelineChain] = []
    public var reviews: [PipelineReviewLevel] = []
    public var withdrawals: [PipelineWithdrawals] = []
    public var payments: [PipelinePayments] = []
    public var callbacks: [PipelineCallbacks] = []
    public var hotWallets: [PipelineHotWallet] = []
    public var sweeps: [PipelineSweeps] = []
    public var reorgAlerts: [PipelineReorgAlert] = []
    public var deadJobs: [PipelineDeadJob] = []
    public var deadCallbacks: [PipelineDeadCallback] = []
    /// The database's clock when it was read.
    public var at: Date = Date()
}

/// The last hour, minute by minute: per stage jobs completed and the oldest ready job's age, per chain
/// the scanner's lag. Minute `i` is `start + i` minutes; the current (unfinished) minute is not in it.
public struct PipelineHistory: Sendable, Equatable {
    /// How many minutes the history spans.
    public static let minutes = 60
    /// The first minute (the database's clock).
    public var start: Date
    /// Stage → minute index → jobs completed (a minute without a count had none).
    public var completed: [String: [Int: Double]] = [:]
    /// Stage → minute index → seconds (a minute without a sample had nobody to measure).
    public var oldestReady: [String: [Int: Double]] = [:]
    /// Chain → minute index → blocks.
    public var chainLag: [String: [Int: Double]] = [:]
}

/// The reads behind the console's pipeline page: the `monitor` views typed (ages in seconds, amounts
/// with their coin's decimals), and the last hour's history for its charts.
public enum PipelineQueries {
    /// Everything the page shows, at most `limit` rows per list (dead jobs and callbacks newest first).
    /// `stages` are listed even when they have nothing (so an idle stage reads as idle, not as missing).
    public static func snapshot(stages known: [String], limit: Int = 200, on c: DatabaseConnection, logger: Logger) async throws -> PipelineSnapshot {
        var s = PipelineSnapshot()
        let limit = Int32(clamping: limit)
        for try await at in try await c.query("SELECT now()", logger: logger).decode(Date.self) { s.at = at }

        for try await row in try await c.query("""
            SELECT s.stage, coalesce(q.ready, 0), coalesce(q.scheduled, 0), coalesce(q.running, 0), coalesce(q.expired_leases, 0), coalesce(q.dead, 0),
                   extract(epoch FROM q.oldest_ready_age)::float8, coalesce(q.completed_last_minute, 0)::int8, coalesce(q.completed_last_hour, 0)::int8,
                   coalesce(q.retried_last_hour, 0)::int8, coalesce(q.died_last_hour, 0)::int8
            FROM (SELECT unnest(\(known)::text[]) AS stage UNION SELECT stage FROM monitor.queue) s
            LEFT JOIN monitor.queue q ON q.stage = s.stage
            ORDER BY s.stage
            """, logger: logger) {
            let r = try row.decode((String, Int64, Int64, Int64, Int64, Int64, Double?, Int64, Int64, Int64, Int64).self)
            s.stages.append(PipelineStage(stage: r.0, ready: r.1, scheduled: r.2, running: r.3, expiredLeases: r.4, dead: r.5, oldestReady: r.6,
                                          completedLastMinute: r.7, completedLastHour: r.8, retriedLastHour: r.9, diedLastHour: r.10))
        }

        for try await row in try await c.query("""
            SELECT chain, node_tip, scanned_height, lag_blocks, extract(epoch FROM last_scan_age)::float8, leader, coalesce(leader_alive, false),
                   last_error, extract(epoch FROM last_error_age)::float8, deposits_waiting, open_reorg_alerts
            FROM monitor.chains ORDER BY chain
            """, logger: logger) {
            let r = try row.decode((String, Int64?, Int64?, Int64?, Double?, String?, Bool, String?, Double?, Int64, Int64).self)
            s.chains.append(PipelineChain(chain: r.0, nodeTip: r.1, scanned: r.2, lag: r.3, lastScanAge: r.4, leader: r.5, leaderAlive: r.6,
                                          lastError: r.7, lastErrorAge: r.8, depositsWaiting: r.9, openReorgAlerts: r.10))
        }

        for try await row in try await c.query("""
            SELECT level, level_name, extract(epoch FROM sla)::float8, waiting, merchants, overdue, four_eyes, awaiting_second_approval,
                   extract(epoch FROM oldest_at_level_age)::float8, extract(epoch FROM oldest_waiting_age)::float8,
                   extract(epoch FROM most_overdue_by)::float8
            FROM monitor.reviews ORDER BY level
            """, logger: logger) {
            let r = try row.decode((Int32, String, Double?, Int64, Int64, Int64, Int64, Int64, Double?, Double?, Double?).self)
            s.reviews.append(PipelineReviewLevel(level: Int(r.0), name: r.1, sla: r.2, waiting: r.3, merchants: r.4, overdue: r.5, fourEyes: r.6,
                                                 awaitingSecondApproval: r.7, oldestAtLevel: r.8, oldestWaiting: r.9, mostOverdueBy: r.10))
        }

        // monitor.withdrawals, monitor.payments and monitor.sweeps group by symbol (payments: not even
        // that): the same selections by coin, so that every amount is summed in one coin's units.
        for try await row in try await c.query("""
            SELECT w.chain, k.symbol, k.decimals, w.state, count(*), sum(w.amount)::text, extract(epoch FROM now() - min(w.updated_at))::float8
            FROM gateway.withdrawals w JOIN gateway.coins k ON k.id = w.coin_id
            WHERE w.state NOT IN ('confirmed', 'rejected', 'failed') OR w.updated_at > now() - interval '1 day'
            GROUP BY w.chain, k.id, k.symbol, k.decimals, w.state
            ORDER BY w.chain, k.symbol, k.id, array_position(\(Self.withdrawalStates)::text[], w.state), w.state
            """, logger: logger) {
            let r = try row.decode((String, String, Int32, String, Int64, String, Double?).self)
            s.withdrawals.append(PipelineWithdrawals(chain: r.0, symbol: r.1, decimals: Int(r.2), state: r.3, count: r.4, amount: BigUInt(r.5) ?? 0,
                                                     oldestInState: r.6))
        }

        for try await row in try await c.query("""
            SELECT o.chain, o.from_address, k.symbol, k.decimals, o.state, count(*), sum(o.amount)::text,
                   extract(epoch FROM now() - min(o.created_at))::float8, max(o.broadcasts)
            FROM gateway.outgoing_txs o JOIN gateway.coins k ON k.id = o.coin_id
            WHERE o.state IN ('signed', 'broadcast', 'mined') OR o.updated_at > now() - interval '1 day'
            GROUP BY o.chain, o.from_address, k.id, k.symbol, k.decimals, o.state
            ORDER BY o.chain, o.from_address, k.symbol, array_position(\(Self.paymentStates)::text[], o.state), o.state
            LIMIT \(limit)
            """, logger: logger) {
            let r = try row.decode((String, String, String, Int32, String, Int64, String, Double?, Int32).self)
            s.payments.append(PipelinePayments(chain: r.0, fromAddress: r.1, symbol: r.2, decimals: Int(r.3), state: r.4, count: r.5,
                                               amount: BigUInt(r.6) ?? 0, oldest: r.7, mostBroadcasts: Int(r.8)))
        }

        // Merchants with something waiting or dead first; then the ones that were delivered to lately.
        for try await row in try await c.query("""
            SELECT merchant_id, merchant, pending, extract(epoch FROM oldest_pending_age)::float8, dead, last_delivered_at
            FROM monitor.callbacks
            ORDER BY (pending > 0 OR dead > 0) DESC, dead DESC, pending DESC, last_delivered_at DESC NULLS LAST, merchant_id
            LIMIT \(limit)
            """, logger: logger) {
            let r = try row.decode((Int64, String, Int64, Double?, Int64, Date?).self)
            s.callbacks.append(PipelineCallbacks(merchantID: r.0, merchant: r.1, pending: r.2, oldestPending: r.3, dead: r.4, lastDeliveredAt: r.5))
        }

        for try await row in try await c.query("""
            SELECT h.wallet_id, h.merchant_id, m.name, h.chain, h.hot_address, h.account_index::int8, h.symbol, h.decimals, h.is_token,
                   h.expected::text, h.receipts_waiting::text, h.in_flight::text, h.in_flight_txs
            FROM monitor.hot_wallets h JOIN gateway.merchants m ON m.id = h.merchant_id
            ORDER BY h.chain, h.symbol, m.name, h.wallet_id
            LIMIT \(limit)
            """, logger: logger) {
            let r = try row.decode((Int64, Int64, String, String, String, Int64?, String, Int32, Bool, String, String, String, Int64).self)
            s.hotWallets.append(PipelineHotWallet(walletID: r.0, merchantID: r.1, merchant: r.2, chain: r.3, hotAddress: r.4, accountIndex: r.5,
                                                  symbol: r.6, decimals: Int(r.7), isToken: r.8, expected: BigInt(r.9) ?? 0,
                                                  receiptsWaiting: BigInt(r.10) ?? 0, inFlight: BigInt(r.11) ?? 0, inFlightTxs: r.12))
        }

        for try await row in try await c.query("""
            SELECT s.chain, k.symbol, k.decimals, s.state, s.destination_role, count(*), sum(s.amount)::text,
                   extract(epoch FROM now() - min(s.created_at))::float8
            FROM gateway.sweeps s JOIN gateway.coins k ON k.id = s.coin_id
            WHERE s.state NOT IN ('swept', 'failed') OR s.updated_at > now() - interval '1 day'
            GROUP BY s.chain, k.id, k.symbol, k.decimals, s.state, s.destination_role
            ORDER BY s.chain, k.symbol, k.id, array_position(\(Self.sweepStates)::text[], s.state), s.state, s.destination_role
            """, logger: logger) {
            let r = try row.decode((String, String, Int32, String, String, Int64, String, Double?).self)
            s.sweeps.append(PipelineSweeps(chain: r.0, symbol: r.1, decimals: Int(r.2), state: r.3, destinationRole: r.4, count: r.5,
                                           amount: BigUInt(r.6) ?? 0, oldest: r.7))
        }

        for try await row in try await c.query("""
            SELECT id, chain, fork_height, depth, confirmations, old_hash, new_hash, affected_deposits, detail, detected_at
            FROM monitor.reorg_alerts ORDER BY id LIMIT \(limit)
            """, logger: logger) {
            let r = try row.decode((Int64, String, Int64, Int32, Int32, String, String, [Int64], String, Date).self)
            s.reorgAlerts.append(PipelineReorgAlert(id: r.0, chain: r.1, forkHeight: r.2, depth: Int(r.3), confirmations: Int(r.4), oldHash: r.5,
                                                    newHash: r.6, affectedDeposits: r.7, detail: r.8, detectedAt: r.9))
        }

        for try await row in try await c.query("""
            SELECT id, stage, kind, ref, attempt, max_attempts, died_at, last_error
            FROM monitor.dead_jobs ORDER BY died_at DESC NULLS LAST, id DESC LIMIT \(limit)
            """, logger: logger) {
            let r = try row.decode((Int64, String, String, String?, Int32, Int32?, Date?, String?).self)
            s.deadJobs.append(PipelineDeadJob(id: r.0, stage: r.1, kind: r.2, ref: r.3, attempt: Int(r.4), maxAttempts: r.5.map(Int.init), diedAt: r.6,
                                              lastError: r.7))
        }

        for try await row in try await c.query("""
            SELECT d.id, d.merchant_id, coalesce(m.name, ''), d.trade_type, d.trade_id, d.status, d.url, d.attempts, d.last_error, d.created_at
            FROM monitor.dead_callbacks d LEFT JOIN gateway.merchants m ON m.id = d.merchant_id
            ORDER BY d.id DESC LIMIT \(limit)
            """, logger: logger) {
            let r = try row.decode((Int64, Int64, String, Int16, Int64, Int16, String, Int32, String?, Date).self)
            s.deadCallbacks.append(PipelineDeadCallback(id: r.0, merchantID: r.1, merchant: r.2, tradeType: Int(r.3), tradeID: r.4, status: Int(r.5),
                                                        url: r.6, attempts: Int(r.7), lastError: r.8, createdAt: r.9))
        }
        return s
    }

    /// Withdrawal, payment and sweep states in the order they are passed through (for listing).
    static let withdrawalStates = ["received", "pending_review", "approved", "signed", "broadcast", "confirmed", "rejected", "failed"]
    static let paymentStates = ["signed", "broadcast", "mined", "confirmed", "failed", "replaced", "expired"]
    static let sweepStates = ["planned", "gas_topup_sent", "gas_confirmed", "sweep_sent", "swept", "failed"]

    /// The last `PipelineHistory.minutes` finished minutes: completions from `gateway.job_stats`, the
    /// oldest ready job's age and the chains' lag from `gateway.pipeline_samples`.
    public static func history(on c: DatabaseConnection, logger: Logger) async throws -> PipelineHistory {
        var start = Date()
        let minutes = Int32(PipelineHistory.minutes)
        for try await s in try await c.query(
            "SELECT date_trunc('minute', now()) - make_interval(mins => \(Int32(PipelineHistory.minutes)))", logger: logger).decode(Date.self) { start = s }
        var h = PipelineHistory(start: start)
        func index(_ minute: Date) -> Int? {
            let i = Int((minute.timeIntervalSince(start) / 60).rounded())
            return (0..<PipelineHistory.minutes).contains(i) ? i : nil
        }
        // The window is bound as the timestamp read above, so both reads cover the same minutes.
        for try await (stage, minute, done) in try await c.query("""
            SELECT stage, minute, sum(completed)::float8 FROM gateway.job_stats
            WHERE minute >= \(start) AND minute < \(start) + make_interval(mins => \(minutes))
            GROUP BY stage, minute
            """, logger: logger).decode((String, Date, Double).self) {
            if let i = index(minute) { h.completed[stage, default: [:]][i] = done }
        }
        for try await (kind, key, minute, value) in try await c.query("""
            SELECT kind, key, minute, value FROM gateway.pipeline_samples
            WHERE minute >= \(start) AND minute < \(start) + make_interval(mins => \(minutes))
            """, logger: logger).decode((String, String, Date, Double).self) {
            guard let i = index(minute) else { continue }
            switch PipelineSamples.Kind(rawValue: kind) {
            case .oldestReady: h.oldestReady[key, default: [:]][i] = value
            case .chainLag: h.chainLag[key, default: [:]][i] = value
            case nil: continue
            }
        }
        return h
    }
}
