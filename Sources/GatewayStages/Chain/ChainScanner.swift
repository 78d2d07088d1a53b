import BigInt
import ChainKit
import Foundation
import GatewayCore
import GatewayRuntime
import GatewayServices
import Logging
import PostgresNIO
import ServiceLifecycle

/// The deposit scanner of one chain (DESIGN.md §4-5): one active per chain, leadership held by a
/// leased row of `gateway.chain_scanners`; every other copy stands by and takes over once the
/// lease runs out.
///
/// A step reads the node's tip, then the blocks after the cursor (at most `scanBatch`), checks
/// that the first one's parent is the block it stored for the cursor, and in one transaction —
/// fenced on holding the lease at that cursor — records the blocks' hashes, the transfers to our
/// addresses, moves the cursor, and confirms every deposit now `confirmations` blocks deep
/// (ledger credit and callback). It also watches every wallet's hot address: funds arriving there are
/// hot wallet receipts (`HotReceipts`), recorded and booked at the same depth, never deposits. A parent mismatch is a reorganisation: it walks back to the last
/// block both chains share, rewinds there, orphans the deposits above, and raises an alert when
/// the reorg was deeper than the confirmation depth.
public actor ChainScanner: Service {
    /// What one step did.
    public enum Step: Sendable, Equatable {
        /// Another process holds the lease.
        case standby(leader: String)
        /// Nothing new on the node.
        case caughtUp(height: Int64)
        /// Blocks `from...to` recorded; `behind` blocks remain up to the tip.
        case scanned(from: Int64, to: Int64, deposits: Int, confirmed: Int, ignored: Int, behind: Int64)
        /// A reorganisation: rewound to `fork`, `depth` blocks replaced.
        case rewound(fork: Int64, depth: Int64, orphaned: Int, alert: Bool)
    }

    struct Watched: Sendable {
        var addressID: Int64
        var merchantID: Int64
    }

    struct WatchedHot: Sendable {
        var walletID: Int64
        var merchantID: Int64
        var address: String
    }

    /// The lease was lost (or another scanner moved the cursor) while a step ran: nothing of it was written.
    struct LostLease: Error, CustomStringConvertible {
        var description: String { "lost the scanner lease during the step; nothing of it was written" }
    }

    public let chain: ChainConfig
    let node: any ChainNodeClient
    let database: Database
    let lease: Duration
    let backoff: BackoffPolicy
    public let identity: String
    var logger: Logger

    // Leadership and position, valid while `leaderSince` is set.
    private var leaderSince: ContinuousClock.Instant?
    private var renewedAt: ContinuousClock.Instant?
    private var cursor: Int64?
    private var cursorHash: String?

    // What to look for.
    private var watched: [AccountID: Watched] = [:]
    private var watchedSet = WatchedAddresses([])
    private var lastAddressID: Int64 = 0
    private var hotWallets: [AccountID: WatchedHot] = [:]
    private var lastWalletID: Int64 = 0
    private var tokenCoins: [AccountID: Int32] = [:]
    private var nativeCoin: Int32?
    /// When the lag was last written to `gateway.pipeline_samples` (the console's chart).
    private var lagSamples = SampleSchedule()
    /// What the current step is waiting for (named in the log when a step is given up).
    private var phase = "idle"
    /// How long one step may take before it is given up.
    var stepLimit: Duration { max(lease * 3, .seconds(30)) }

    /// A scanner for `chain`, asking `node`, writing to `database`.
    public init(chain: ChainConfig, node: any ChainNodeClient, database: Database, lease: Duration, backoff: BackoffPolicy,
                identity: String = QueueWorker.defaultWorkerID(), logger: Logger) {
        self.chain = chain
        self.node = node
        self.database = database
        self.lease = lease
        self.backoff = backoff
        self.identity = identity
        var logger = logger
        logger[metadataKey: "chain"] = "\(chain.name)"
        self.logger = logger
    }

    /// Blocks of hashes kept behind the cursor for finding a fork point.
    var keptBlocks: Int64 { Int64(max(2 * chain.confirmations + 16, 64)) }

    /// Scans until graceful shutdown, then lets the lease go so a stand-by takes over at once.
    public func run() async throws {
        var failures = 0
        logger.info("scanner started", metadata: ["scanner": "\(identity)", "confirmations": "\(chain.confirmations)",
                                                  "poll": "\(DurationText.format(chain.pollInterval))", "lease": "\(DurationText.format(lease))"])
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            var pause: Duration
            do {
                // A step that does not end (a call on a connection that died under it) must not stop the chain's
                // scanning for good: after `stepLimit` it is given up and the next one starts from the database's
                // position (its writes are fenced by the lease and the cursor).
                let limit = stepLimit
                let outcome = try await withDeadline(limit) { try await self.step() }
                switch outcome {
                case .standby: pause = min(lease / 5, .seconds(2))
                case .caughtUp: pause = chain.pollInterval
                case .scanned(_, _, _, _, _, let behind): pause = behind > 0 ? .zero : chain.pollInterval
                case .rewound: pause = .zero
                }
                failures = 0
            } catch let e as ChainNodeError {
                if case .reorgDuringScan = e {
                    logger.info("a block changed while it was read; scanning it again", metadata: ["error": "\(e)"])
                    pause = chain.pollInterval
                } else {
                    failures += 1
                    pause = max(backoff.delay(attempt: failures), .milliseconds(100))
                    logger.warning("node request failed; retrying from the same block", metadata: [
                        "error": "\(e)", "retry_in": "\(DurationText.format(pause))", "failures": "\(failures)"])
                    await recordError("node: \(e)")
                }
            } catch let e as DeadlineExceeded {
                failures += 1
                pause = max(backoff.delay(attempt: failures), .milliseconds(100))
                logger.error("scan step did not end; giving it up and scanning again from the database's position", metadata: [
                    "error": "\(e)", "phase": "\(phase)", "retry_in": "\(DurationText.format(pause))"])
                dropLeadership()
                await recordError("scan step stuck in \(phase) past \(DurationText.format(stepLimit))")
            } catch is LostLease {
                logger.warning("lost the scanner lease; standing by")
                dropLeadership()
                pause = .zero
            } catch {
                failures += 1
                pause = max(backoff.delay(attempt: failures), .milliseconds(100))
                logger.error("scan step failed; retrying from the same block", metadata: [
                    "error": "\(DatabaseErrors.describe(error))", "retry_in": "\(DurationText.format(pause))"])
                dropLeadership()  // re-read the position from the database
                await recordError(DatabaseErrors.describe(error))
            }
            if pause > .zero {
                let wait = pause
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: wait) }
            } else {
                await Task.yield()
            }
        }
        await releaseLease()
        logger.info("scanner stopped", metadata: ["scanner": "\(identity)", "height": "\(cursor.map(String.init) ?? "-")"])
    }

    /// One step: keep or take the lease, then scan, rewind or report being caught up. When the
    /// position moved under it (`gatewayctl chain rescan`, or another scanner took over), it
    /// re-reads the lease row and steps from there.
    public func step() async throws -> Step {
        do {
            return try await stepOnce()
        } catch is LostLease {
            logger.notice("the scanner's position changed under it (a rescan, or another scanner); reading it again")
            dropLeadership()
            return try await stepOnce()
        }
    }

    private func stepOnce() async throws -> Step {
        let clock = ContinuousClock()
        if leaderSince == nil || renewedAt.map({ clock.now - $0 > self.lease / 3 }) ?? true {
            phase = "taking or renewing the lease"
            if let other = try await acquire() { return .standby(leader: other) }
        }
        guard let cursor else { throw LostLease() }
        phase = "asking the node for its tip"
        let tip = Int64(try await node.tipHeight())
        guard tip > cursor else {
            if tip < cursor - keptBlocks {
                logger.warning("the node's tip is far below the scanned height: is it syncing, or the wrong node?",
                               metadata: ["tip": "\(tip)", "scanned": "\(cursor)"])
            }
            phase = "recording the lag"
            await recordLag(0)
            phase = "idle"
            return .caughtUp(height: cursor)
        }
        // Addresses are read after the tip: an address whose transaction is in a block up to the
        // tip was committed before that block existed, so it is in this read.
        phase = "reading the watched addresses"
        try await refreshWatchList()
        phase = "reading blocks from the node"
        let from = cursor + 1
        let to = min(tip, cursor + Int64(chain.scanBatch))
        let scan = try await node.transfers(in: UInt64(from)...UInt64(to), to: watchedSet, tokens: Array(tokenCoins.keys),
                                            includeNative: nativeCoin != nil)
        guard scan.blocks.count == Int(to - from + 1), scan.blocks.first.map({ Int64($0.number) }) == from else {
            throw ChainNodeError.malformedResponse(method: "scan", field: "blocks", reason: "expected blocks \(from)...\(to), got \(scan.blocks.count)")
        }
        for (a, b) in zip(scan.blocks, scan.blocks.dropFirst()) where b.parentHash != a.hash {
            throw ChainNodeError.reorgDuringScan(height: b.number, reason: "block \(b.number)'s parent is not the block \(a.number) just read")
        }
        if let expected = cursorHash, scan.blocks[0].parentHash != expected {
            return try await rewind(from: cursor, tip: tip, firstNew: scan.blocks[0])
        }

        var found: [FoundDeposit] = []
        var hotFound: [FoundHotReceipt] = []
        var fromHot: [String] = []  // transfers from a hot address to a deposit address: a sweep's gas top-up?
        for t in scan.transfers {
            let coin: Int32?
            switch t.asset {
            case .native: coin = nativeCoin
            case .token(let contract): coin = tokenCoins[contract]
            }
            guard let coin, t.amount > 0 else { continue }
            if let w = watched[t.to] {
                if hotWallets[t.from] != nil { fromHot.append(t.txHash.lowercased()) }
                found.append(FoundDeposit(txHash: t.txHash, logIndex: Int32(t.logIndex ?? -1), addressID: w.addressID, merchantID: w.merchantID, coinID: coin,
                                          from: chain.kind.format(t.from), amount: t.amount, blockHeight: Int64(t.blockNumber), blockHash: t.blockHash))
            } else if let w = hotWallets[t.to] {
                // From one of our own addresses (a sweep, from issue 8 on; today only an operator's
                // hand) it is an internal transfer: recorded, but booked by the sweep that sends it,
                // not here, or the same coins would enter the ledger twice (HotReceipts).
                let isInternal = watched[t.from] != nil || hotWallets[t.from] != nil
                hotFound.append(FoundHotReceipt(txHash: t.txHash, logIndex: Int32(t.logIndex ?? -1), walletID: w.walletID, merchantID: w.merchantID,
                                                address: w.address, coinID: coin, from: chain.kind.format(t.from), isInternal: isInternal,
                                                amount: t.amount, blockHeight: Int64(t.blockNumber), blockHash: t.blockHash))
            }
        }
        let name = chain.name, identity = self.identity, lease = self.lease, kept = keptBlocks, depth = Int64(chain.confirmations)
        let logger = self.logger
        let blocks = scan.blocks
        phase = "recording the blocks and deposits"
        let (recorded, confirmation, hot) = try await database.transaction { c in
            let moved = try await c.query("""
                UPDATE gateway.chain_scanners
                SET scanned_height = \(to), node_tip = \(tip), last_scan_at = now(), lease_until = now() + make_interval(secs => \(Self.seconds(lease))),
                    updated_at = now()
                WHERE chain = \(name) AND leader = \(identity) AND scanned_height = \(cursor) RETURNING 1
                """, logger: logger)
            var fenced = false
            for try await _ in moved { fenced = true }
            guard fenced else { throw LostLease() }
            try await c.query("""
                INSERT INTO gateway.chain_blocks (chain, height, hash, parent_hash)
                SELECT \(name), h, x, p FROM unnest(\(blocks.map { Int64($0.number) })::int8[], \(blocks.map(\.hash))::text[],
                                                    \(blocks.map(\.parentHash))::text[]) AS t(h, x, p)
                ON CONFLICT (chain, height) DO UPDATE SET hash = excluded.hash, parent_hash = excluded.parent_hash
                """, logger: logger)
            try await c.query("DELETE FROM gateway.chain_blocks WHERE chain = \(name) AND height < \(to - kept)", logger: logger)
            // A gas top-up is our own transaction, not a merchant's deposit: the sweep books it.
            var deposits = found
            if !fromHot.isEmpty {
                var topups = Set<String>()
                for try await h in try await c.query("""
                    SELECT tx_hash FROM gateway.outgoing_txs WHERE chain = \(name) AND purpose = 'topup' AND tx_hash = ANY(\(fromHot)::text[])
                    """, logger: logger).decode(String.self) { topups.insert(h.lowercased()) }
                deposits = found.filter { !topups.contains($0.txHash.lowercased()) }
            }
            let recorded = try await Deposits.record(chain: name, deposits, on: c, logger: logger)
            let confirmation = try await Deposits.confirm(chain: name, upTo: to - depth, on: c, logger: logger)
            let hotRecorded = try await HotReceipts.record(chain: name, hotFound, on: c, logger: logger)
            let hotConfirmed = try await HotReceipts.confirm(chain: name, upTo: to - depth, on: c, logger: logger)
            return (recorded, confirmation, (recorded: hotRecorded, confirmed: hotConfirmed.count))
        }
        self.cursor = to
        self.cursorHash = blocks.last?.hash
        self.renewedAt = clock.now
        if recorded > 0 || !confirmation.confirmed.isEmpty || !confirmation.ignored.isEmpty {
            logger.info("deposits", metadata: ["blocks": "\(from)...\(to)", "new": "\(recorded)", "confirmed": "\(confirmation.confirmed.count)",
                                               "ignored_below_minimum": "\(confirmation.ignored.count)"])
        }
        if hot.recorded > 0 || hot.confirmed > 0 {
            logger.info("hot wallet receipts", metadata: ["blocks": "\(from)...\(to)", "new": "\(hot.recorded)", "confirmed": "\(hot.confirmed)"])
        }
        if recorded == 0 && confirmation.confirmed.isEmpty && confirmation.ignored.isEmpty && hot.recorded == 0 && hot.confirmed == 0 {
            logger.debug("scanned", metadata: ["blocks": "\(from)...\(to)", "tip": "\(tip)"])
        }
        phase = "recording the lag"
        await recordLag(tip - to)
        phase = "idle"
        return .scanned(from: from, to: to, deposits: recorded, confirmed: confirmation.confirmed.count, ignored: confirmation.ignored.count,
                        behind: tip - to)
    }

    /// Records the lag (node tip − scanned height) for the console's chart: the first look of each
    /// minute, and again when it grew within the minute (the row keeps the greatest). Caught up, that is
    /// one 0 a minute, so the chart tells "no lag" from "no scanner" (a gap). Only the lease holder gets
    /// here. A failed write is left to the next step: the chart may miss a minute, the scan must not.
    private func recordLag(_ lag: Int64) async {
        let value = Double(max(0, lag))
        guard lagSamples.take(value) else { return }
        let name = chain.name, logger = self.logger
        do {
            try await database.transaction { c in try await PipelineSamples.record(.chainLag, key: name, value: value, on: c, logger: logger) }
        } catch {
            lagSamples.reset()
            logger.debug("could not record the scanner's lag", metadata: ["error": "\(DatabaseErrors.describe(error))"])
        }
    }

    /// The node's chain no longer continues ours at `cursor`: find the last shared block, rewind
    /// to it, orphan what was above, alert when it was deeper than the confirmation depth.
    private func rewind(from cursor: Int64, tip: Int64, firstNew: BlockRef) async throws -> Step {
        var stored: [Int64: String] = [:]
        let name = chain.name
        for try await (h, hash) in try await database.query("""
            SELECT height, hash FROM gateway.chain_blocks WHERE chain = \(name) AND height <= \(cursor) ORDER BY height DESC
            """).decode((Int64, String).self) {
            stored[h] = hash
        }
        var nodeHashes: [Int64: String] = [Int64(firstNew.number): firstNew.hash]
        var fork: Int64?
        var top = min(cursor, tip)
        let lowest = stored.keys.min() ?? cursor
        search: while top >= lowest {
            let bottom = max(lowest, top - 31)
            let refs = try await node.blockRefs(UInt64(bottom)...UInt64(top))
            for r in refs { nodeHashes[Int64(r.number)] = r.hash }
            for h in stride(from: top, through: bottom, by: -1) where stored[h] != nil && stored[h] == nodeHashes[h] {
                fork = h
                break search
            }
            top = bottom - 1
        }
        let unknownDepth = fork == nil
        let forkHeight = fork ?? (lowest - 1)
        let depth = cursor - forkHeight
        let deep = unknownDepth || depth > Int64(chain.confirmations)
        let oldHash = stored[forkHeight + 1] ?? "?"
        let newHash = nodeHashes[forkHeight + 1] ?? "?"
        let identity = self.identity, logger = self.logger, confirmations = chain.confirmations
        let reason = "block #\(forkHeight + 1) \(oldHash) was replaced by \(newHash) (reorg of \(depth) blocks)"
        let (rewound, hotRewound) = try await database.transaction { c in
            let moved = try await c.query("""
                UPDATE gateway.chain_scanners SET scanned_height = \(forkHeight), updated_at = now()
                WHERE chain = \(name) AND leader = \(identity) AND scanned_height = \(cursor) RETURNING 1
                """, logger: logger)
            var fenced = false
            for try await _ in moved { fenced = true }
            guard fenced else { throw LostLease() }
            try await c.query("DELETE FROM gateway.chain_blocks WHERE chain = \(name) AND height > \(forkHeight)", logger: logger)
            let result = try await Deposits.rewind(chain: name, above: forkHeight, reason: reason, on: c, logger: logger)
            let hot = try await HotReceipts.rewind(chain: name, above: forkHeight, reason: reason, on: c, logger: logger)
            if deep || !result.creditedAffected.isEmpty || !hot.bookedAffected.isEmpty {
                let detail = unknownDepth
                    ? "no common block within the \(stored.count) stored blocks: the reorg is at least \(depth) blocks deep; rescanning from #\(forkHeight + 1)"
                    : "\(depth) blocks replaced above #\(forkHeight), deeper than the \(confirmations) confirmations"
                let depositDetail = result.creditedAffected.isEmpty ? "" : "; credited deposits in replaced blocks: \(result.creditedAffected.map(String.init).joined(separator: ", ")) (left credited: check them on chain)"
                let hotDetail = hot.bookedAffected.isEmpty ? "" : "; booked hot wallet receipts in replaced blocks: \(hot.bookedAffected.map(String.init).joined(separator: ", ")) (left booked: check them on chain)"
                let alertDetail = detail + depositDetail + hotDetail
                try await c.query("""
                    INSERT INTO gateway.reorg_alerts (chain, fork_height, depth, confirmations, old_hash, new_hash, affected_deposits, affected_hot_receipts, detail)
                    VALUES (\(name), \(forkHeight), \(Int32(clamping: depth)), \(Int32(confirmations)), \(oldHash), \(newHash),
                            \(result.creditedAffected)::int8[], \(hot.bookedAffected)::int8[],
                            \(alertDetail))
                    """, logger: logger)
                try await OperatorNotifications.enqueue(
                    "DEEP REORG on \(name): \(detail). Credited deposits in the replaced blocks: "
                        + (result.creditedAffected.isEmpty ? "none" : result.creditedAffected.map(String.init).joined(separator: ", "))
                        + (hot.bookedAffected.isEmpty ? "" : ". Booked hot wallet receipts in the replaced blocks: " + hot.bookedAffected.map(String.init).joined(separator: ", "))
                        + ". See gatewayctl chain alerts.", ref: "chain:\(name)", on: c, logger: logger)
            }
            return (result, hot)
        }
        self.cursor = forkHeight
        self.cursorHash = stored[forkHeight]
        let metadata: Logger.Metadata = [
            "fork": "\(forkHeight)", "depth": "\(depth)", "old_hash": "\(oldHash)", "new_hash": "\(newHash)",
            "orphaned": "\(rewound.orphaned.count)", "credited_affected": "\(rewound.creditedAffected.map(String.init).joined(separator: ","))",
            "hot_receipts_orphaned": "\(hotRewound.orphaned.count)", "hot_receipts_booked_affected": "\(hotRewound.bookedAffected.map(String.init).joined(separator: ","))",
        ]
        let alert = deep || !rewound.creditedAffected.isEmpty || !hotRewound.bookedAffected.isEmpty
        if alert {
            logger.error("DEEP REORG: deeper than the confirmation depth; alert raised (monitor.reorg_alerts); credited deposits left as they are",
                         metadata: metadata)
        } else {
            logger.warning("chain reorganised; rewound and orphaned the replaced blocks' deposits", metadata: metadata)
        }
        return .rewound(fork: forkHeight, depth: depth, orphaned: rewound.orphaned.count, alert: alert)
    }

    /// Takes or renews the lease; returns the holder when it is someone else.
    private func acquire() async throws -> String? {
        let name = chain.name, identity = self.identity, lease = self.lease, logger = self.logger
        let wasLeader = leaderSince != nil
        let result: (taken: Bool, holder: String, previous: String?, height: Int64?, hash: String?) = try await database.transaction { c in
            try await c.query("INSERT INTO gateway.chain_scanners (chain) VALUES (\(name)) ON CONFLICT (chain) DO NOTHING", logger: logger)
            var row: (String?, Bool, Int64?)?
            for try await r in try await c.query("""
                SELECT leader, leader IS NULL OR leader = \(identity) OR lease_until < now(), scanned_height
                FROM gateway.chain_scanners WHERE chain = \(name) FOR UPDATE
                """, logger: logger).decode((String?, Bool, Int64?).self) { row = r }
            guard let (previous, free, height) = row else { throw LostLease() }
            guard free else { return (false, previous ?? "?", previous, height, nil) }
            try await c.query("""
                UPDATE gateway.chain_scanners SET leader = \(identity), lease_until = now() + make_interval(secs => \(Self.seconds(lease))), updated_at = now()
                WHERE chain = \(name)
                """, logger: logger)
            var hash: String?
            if let height {
                for try await h in try await c.query(
                    "SELECT hash FROM gateway.chain_blocks WHERE chain = \(name) AND height = \(height)", logger: logger).decode(String.self) { hash = h }
            }
            return (true, identity, previous, height, hash)
        }
        guard result.taken else {
            if wasLeader { logger.warning("another scanner holds the lease now", metadata: ["leader": "\(result.holder)"]) }
            dropLeadership()
            return result.holder
        }
        renewedAt = ContinuousClock().now
        if !wasLeader || cursor != result.height {
            leaderSince = renewedAt
            cursorHash = result.hash
            if let height = result.height {
                cursor = height
            } else {
                cursor = try await startHeight()
            }
            logger.info("scanner lease taken", metadata: [
                "scanner": "\(identity)", "previous": "\(result.previous ?? "none")", "from_height": "\((cursor ?? 0) + 1)"])
        }
        return nil
    }

    /// First run: `scan_from`, else the node's tip (the next block is the first scanned).
    private func startHeight() async throws -> Int64 {
        let start: Int64
        if let from = chain.scanFrom {
            start = Int64(from) - 1
        } else {
            start = Int64(try await node.tipHeight())
        }
        let name = chain.name, identity = self.identity, logger = self.logger
        try await database.transaction { c in
            let rows = try await c.query("""
                UPDATE gateway.chain_scanners SET scanned_height = \(start), updated_at = now()
                WHERE chain = \(name) AND leader = \(identity) AND scanned_height IS NULL RETURNING 1
                """, logger: logger)
            var ok = false
            for try await _ in rows { ok = true }
            guard ok else { throw LostLease() }
        }
        logger.notice("first scan of this chain starts at block \(start + 1)\(chain.scanFrom == nil ? " (the node's tip; set scan_from to start earlier)" : "")")
        return start
    }

    /// Reads addresses created since the last read, and the chain's coins.
    private func refreshWatchList() async throws {
        let name = chain.name, kind = chain.kind
        var added = 0
        for try await (id, merchant, text) in try await database.query("""
            SELECT id, merchant_id, address FROM gateway.addresses WHERE chain = \(name) AND id > \(lastAddressID) ORDER BY id
            """).decode((Int64, Int64, String).self) {
            lastAddressID = id
            guard let account = try? kind.parseAddress(text) else {
                logger.error("a stored deposit address is not a valid address of this chain; not watched", metadata: ["address.id": "\(id)"])
                continue
            }
            watched[account] = Watched(addressID: id, merchantID: merchant)
            watchedSet.insert(account)
            added += 1
        }
        // A wallet's gas address (sweep top-ups, when configured) is watched like its hot address: what
        // operators send it is a hot wallet receipt of that address.
        for try await (id, merchant, hotText, gasText) in try await database.query("""
            SELECT id, merchant_id, hot_address, coalesce(gas_address, '') FROM gateway.wallets WHERE chain = \(name) AND id > \(lastWalletID) ORDER BY id
            """).decode((Int64, Int64, String, String).self) {
            lastWalletID = id
            for text in [hotText, gasText] where !text.isEmpty {
                guard let account = try? kind.parseAddress(text) else {
                    logger.error("a stored hot or gas address is not a valid address of this chain; not watched", metadata: ["wallet.id": "\(id)"])
                    continue
                }
                hotWallets[account] = WatchedHot(walletID: id, merchantID: merchant, address: text)
                watchedSet.insert(account)
                added += 1
            }
        }
        if added > 0 {
            logger.debug("watching new addresses", metadata: ["added": "\(added)", "total": "\(watched.count)", "hot_wallets": "\(hotWallets.count)"])
        }
        var tokens: [AccountID: Int32] = [:]
        var native: Int32?
        for try await (id, coinType, isToken) in try await database.query(
            "SELECT id, coin_type, is_token FROM gateway.coins WHERE chain = \(name)").decode((Int32, String, Bool).self) {
            if !isToken {
                native = id
            } else if let contract = try? kind.parseAddress(coinType) {
                tokens[contract] = id
            } else {
                logger.error("a token's coin type is not a contract address of this chain; not watched", metadata: ["coin.id": "\(id)"])
            }
        }
        tokenCoins = tokens
        nativeCoin = native
    }

    private func dropLeadership() {
        leaderSince = nil
        renewedAt = nil
        cursor = nil
        cursorHash = nil
    }

    /// Bounded like a step: a call that never ends (seen once in the failover chaos: a statement on a connection lost in
    /// a switchover) must not stop the chain's scanning for good.
    private func recordError(_ text: String) async {
        let name = chain.name, identity = self.identity, database = self.database
        do {
            try await withDeadline(min(stepLimit, .seconds(10))) {
                try await database.execute("""
                    UPDATE gateway.chain_scanners SET last_error = \(String(text.prefix(500))), last_error_at = now()
                    WHERE chain = \(name) AND (leader = \(identity) OR leader IS NULL OR lease_until < now())
                    """)
            }
        } catch is DeadlineExceeded {
            logger.warning("recording the scanner's error did not end; going on without it")
        } catch {}
    }

    private func releaseLease() async {
        guard leaderSince != nil else { return }
        let name = chain.name, identity = self.identity, database = self.database
        _ = try? await withDeadline(min(stepLimit, .seconds(10))) {
            try await database.execute(
                "UPDATE gateway.chain_scanners SET lease_until = now(), updated_at = now() WHERE chain = \(name) AND leader = \(identity)")
        }
        dropLeadership()
    }

    static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }
}
