import BigInt
import ChainKit
import Foundation
import Synchronization

/// A JSON-RPC error object `{code, message, data}` as geth words them.
struct RPCError: Error, Sendable {
    var code: Int
    var message: String
    var data: JSONValue?

    init(_ code: Int, _ message: String, data: JSONValue? = nil) {
        self.code = code
        self.message = message
        self.data = data
    }

    static func invalidParams(_ message: String) -> RPCError { RPCError(-32602, message) }
    static func server(_ message: String) -> RPCError { RPCError(-32000, message) }
}

/// A log as stored in a receipt.
struct EVMLogRecord: Sendable {
    var address: AccountID
    var topics: [Data]
    var data: Data
}

/// A mined transaction's receipt.
struct EVMReceiptRecord: Sendable {
    var status: Bool
    var gasUsed: UInt64
    var cumulativeGasUsed: UInt64
    var effectiveGasPrice: BigUInt
    var logs: [EVMLogRecord]
    /// Block-wide index of the first log.
    var firstLogIndex: Int
}

/// A transaction as accepted (raw bytes, decoded fields, sender).
struct EVMTxRecord: Sendable {
    var signed: SignedEVMTransaction
    var hash: Data
    var from: AccountID

    var transaction: EVMTransaction { signed.transaction }

    var typeHex: String {
        if case .eip1559 = transaction { return "0x2" }
        return "0x0"
    }
    var to: AccountID? { transaction.to.map(AccountID.init) }

    /// The most per gas the sender agreed to pay.
    var feeCap: BigUInt {
        switch transaction {
        case .legacy(let tx): return tx.gasPrice
        case .eip1559(let tx): return tx.maxFeePerGas
        }
    }

    var tipCap: BigUInt {
        switch transaction {
        case .legacy(let tx): return tx.gasPrice
        case .eip1559(let tx): return tx.maxPriorityFeePerGas
        }
    }

    /// The most it can spend: gas limit × fee cap + value.
    var maxCost: BigUInt { BigUInt(transaction.gasLimit) * feeCap + transaction.value }

    func effectiveGasPrice(baseFee: BigUInt) -> BigUInt {
        switch transaction {
        case .legacy(let tx): return tx.gasPrice
        case .eip1559(let tx): return min(tx.maxFeePerGas, baseFee + tx.maxPriorityFeePerGas)
        }
    }
}

/// The transaction pool, indexed so that admitting a transaction costs the same with 10 or 10,000 pending
/// (by hash; by sender and nonce; each sender's committed cost), in arrival order.
struct EVMPool: Sendable {
    private(set) var records: [EVMTxRecord] = []
    private var byHash: [Data: Int] = [:]
    private var bySender: [AccountID: [UInt64: Int]] = [:]
    private var committed: [AccountID: BigUInt] = [:]

    init(_ records: [EVMTxRecord] = []) {
        for r in records { append(r) }
    }

    var count: Int { records.count }
    var isEmpty: Bool { records.isEmpty }

    func record(hash: Data) -> EVMTxRecord? { byHash[hash].map { records[$0] } }
    func index(sender: AccountID, nonce: UInt64) -> Int? { bySender[sender]?[nonce] }
    func count(from sender: AccountID) -> Int { bySender[sender]?.count ?? 0 }
    /// What the sender's pending transactions may spend (gas limit × fee cap + value), less the one at `nonce`.
    func committed(by sender: AccountID, except nonce: UInt64) -> BigUInt {
        let total = committed[sender] ?? 0
        guard let i = index(sender: sender, nonce: nonce) else { return total }
        return total - records[i].maxCost
    }

    mutating func append(_ r: EVMTxRecord) {
        if let i = index(sender: r.from, nonce: r.transaction.nonce) { return replace(at: i, with: r) }
        byHash[r.hash] = records.count
        bySender[r.from, default: [:]][r.transaction.nonce] = records.count
        committed[r.from, default: 0] += r.maxCost
        records.append(r)
    }

    /// Puts `r` in place of the record at `i` (same sender and nonce).
    mutating func replace(at i: Int, with r: EVMTxRecord) {
        let old = records[i]
        precondition(old.from == r.from && old.transaction.nonce == r.transaction.nonce, "a replacement keeps sender and nonce")
        byHash[old.hash] = nil
        byHash[r.hash] = i
        committed[r.from] = (committed[r.from] ?? 0) - old.maxCost + r.maxCost
        records[i] = r
    }

    mutating func removeAll(where drop: (EVMTxRecord) -> Bool = { _ in true }) {
        self = EVMPool(records.filter { !drop($0) })
    }
}

struct EVMAccount: Sendable, Equatable {
    var balance: BigUInt = 0
    var nonce: UInt64 = 0
}

/// Old values overwritten by a block, to undo it on a reorg.
enum EVMUndo: Sendable {
    case account(AccountID, EVMAccount?)
    case token(AccountID, BigUInt?)
}

struct EVMBlockRecord: Sendable {
    var number: UInt64
    var hash: Data
    var parentHash: Data
    var timestamp: UInt64
    var baseFee: BigUInt
    var extraData: Data
    var transactions: [EVMTxRecord]
    var receipts: [EVMReceiptRecord]
    var gasUsed: UInt64
    var logsBloom: Data
    var undo: [EVMUndo]
    var transactionsRoot = Data(count: 32)
    var stateRoot = Data(count: 32)
    /// `eth_getBlockByNumber` results (full transactions / hashes only) and every log as `eth_getLogs` prints it,
    /// encoded once when the block is sealed: a block never changes (a reorg makes new records).
    var encodedFull: [UInt8] = []
    var encodedHashes: [UInt8] = []
    var encodedLogs: [(address: AccountID, topics: [Data], json: [UInt8])] = []
}

struct EVMState: Sendable {
    var accounts: [AccountID: EVMAccount] = [:]
    var token: [AccountID: BigUInt] = [:]
    var tokenSupply: BigUInt = 0
    var blocks: [EVMBlockRecord] = []
    var pending = EVMPool()
    /// Mined transactions: hash → (block number, index).
    var located: [Data: (block: Int, index: Int)] = [:]
    var forks: UInt64 = 0
    var maxLogRange: UInt64?
    var maxLogResults: Int
    var undo: [EVMUndo] = []
    /// The next this many accepted transactions are answered as accepted and silently discarded (a lossy pool).
    var dropNext = 0
    /// The next this many token transfers executed fail (status 0, gas spent).
    var failNext = 0
    /// Each accepted transaction vanishes at this probability.
    var dropRate = 0.0

    init(maxLogRange: UInt64?, maxLogResults: Int) {
        self.maxLogRange = maxLogRange
        self.maxLogResults = maxLogResults
    }

    mutating func setAccount(_ id: AccountID, _ account: EVMAccount) {
        undo.append(.account(id, accounts[id]))
        accounts[id] = account
    }

    mutating func setToken(_ id: AccountID, _ amount: BigUInt) {
        undo.append(.token(id, token[id]))
        token[id] = amount
    }

    var head: EVMBlockRecord { blocks[blocks.count - 1] }
}

/// The EVM half of devchain: accounts with ETH balances and nonces, a USDT ERC20 (6 decimals) emitting standard
/// `Transfer` logs, blocks with receipts, a transaction pool, and reorgs.
public final class EVMDevChain: Sendable {
    /// `eth_chainId`.
    public let chainID: UInt64
    /// The USDT contract.
    public let usdt: AccountID
    /// Pays `fund` control calls.
    public let faucet: AccountID
    /// Holds the USDT supply; sends `usdt` control transfers.
    public let treasury: AccountID
    /// Pre-funded development accounts (HD indices 10 …).
    public let devAccounts: [AccountID]
    let options: DevChainOptions
    let keys: DevChainKeys
    let clock: DevChainClock
    let faucetKey: Secp256k1.PrivateKey
    let treasuryKey: Secp256k1.PrivateKey
    let state: Mutex<EVMState>

    /// Gas of an ERC20 transfer after the intrinsic cost: recipient already holding tokens, or a new storage slot.
    static let tokenTransferGasExisting: UInt64 = 19_700
    static let tokenTransferGasNewHolder: UInt64 = 41_600
    static let tokenRevertGas: UInt64 = 2_800
    static let usdtDecimals = 6

    init(options: DevChainOptions, keys: DevChainKeys, clock: DevChainClock) {
        self.options = options
        self.keys = keys
        self.clock = clock
        chainID = options.evmChainID
        faucetKey = keys.evmKey(DevChainKeys.faucetIndex)
        treasuryKey = keys.evmKey(DevChainKeys.treasuryIndex)
        faucet = AccountID(EVMAddress(publicKey: faucetKey.publicKey))
        treasury = AccountID(EVMAddress(publicKey: treasuryKey.publicKey))
        // CREATE address of the treasury's first transaction: keccak(rlp([sender, 0]))[12:].
        usdt = AccountID(bytes: Keccak256.hash(RLP.encode(.list([.bytes(treasury.bytes), .uint(UInt64(0))]))).suffix(20))!
        devAccounts = (0..<UInt32(max(0, options.devAccounts))).map {
            AccountID(EVMAddress(publicKey: keys.evmKey(DevChainKeys.firstDevAccountIndex + $0).publicKey))
        }
        var s = EVMState(maxLogRange: options.evmMaxLogRange, maxLogResults: options.evmMaxLogResults)
        let ether = BigUInt(10).power(18)
        let supply = BigUInt(10).power(18)  // 10^12 USDT
        s.accounts[faucet] = EVMAccount(balance: ether * BigUInt(10).power(12), nonce: 0)
        s.accounts[treasury] = EVMAccount(balance: ether * 1_000_000, nonce: 1)
        s.token[treasury] = supply
        for account in devAccounts {
            s.accounts[account] = EVMAccount(balance: ether * 1000, nonce: 0)
            s.token[account] = 1_000_000 * BigUInt(10).power(Self.usdtDecimals)
        }
        s.tokenSupply = supply + BigUInt(devAccounts.count) * 1_000_000 * BigUInt(10).power(Self.usdtDecimals)
        let genesis = EVMBlockRecord(
            number: 0,
            hash: Data(),
            parentHash: Data(count: 32),
            timestamp: UInt64(options.genesisTimeMillis / 1000),
            baseFee: options.evmBaseFee,
            extraData: Data("devchain".utf8),
            transactions: [],
            receipts: [],
            gasUsed: 0,
            logsBloom: Data(count: 256),
            undo: []
        )
        s.blocks = [Self.sealed(genesis, seed: keys.derivedBytes("evm-genesis"))]
        state = Mutex(s)
    }

    static func sealed(_ block: EVMBlockRecord, seed: Data) -> EVMBlockRecord {
        var b = block
        var items: [RLP.Item] = [.bytes(b.parentHash), .uint(b.number), .uint(b.timestamp), .bytes(b.extraData), .bytes(seed), .uint(b.gasUsed)]
        items.append(.list(b.transactions.map { .bytes($0.hash) }))
        b.hash = Keccak256.hash(RLP.encode(.list(items)))
        b.transactionsRoot = Keccak256.hash(b.transactions.reduce(Data()) { $0 + $1.hash })
        b.stateRoot = Keccak256.hash(b.hash + Data("state".utf8))
        b.encodedFull = EVMDevChain.blockJSON(b, full: true).encoded()
        b.encodedHashes = EVMDevChain.blockJSON(b, full: false).encoded()
        for (txIndex, receipt) in b.receipts.enumerated() {
            for (offset, log) in receipt.logs.enumerated() {
                let json = EVMDevChain.logJSON(log, block: b, txIndex: txIndex, logIndex: receipt.firstLogIndex + offset).encoded()
                b.encodedLogs.append((log.address, log.topics, json))
            }
        }
        return b
    }

    // MARK: Reading

    /// The latest block number.
    public var height: UInt64 { state.withLock { $0.head.number } }
    /// The head block's timestamp, seconds since 1970.
    public var headTimestamp: UInt64 { state.withLock { $0.head.timestamp } }

    /// The hash of block `number` (`0x…`), nil above the head.
    public func blockHash(_ number: UInt64) -> String? {
        state.withLock { s in number < UInt64(s.blocks.count) ? EthHex.data(s.blocks[Int(number)].hash) : nil }
    }

    /// ETH balance in wei.
    public func balance(of account: AccountID) -> BigUInt { state.withLock { $0.accounts[account]?.balance ?? 0 } }

    /// USDT balance in base units.
    public func usdtBalance(of account: AccountID) -> BigUInt { state.withLock { $0.token[account] ?? 0 } }

    /// Sets the `eth_getLogs` limits at run time (nil range = unlimited).
    public func setLogLimits(maxRange: UInt64?, maxResults: Int?) {
        state.withLock { s in
            s.maxLogRange = maxRange
            if let maxResults { s.maxLogResults = maxResults }
        }
    }

    // MARK: Control

    /// Sends `amount` wei from the faucet to `to` (a real signed transaction); mined at once when automining.
    @discardableResult
    public func fund(_ to: AccountID, amount: BigUInt) throws(DevChainError) -> String {
        try submitSystem(key: faucetKey, from: faucet, calls: [(to, amount, Data())])[0]
    }

    /// Sends USDT from the treasury to each recipient (one signed `transfer` each), all in one block when automining.
    @discardableResult
    public func transferUSDT(_ transfers: [(to: AccountID, amount: BigUInt)]) throws(DevChainError) -> [String] {
        try submitSystem(
            key: treasuryKey,
            from: treasury,
            calls: transfers.map { (usdt, 0, ERC20.transferCalldata(to: $0.to.evmAddress, amount: $0.amount)) }
        )
    }

    private func submitSystem(
        key: Secp256k1.PrivateKey,
        from: AccountID,
        calls: [(to: AccountID, value: BigUInt, data: Data)]
    ) throws(DevChainError) -> [String] {
        let result: Result<[String], DevChainError> = state.withLock { s in
            var nonce = (s.accounts[from]?.nonce ?? 0) + UInt64(s.pending.count(from: from))
            var hashes: [String] = []
            for call in calls {
                let gas: UInt64 = call.data.isEmpty ? 21_000 : 100_000
                let tx = EVMTransaction.eip1559(
                    EVMEIP1559Transaction(
                        chainID: chainID,
                        nonce: nonce,
                        maxPriorityFeePerGas: options.evmPriorityFee,
                        maxFeePerGas: options.evmBaseFee * 2 + options.evmPriorityFee,
                        gasLimit: gas,
                        to: call.to.evmAddress,
                        value: call.value,
                        data: call.data
                    )
                )
                let signed = try! tx.sign(with: key)
                do throws(RPCError) {
                    hashes.append(EthHex.data(try admit(signed, sender: from, into: &s)))
                } catch {
                    return .failure(DevChainError(error.message))
                }
                nonce += 1
            }
            if options.automine { mineLocked(&s, .wall) }
            return .success(hashes)
        }
        return try result.get()
    }

    /// Mines `count` blocks (the first takes the pending transactions); returns the new height. `.slot` (the default)
    /// puts each block a 12 s slot after its parent, so mining moves chain time as on the real chain; `.wall` stamps
    /// the chain's clock.
    @discardableResult
    public func mine(_ count: Int = 1, clock mode: BlockClock = .slot) -> UInt64 {
        state.withLock { s in
            for _ in 0..<max(1, count) { mineLocked(&s, mode) }
            return s.head.number
        }
    }

    /// Replaces the last `depth` blocks with blocks of the same heights and new hashes, re-including their
    /// transactions unless `dropTransactions` (then their effects are undone and they are gone).
    /// Returns (height, old hash, new hash) per replaced block.
    public func reorg(depth: Int, dropTransactions: Bool) throws(DevChainError) -> [(number: UInt64, oldHash: String, newHash: String)] {
        let result: Result<[(UInt64, String, String)], DevChainError> = state.withLock { s in
            guard depth >= 1, depth < s.blocks.count else {
                return .failure(DevChainError("depth must be between 1 and the height (\(s.blocks.count - 1))"))
            }
            var removed: [EVMBlockRecord] = []
            for _ in 0..<depth {
                let block = s.blocks.removeLast()
                for entry in block.undo.reversed() {
                    switch entry {
                    case .account(let id, let old): s.accounts[id] = old
                    case .token(let id, let old): s.token[id] = old
                    }
                }
                for tx in block.transactions { s.located[tx.hash] = nil }
                removed.insert(block, at: 0)
            }
            s.forks += 1
            let pending = s.pending
            var replaced: [(UInt64, String, String)] = []
            for old in removed {
                s.pending = EVMPool(dropTransactions ? [] : old.transactions)
                mineLocked(&s, .slot, timestamp: old.timestamp)
                replaced.append((old.number, EthHex.data(old.hash), EthHex.data(s.head.hash)))
            }
            s.pending = pending
            return .success(replaced)
        }
        return try result.get().map { (number: $0.0, oldHash: $0.1, newHash: $0.2) }
    }

    // MARK: Transactions

    /// `eth_sendRawTransaction`: validates like geth's pool (chain id, signature, nonce, fees, balance) and returns the hash.
    func submitRaw(_ raw: Data) throws(RPCError) -> Data {
        let signed: SignedEVMTransaction
        do {
            signed = try SignedEVMTransaction(raw: raw)
        } catch {
            throw .server("rlp: \(error)")
        }
        guard let txChain = signed.transaction.chainID else { throw .server("only replay-protected (EIP-155) transactions allowed over RPC") }
        guard txChain == chainID else { throw .server("invalid chain id for signer: have \(txChain) want \(chainID)") }
        let sender: AccountID
        do {
            sender = AccountID(try signed.recoverSender())
        } catch {
            throw .server("invalid sender")
        }
        let result: Result<Data, RPCError> = state.withLock { s in
            do throws(RPCError) {
                let hash = try admit(signed, sender: sender, into: &s)
                if options.automine { mineLocked(&s, .wall) }
                return .success(hash)
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    /// How far ahead of an account's nonce a transaction may be queued.
    static let maxQueuedGap: UInt64 = 4096

    /// Evicts pending transactions: the one with `hash`, or all of them; returns how many.
    public func drop(hash: String?) -> Int {
        state.withLock { s in
            let before = s.pending.count
            if let hash {
                s.pending.removeAll { EthHex.data($0.hash) == hash.lowercased() }
            } else {
                s.pending.removeAll()
            }
            return before - s.pending.count
        }
    }

    /// Makes the next `count` accepted transactions vanish, or the next `count` token transfers fail.
    public func injectPoolFaults(dropNext: Int? = nil, failNext: Int? = nil, dropRate: Double? = nil) {
        state.withLock { s in
            if let dropNext { s.dropNext = dropNext }
            if let failNext { s.failNext = failNext }
            if let dropRate { s.dropRate = dropRate }
        }
    }

    /// Pending transactions in the pool.
    public var pendingCount: Int { state.withLock { $0.pending.count } }

    static func intrinsicGas(_ data: Data) -> UInt64 {
        21_000 + data.reduce(0) { $0 + ($1 == 0 ? 4 : 16) }
    }

    private func admit(_ signed: SignedEVMTransaction, sender: AccountID, into s: inout EVMState) throws(RPCError) -> Data {
        let record = EVMTxRecord(signed: signed, hash: signed.hash, from: sender)
        let address = ChainKind.evm.format(sender)
        // Like geth's pool: "already known" only while pending; a mined transaction fails the nonce check below.
        if s.pending.record(hash: record.hash) != nil { throw .server("already known") }
        let account = s.accounts[sender] ?? EVMAccount()
        let nonce = signed.transaction.nonce
        if nonce < account.nonce { throw .server("nonce too low: address \(address), tx: \(nonce) state: \(account.nonce)") }
        let intrinsic = Self.intrinsicGas(signed.transaction.data)
        guard signed.transaction.gasLimit >= intrinsic else {
            throw .server("intrinsic gas too low: gas \(signed.transaction.gasLimit), minimum needed \(intrinsic)")
        }
        guard signed.transaction.gasLimit <= 30_000_000 else { throw .server("exceeds block gas limit") }
        if case .eip1559(let tx) = signed.transaction, tx.maxPriorityFeePerGas > tx.maxFeePerGas {
            throw .server(
                "max priority fee per gas higher than max fee per gas: address \(address), maxPriorityFeePerGas: \(tx.maxPriorityFeePerGas), maxFeePerGas: \(tx.maxFeePerGas)"
            )
        }
        let baseFee = s.head.baseFee
        guard record.feeCap >= baseFee else {
            throw .server("max fee per gas less than block base fee: address \(address), maxFeePerGas: \(record.feeCap), baseFee: \(baseFee)")
        }
        var replacing: Int?
        if let i = s.pending.index(sender: sender, nonce: nonce) {
            let old = s.pending.records[i]
            // geth's pool: a replacement must raise both caps by at least 10 %.
            guard record.feeCap * 10 >= old.feeCap * 11, record.tipCap * 10 >= old.tipCap * 11 else {
                throw .server("replacement transaction underpriced")
            }
            replacing = i
        } else if nonce > account.nonce + Self.maxQueuedGap {
            // geth queues future nonces (up to its account slots) until the gap fills.
            throw .server("nonce too high: address \(address), tx: \(nonce) state: \(account.nonce)")
        }
        let cost = record.maxCost
        let committed = s.pending.committed(by: sender, except: nonce)
        guard account.balance >= cost + committed else {
            throw .server("insufficient funds for gas * price + value: address \(address) have \(account.balance) want \(cost + committed)")
        }
        if s.dropNext > 0 || (s.dropRate > 0 && Double.random(in: 0..<1) < s.dropRate) {
            s.dropNext = max(0, s.dropNext - 1)
            return record.hash  // "accepted", then lost (a pool that evicted it)
        }
        if let replacing { s.pending.replace(at: replacing, with: record) } else { s.pending.append(record) }
        return record.hash
    }

    /// Called with the lock held: turns the pool into the next block.
    func mineLocked(_ s: inout EVMState, _ mode: BlockClock, timestamp: UInt64? = nil) {
        let parent = s.head
        let number = parent.number + 1
        let baseFee = options.evmBaseFee
        s.undo = []
        var included: [EVMTxRecord] = []
        var receipts: [EVMReceiptRecord] = []
        var gasUsedTotal: UInt64 = 0
        var logIndex = 0
        var bloom = [UInt8](repeating: 0, count: 256)
        // Per sender in nonce order (senders in order of arrival); a future nonce waits for its gap to fill.
        var order: [AccountID: Int] = [:]
        for tx in s.pending.records where order[tx.from] == nil { order[tx.from] = order.count }
        let pool = s.pending.records.enumerated().sorted {
            (order[$0.element.from]!, $0.element.transaction.nonce, $0.offset) < (order[$1.element.from]!, $1.element.transaction.nonce, $1.offset)
        }.map(\.element)
        s.pending = EVMPool()
        for tx in pool {
            guard var sender = s.accounts[tx.from] else { continue }
            guard sender.nonce == tx.transaction.nonce else {
                if tx.transaction.nonce > sender.nonce { s.pending.append(tx) }  // queued behind a gap
                continue
            }
            let price = tx.effectiveGasPrice(baseFee: baseFee)
            let gasLimit = tx.transaction.gasLimit
            guard sender.balance >= BigUInt(gasLimit) * price + tx.transaction.value else { continue }
            let intrinsic = Self.intrinsicGas(tx.transaction.data)
            var gasUsed = intrinsic
            var success = true
            var logs: [EVMLogRecord] = []
            var tokenMove: (from: AccountID, to: AccountID, amount: BigUInt)?
            if tx.to == usdt {
                if tx.transaction.value == 0, let call = ERC20.decodeTransfer(tx.transaction.data), tx.transaction.data.count == 68 {
                    let to = AccountID(call.to)
                    let fromBalance = s.token[tx.from] ?? 0
                    if s.failNext > 0 {
                        s.failNext -= 1
                        gasUsed += Self.tokenRevertGas
                        success = false
                    } else if fromBalance >= call.amount {
                        gasUsed += (s.token[to] ?? 0) == 0 && to != tx.from ? Self.tokenTransferGasNewHolder : Self.tokenTransferGasExisting
                        tokenMove = (tx.from, to, call.amount)
                    } else {
                        gasUsed += Self.tokenRevertGas
                        success = false
                    }
                } else {
                    gasUsed += Self.tokenRevertGas
                    success = false
                }
            } else if tx.to == nil {
                gasUsed = gasLimit
                success = false
            }
            if gasUsed > gasLimit {
                gasUsed = gasLimit
                success = false
                tokenMove = nil
            }
            sender.balance -= BigUInt(gasUsed) * price
            sender.nonce += 1
            if success { sender.balance -= tx.transaction.value }
            s.setAccount(tx.from, sender)
            if success, let to = tx.to, tx.transaction.value > 0 {
                var recipient = s.accounts[to] ?? EVMAccount()
                recipient.balance += tx.transaction.value
                s.setAccount(to, recipient)
            }
            if success, let move = tokenMove {
                s.setToken(move.from, (s.token[move.from] ?? 0) - move.amount)
                s.setToken(move.to, (s.token[move.to] ?? 0) + move.amount)
                let log = EVMLogRecord(
                    address: usdt,
                    topics: [ERC20.transferEventTopic, ABI.word(move.from.evmAddress), ABI.word(move.to.evmAddress)],
                    data: ABI.word(move.amount)
                )
                Self.addToBloom(&bloom, log)
                logs.append(log)
            }
            gasUsedTotal += gasUsed
            receipts.append(
                EVMReceiptRecord(
                    status: success,
                    gasUsed: gasUsed,
                    cumulativeGasUsed: gasUsedTotal,
                    effectiveGasPrice: price,
                    logs: logs,
                    firstLogIndex: logIndex
                )
            )
            logIndex += logs.count
            s.located[tx.hash] = (Int(number), included.count)
            included.append(tx)
        }
        var extra = Data("devchain".utf8)
        if s.forks > 0 { extra += Data("/fork\(s.forks)".utf8) }
        let block = EVMBlockRecord(
            number: number,
            hash: Data(),
            parentHash: parent.hash,
            timestamp: timestamp
                ?? UInt64(clock.next(after: Int64(parent.timestamp) * 1000, slotMillis: 12_000, mode, minimumStep: 1000) / 1000),
            baseFee: baseFee,
            extraData: extra,
            transactions: included,
            receipts: receipts,
            gasUsed: gasUsedTotal,
            logsBloom: Data(bloom),
            undo: s.undo
        )
        s.undo = []
        s.blocks.append(Self.sealed(block, seed: keys.derivedBytes("evm-blocks")))
    }

    static func addToBloom(_ bloom: inout [UInt8], _ log: EVMLogRecord) {
        func add(_ bytes: Data) {
            let h = Keccak256.hash(bytes)
            for i in [0, 2, 4] {
                let bit = (Int(h[h.startIndex + i]) << 8 | Int(h[h.startIndex + i + 1])) & 2047
                bloom[255 - bit / 8] |= UInt8(1 << (bit % 8))
            }
        }
        add(log.address.bytes)
        for topic in log.topics { add(topic) }
    }
}
