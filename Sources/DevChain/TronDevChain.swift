import BigInt
import ChainKit
import Foundation
import Synchronization

struct TronAccountRecord: Sendable, Equatable {
    var balance: Int64
    var createTime: Int64
    var freeNetUsed: Int64 = 0
    /// The day (block time / 24 h) `freeNetUsed` counts for.
    var freeNetDay: Int64 = 0
}

enum TronUndo: Sendable {
    case account(AccountID, TronAccountRecord?)
    case token(AccountID, BigUInt?)
}

struct TronLogRecord: Sendable {
    var address: AccountID
    var topics: [Data]
    var data: Data
}

/// What executing a transaction did (becomes the block's `ret` and the `TransactionInfo`).
struct TronTxResult: Sendable {
    var contractRet: String = "SUCCESS"
    var fee: Int64 = 0
    var energyFee: Int64 = 0
    var energyUsageTotal: Int64 = 0
    var netUsage: Int64 = 0
    var netFee: Int64 = 0
    /// `receipt.result`: set for VM transactions only.
    var receiptResult: String?
    var failed = false
    var resMessage: String?
    var logs: [TronLogRecord] = []
    var contractResult = Data()
    var contractAddress: AccountID?
}

struct TronTxRecord: Sendable {
    var tx: TronTransaction
    var id: Data
    var result: TronTxResult
}

struct TronBlockRecord: Sendable {
    var number: Int64
    var id: Data
    var parentHash: Data
    var timestamp: Int64
    var witness: TronAddress
    var witnessSignature: Data
    var txTrieRoot: Data
    var transactions: [TronTxRecord]
    var undo: [TronUndo]
    /// The block and its transaction infos as java-tron prints them with visible=false, encoded once at sealing.
    var encodedBlock: [UInt8] = []
    var encodedInfos: [UInt8] = []
}

struct TronState: Sendable {
    var accounts: [AccountID: TronAccountRecord] = [:]
    var token: [AccountID: BigUInt] = [:]
    var tokenSupply: BigUInt = 0
    var blocks: [TronBlockRecord] = []
    var pending: [TronTransaction] = []
    var pendingIDs: Set<Data> = []
    var located: [Data: (block: Int, index: Int)] = [:]
    var forks: UInt32 = 0
    var undo: [TronUndo] = []
    /// The next this many accepted transactions are answered as accepted and silently discarded.
    var dropNext = 0
    /// The next this many TRC20 transfers executed fail (REVERT, energy spent).
    var failNext = 0
    /// Each accepted transaction vanishes at this probability.
    var dropRate = 0.0

    var head: TronBlockRecord { blocks[blocks.count - 1] }

    mutating func setAccount(_ id: AccountID, _ account: TronAccountRecord) {
        undo.append(.account(id, accounts[id]))
        accounts[id] = account
    }

    mutating func setToken(_ id: AccountID, _ amount: BigUInt) {
        undo.append(.token(id, token[id]))
        token[id] = amount
    }
}

/// A broadcast verdict: `Return.response_code` name and message (tron-http-api.md §6.3).
struct TronReturn: Sendable, Equatable {
    var code: String
    var message: String

    static let success = TronReturn(code: "SUCCESS", message: "")
    var ok: Bool { code == "SUCCESS" }
}

/// The TRON half of devchain: accounts with TRX balances and activation, a USDT TRC20 (6 decimals) with real-format
/// `Transfer` logs, energy and bandwidth charged as burned TRX, blocks with java-tron's ids, TaPoS and expiration checks.
public final class TronDevChain: Sendable {
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
    let state: Mutex<TronState>

    static let usdtDecimals = 6
    /// Energy of a USDT transfer (with the dynamic-energy penalty mainnet shows, tron-http-api.md §5.4).
    static let transferEnergyExisting: Int64 = 64_285
    static let transferEnergyNewHolder: Int64 = 129_285
    static let revertEnergy: Int64 = 1_046
    static let freeBandwidthPerDay: Int64 = 600
    static let createAccountFee: Int64 = 1_000_000
    static let createAccountBandwidthFee: Int64 = 100_000
    static let maxFeeLimit: Int64 = 15_000_000_000
    static let blockVersion: Int64 = 30

    init(options: DevChainOptions, keys: DevChainKeys, clock: DevChainClock) {
        self.options = options
        self.keys = keys
        self.clock = clock
        faucetKey = keys.tronKey(DevChainKeys.faucetIndex)
        treasuryKey = keys.tronKey(DevChainKeys.treasuryIndex)
        faucet = AccountID(TronAddress(publicKey: faucetKey.publicKey))
        treasury = AccountID(TronAddress(publicKey: treasuryKey.publicKey))
        usdt = AccountID(bytes: keys.derivedBytes("tron-usdt"))!
        devAccounts = (0..<UInt32(max(0, options.devAccounts))).map {
            AccountID(TronAddress(publicKey: keys.tronKey(DevChainKeys.firstDevAccountIndex + $0).publicKey))
        }
        var s = TronState()
        let genesisTime = options.genesisTimeMillis
        let trx: Int64 = 1_000_000
        s.accounts[faucet] = TronAccountRecord(balance: 100_000_000_000 * trx, createTime: genesisTime)
        s.accounts[treasury] = TronAccountRecord(balance: 1_000_000_000 * trx, createTime: genesisTime)
        let supply = BigUInt(10).power(18)
        s.token[treasury] = supply
        let devUSDT = 1_000_000 * BigUInt(10).power(Self.usdtDecimals)
        for account in devAccounts {
            s.accounts[account] = TronAccountRecord(balance: 100_000 * trx, createTime: genesisTime)
            s.token[account] = devUSDT
        }
        s.tokenSupply = supply + BigUInt(devAccounts.count) * devUSDT
        state = Mutex(s)
        state.withLock { s in
            s.blocks = [makeBlock(number: 0, parentHash: Data(count: 32), timestamp: genesisTime, transactions: [], witnessIndex: 0, undo: [])]
        }
    }

    func makeBlock(
        number: Int64,
        parentHash: Data,
        timestamp: Int64,
        transactions: [TronTxRecord],
        witnessIndex: UInt32,
        undo: [TronUndo]
    ) -> TronBlockRecord {
        let witnessKey = keys.witnessKey(witnessIndex)
        let witness = TronAddress(publicKey: witnessKey.publicKey)
        let root = TronBlockHeader.txTrieRoot(leaves: transactions.map { $0.tx.merkleLeaf(contractRet: $0.result.contractRet) })
        let header = TronBlockHeader(
            number: number,
            timestamp: timestamp,
            txTrieRoot: root,
            parentHash: parentHash,
            witness: witness,
            version: Int32(Self.blockVersion)
        )
        let signature = (try? witnessKey.sign(hash: header.rawHash).rsv) ?? Data()
        var record = TronBlockRecord(
            number: number,
            id: header.blockID,
            parentHash: parentHash,
            timestamp: timestamp,
            witness: witness,
            witnessSignature: signature,
            txTrieRoot: root,
            transactions: transactions,
            undo: undo
        )
        record.encodedBlock = blockJSON(record, visible: false).encoded()
        record.encodedInfos = JSONValue.array(transactions.map { infoJSON($0, block: record, visible: false) }).encoded()
        return record
    }

    // MARK: Reading

    /// The latest block number.
    public var height: UInt64 { state.withLock { UInt64($0.head.number) } }

    /// The `blockID` of block `number` (64 hex digits), nil above the head.
    public func blockID(_ number: UInt64) -> String? {
        state.withLock { s in number < UInt64(s.blocks.count) ? Hex.encode(s.blocks[Int(number)].id) : nil }
    }

    /// The head block as a reference for new transactions, and its timestamp.
    public func headReference() -> (reference: TronReferenceBlock, timestampMillis: Int64) {
        state.withLock { s in (try! TronReferenceBlock(blockID: Hex.encode(s.head.id)), s.head.timestamp) }
    }

    /// TRX balance in sun; nil for an account that does not exist (never activated).
    public func balance(of account: AccountID) -> Int64? { state.withLock { $0.accounts[account]?.balance } }

    /// USDT balance in base units.
    public func usdtBalance(of account: AccountID) -> BigUInt { state.withLock { $0.token[account] ?? 0 } }

    // MARK: Control

    /// Sends `amount` sun from the faucet (a signed TransferContract; activates a new account).
    @discardableResult
    public func fund(_ to: AccountID, amount: Int64) throws(DevChainError) -> String {
        try submitSystem(key: faucetKey, contracts: [.transfer(TronTransferContract(owner: faucet.tronAddress, to: to.tronAddress, amount: amount))])[
            0
        ]
    }

    /// Sends USDT from the treasury (one signed TRC20 `transfer` each), in one block when automining.
    @discardableResult
    public func transferUSDT(_ transfers: [(to: AccountID, amount: BigUInt)]) throws(DevChainError) -> [String] {
        try submitSystem(
            key: treasuryKey,
            contracts: transfers.map {
                .triggerSmartContract(
                    TronTriggerSmartContract(
                        owner: treasury.tronAddress,
                        contract: usdt.tronAddress,
                        data: ERC20.transferCalldata(to: $0.to.evmAddress, amount: $0.amount)
                    )
                )
            },
            feeLimit: 1_000_000_000
        )
    }

    private func submitSystem(key: Secp256k1.PrivateKey, contracts: [TronContract], feeLimit: Int64 = 0) throws(DevChainError) -> [String] {
        let result: Result<[String], DevChainError> = state.withLock { s in
            let head = s.head
            let reference = try! TronReferenceBlock(blockID: Hex.encode(head.id))
            var ids: [String] = []
            for (i, contract) in contracts.enumerated() {
                // The timestamp makes otherwise identical transfers distinct transactions.
                let raw = try! TronRawData(
                    refBlockBytes: reference.refBlockBytes,
                    refBlockHash: reference.refBlockHash,
                    expiration: head.timestamp + 60_000,
                    timestamp: head.timestamp + Int64(s.pending.count + i) + 1,
                    feeLimit: feeLimit,
                    contract: contract
                )
                let tx = try! TronTransaction(rawData: raw).signed(with: key)
                let verdict = admit(tx, into: &s)
                guard verdict.ok else { return .failure(DevChainError("\(verdict.code): \(verdict.message)")) }
                ids.append(Hex.encode(tx.txID))
            }
            if options.automine { mineLocked(&s, .wall) }
            return .success(ids)
        }
        return try result.get()
    }

    /// Mines `count` blocks (the first takes the pending transactions); returns the new height. `.slot` (the default)
    /// puts each block a 3 s slot after its parent, so mining moves chain time as on the real chain; `.wall` stamps
    /// the chain's clock.
    @discardableResult
    public func mine(_ count: Int = 1, clock mode: BlockClock = .slot) -> UInt64 {
        state.withLock { s in
            for _ in 0..<max(1, count) { mineLocked(&s, mode) }
            return UInt64(s.head.number)
        }
    }

    /// Replaces the last `depth` blocks with blocks of the same heights produced by another witness (new block ids),
    /// re-including their transactions unless `dropTransactions`. Returns (height, old id, new id) per block.
    public func reorg(depth: Int, dropTransactions: Bool) throws(DevChainError) -> [(number: UInt64, oldHash: String, newHash: String)] {
        let result: Result<[(UInt64, String, String)], DevChainError> = state.withLock { s in
            guard depth >= 1, depth < s.blocks.count else {
                return .failure(DevChainError("depth must be between 1 and the height (\(s.blocks.count - 1))"))
            }
            var removed: [TronBlockRecord] = []
            for _ in 0..<depth {
                let block = s.blocks.removeLast()
                for entry in block.undo.reversed() {
                    switch entry {
                    case .account(let id, let old): s.accounts[id] = old
                    case .token(let id, let old): s.token[id] = old
                    }
                }
                for tx in block.transactions { s.located[tx.id] = nil }
                removed.insert(block, at: 0)
            }
            s.forks += 1
            let pending = s.pending
            let pendingIDs = s.pendingIDs
            var replaced: [(UInt64, String, String)] = []
            for old in removed {
                s.pending = dropTransactions ? [] : old.transactions.map(\.tx)
                mineLocked(&s, .slot, timestamp: old.timestamp)
                replaced.append((UInt64(old.number), Hex.encode(old.id), Hex.encode(s.head.id)))
            }
            s.pending = pending
            s.pendingIDs = pendingIDs
            return .success(replaced)
        }
        return try result.get().map { (number: $0.0, oldHash: $0.1, newHash: $0.2) }
    }

    // MARK: Admission (broadcast)

    /// Validates a signed transaction like java-tron's `pushTransaction` and queues it; mines when automining.
    func broadcast(_ tx: TronTransaction) -> TronReturn {
        state.withLock { s in
            let verdict = admit(tx, into: &s)
            if verdict.ok, options.automine { mineLocked(&s, .wall) }
            return verdict
        }
    }

    private func admit(_ tx: TronTransaction, into s: inout TronState) -> TronReturn {
        let id = tx.txID
        guard let owner = tx.rawData.contract.owner else {
            return TronReturn(code: "CONTRACT_VALIDATE_ERROR", message: "Contract validate error : contract type not supported by devchain")
        }
        guard !tx.signatures.isEmpty else { return TronReturn(code: "SIGERROR", message: "Validate signature error: miss sig or contract") }
        for signature in tx.signatures where signature.count < 65 {
            return TronReturn(code: "SIGERROR", message: "Validate signature error: Signature size is \(signature.count)")
        }
        let signers: [TronAddress]
        do {
            signers = try tx.recoverSigners()
        } catch {
            return TronReturn(code: "SIGERROR", message: "Validate signature error: \(error)")
        }
        guard signers.count == 1, signers[0] == owner else {
            let signer = signers.first?.base58 ?? "?"
            return TronReturn(
                code: "SIGERROR",
                message: "Validate signature error: \(Hex.encode(id)) is signed by \(signer) but it is not contained of permission."
            )
        }
        let head = s.head
        let refNumber = Int64(tx.rawData.refBlockBytes.reduce(0) { $0 << 8 | Int($1) })
        var refBlock: TronBlockRecord?
        var n = head.number - ((head.number - refNumber) & 0xffff)
        if n < 0 { n = -1 }
        if n >= 0, n >= head.number - 65_535 { refBlock = s.blocks[Int(n)] }
        guard let refBlock, refBlock.id[8..<16] == tx.rawData.refBlockHash else {
            return TronReturn(code: "TAPOS_ERROR", message: "Tapos check error.")
        }
        guard tx.rawData.expiration > head.timestamp, tx.rawData.expiration <= head.timestamp + 86_400_000 else {
            return TronReturn(code: "TRANSACTION_EXPIRATION_ERROR", message: "Transaction expired")
        }
        if s.located[id] != nil || s.pendingIDs.contains(id) { return TronReturn(code: "DUP_TRANSACTION_ERROR", message: "Dup transaction.") }
        let ownerID = AccountID(owner)
        guard let account = s.accounts[ownerID] else {
            if case .transfer = tx.rawData.contract {
                return TronReturn(
                    code: "CONTRACT_VALIDATE_ERROR",
                    message: "Contract validate error : Validate TransferContract error, no OwnerAccount."
                )
            }
            return TronReturn(code: "CONTRACT_VALIDATE_ERROR", message: "Contract validate error : account [\(owner.base58)] does not exist")
        }
        var needed: Int64 = 0
        switch tx.rawData.contract {
        case .transfer(let c):
            guard c.amount > 0 else {
                return TronReturn(code: "CONTRACT_VALIDATE_ERROR", message: "Contract validate error : Amount must be greater than 0.")
            }
            guard c.to != c.owner else {
                return TronReturn(code: "CONTRACT_VALIDATE_ERROR", message: "Contract validate error : Cannot transfer TRX to yourself.")
            }
            needed = c.amount + (s.accounts[AccountID(c.to)] == nil ? Self.createAccountFee : 0)
            guard account.balance >= needed else {
                return TronReturn(
                    code: "CONTRACT_VALIDATE_ERROR",
                    message: "Contract validate error : Validate TransferContract error, balance is not sufficient."
                )
            }
        case .triggerSmartContract(let c):
            guard AccountID(c.contract) == usdt else {
                return TronReturn(code: "CONTRACT_VALIDATE_ERROR", message: "Contract validate error : No contract or not a smart contract")
            }
            guard (0...Self.maxFeeLimit).contains(tx.rawData.feeLimit) else {
                return TronReturn(
                    code: "CONTRACT_VALIDATE_ERROR",
                    message: "Contract validate error : feeLimit must be >= 0 and <= \(Self.maxFeeLimit)"
                )
            }
            guard c.callValue == 0, c.callTokenValue == 0 else {
                return TronReturn(code: "CONTRACT_VALIDATE_ERROR", message: "Contract validate error : devchain USDT is not payable")
            }
        case .other:
            return TronReturn(code: "CONTRACT_VALIDATE_ERROR", message: "Contract validate error : contract type not supported by devchain")
        }
        let bytes = Self.bandwidthBytes(tx)
        let free = freeBandwidth(account, at: head.timestamp)
        if free < bytes, account.balance - needed < bytes * options.tronBandwidthPrice {
            return TronReturn(code: "BANDWITH_ERROR", message: "Account resource insufficient error.")
        }
        if s.dropNext > 0 || (s.dropRate > 0 && Double.random(in: 0..<1) < s.dropRate) {
            s.dropNext = max(0, s.dropNext - 1)
            return .success  // "accepted", then lost
        }
        s.pending.append(tx)
        s.pendingIDs.insert(id)
        return .success
    }

    /// Evicts pending transactions: the one with `id` (hex), or all of them; returns how many.
    public func drop(id: String?) -> Int {
        state.withLock { s in
            let before = s.pending.count
            if let id {
                s.pending.removeAll { Hex.encode($0.txID) == id.lowercased() }
            } else {
                s.pending.removeAll()
            }
            s.pendingIDs = Set(s.pending.map(\.txID))
            return before - s.pending.count
        }
    }

    /// Makes the next `count` accepted transactions vanish, or the next `count` TRC20 transfers fail.
    public func injectPoolFaults(dropNext: Int? = nil, failNext: Int? = nil, dropRate: Double? = nil) {
        state.withLock { s in
            if let dropNext { s.dropNext = dropNext }
            if let failNext { s.failNext = failNext }
            if let dropRate { s.dropRate = dropRate }
        }
    }

    /// Pending transactions in the pool.
    public var pendingCount: Int { state.withLock { $0.pending.count } }

    static func bandwidthBytes(_ tx: TronTransaction) -> Int64 { Int64(tx.serialized().count + 64) }

    func freeBandwidth(_ account: TronAccountRecord, at time: Int64) -> Int64 {
        let day = time / 86_400_000
        return Self.freeBandwidthPerDay - (account.freeNetDay == day ? account.freeNetUsed : 0)
    }

    // MARK: Execution

    /// Called with the lock held: executes the pool into the next block. A transaction that no longer validates
    /// (balance spent by an earlier one) is dropped, as a producer drops it.
    func mineLocked(_ s: inout TronState, _ mode: BlockClock, timestamp: Int64? = nil) {
        let parent = s.head
        let number = parent.number + 1
        let time = timestamp ?? clock.next(after: parent.timestamp, slotMillis: 3000, mode, minimumStep: 1)
        s.undo = []
        var records: [TronTxRecord] = []
        let pool = s.pending
        s.pending = []
        s.pendingIDs = []
        for tx in pool {
            guard tx.rawData.expiration > parent.timestamp, let owner = tx.rawData.contract.owner, var account = s.accounts[AccountID(owner)] else {
                continue
            }
            let ownerID = AccountID(owner)
            var result = TronTxResult()
            // Bandwidth: free daily allowance if it covers the whole transaction, else burned TRX.
            let bytes = Self.bandwidthBytes(tx)
            let day = time / 86_400_000
            if account.freeNetDay != day {
                account.freeNetDay = day
                account.freeNetUsed = 0
            }
            switch tx.rawData.contract {
            case .transfer(let c):
                let toID = AccountID(c.to)
                let creates = s.accounts[toID] == nil
                if creates {
                    result.netFee = Self.createAccountBandwidthFee
                    result.fee = Self.createAccountFee + Self.createAccountBandwidthFee
                } else if Self.freeBandwidthPerDay - account.freeNetUsed >= bytes {
                    account.freeNetUsed += bytes
                    result.netUsage = bytes
                } else {
                    result.netFee = bytes * options.tronBandwidthPrice
                    result.fee = result.netFee
                }
                guard account.balance >= c.amount + result.fee else { continue }
                account.balance -= c.amount + result.fee
                s.setAccount(ownerID, account)
                var recipient = s.accounts[toID] ?? TronAccountRecord(balance: 0, createTime: time)
                recipient.balance += c.amount
                s.setAccount(toID, recipient)
            case .triggerSmartContract(let c):
                if Self.freeBandwidthPerDay - account.freeNetUsed >= bytes {
                    account.freeNetUsed += bytes
                    result.netUsage = bytes
                } else {
                    result.netFee = bytes * options.tronBandwidthPrice
                }
                guard account.balance >= result.netFee else { continue }
                account.balance -= result.netFee
                result.contractAddress = usdt
                let price = options.tronEnergyPrice
                let energyLimit = min(tx.rawData.feeLimit, account.balance) / price
                let transfer = c.data.count == 68 ? ERC20.decodeTransfer(c.data) : nil
                let have = s.token[ownerID] ?? 0
                let forcedFailure = transfer != nil && s.failNext > 0
                if forcedFailure { s.failNext -= 1 }
                if let transfer, have >= transfer.amount, !forcedFailure {
                    let toID = AccountID(transfer.to)
                    let needed = (s.token[toID] ?? 0) == 0 && toID != ownerID ? Self.transferEnergyNewHolder : Self.transferEnergyExisting
                    if energyLimit < needed {
                        result.energyUsageTotal = energyLimit
                        result.energyFee = energyLimit * price
                        result.contractRet = "OUT_OF_ENERGY"
                        result.failed = true
                        result.resMessage =
                            "Not enough energy for 'SSTORE' operation executing: curInvokeEnergyLimit[\(energyLimit)], curOpEnergy[20000], usedEnergy[\(energyLimit / 2)]"
                    } else {
                        result.energyUsageTotal = needed
                        result.energyFee = needed * price
                        s.setToken(ownerID, have - transfer.amount)
                        s.setToken(toID, (s.token[toID] ?? 0) + transfer.amount)
                        result.logs = [
                            TronLogRecord(
                                address: usdt,
                                topics: [ERC20.transferEventTopic, ABI.word(ownerID.evmAddress), ABI.word(toID.evmAddress)],
                                data: ABI.word(transfer.amount)
                            )
                        ]
                        result.contractResult = Data(count: 32)
                    }
                } else {
                    let used = min(energyLimit, Self.revertEnergy)
                    result.energyUsageTotal = used
                    result.energyFee = used * price
                    result.contractRet = used < Self.revertEnergy ? "OUT_OF_ENERGY" : "REVERT"
                    result.failed = true
                    result.resMessage = used < Self.revertEnergy ? "Not enough energy" : "REVERT opcode executed"
                }
                result.receiptResult = result.contractRet
                account.balance -= result.energyFee
                result.fee = result.energyFee + result.netFee
                s.setAccount(ownerID, account)
            case .other:
                continue
            }
            s.located[tx.txID] = (Int(number), records.count)
            records.append(TronTxRecord(tx: tx, id: tx.txID, result: result))
        }
        let block = makeBlock(number: number, parentHash: parent.id, timestamp: time, transactions: records, witnessIndex: s.forks, undo: s.undo)
        s.undo = []
        s.blocks.append(block)
    }
}
