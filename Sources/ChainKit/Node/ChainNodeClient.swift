import BigInt
import Foundation

/// A block's identity: what reorg detection compares.
public struct BlockRef: Sendable, Hashable, CustomStringConvertible {
    /// Height.
    public let number: UInt64
    /// Block hash in the chain's text form (EVM `0x…`, TRON 64 hex digits without `0x`), lower case.
    public let hash: String
    /// The parent's hash, same form.
    public let parentHash: String
    /// Block time in milliseconds since the epoch (EVM seconds × 1000).
    public let timestampMillis: Int64

    /// A block reference.
    public init(number: UInt64, hash: String, parentHash: String, timestampMillis: Int64) {
        self.number = number
        self.hash = hash
        self.parentHash = parentHash
        self.timestampMillis = timestampMillis
    }

    /// `#number hash`.
    public var description: String { "#\(number) \(hash)" }
}

/// What moved in a transfer.
public enum TransferAsset: Sendable, Hashable {
    /// The chain's coin (ETH wei, TRX sun).
    case native
    /// A token (ERC20/TRC20) identified by its contract's account id.
    case token(AccountID)
}

/// A successful transfer to a watched address, as found in a block.
///
/// A deposit is identified by (chain, `txHash`, `logIndex`); `logIndex` is nil for a native transfer.
public struct ObservedTransfer: Sendable, Hashable {
    /// Native coin or which token.
    public let asset: TransferAsset
    /// Transaction hash in the chain's text form (EVM `0x…`, TRON without `0x`), lower case.
    public let txHash: String
    /// EVM: the block-wide `logIndex`; TRON: the position in the transaction's `log` list; nil for native transfers.
    public let logIndex: Int?
    /// Block height.
    public let blockNumber: UInt64
    /// Hash of the block that contains it (same form as `BlockRef.hash`).
    public let blockHash: String
    /// Sender.
    public let from: AccountID
    /// Recipient (a watched address).
    public let to: AccountID
    /// Amount in base units (wei, sun, token units).
    public let amount: BigUInt

    /// A transfer record.
    public init(
        asset: TransferAsset,
        txHash: String,
        logIndex: Int?,
        blockNumber: UInt64,
        blockHash: String,
        from: AccountID,
        to: AccountID,
        amount: BigUInt
    ) {
        self.asset = asset
        self.txHash = txHash
        self.logIndex = logIndex
        self.blockNumber = blockNumber
        self.blockHash = blockHash
        self.from = from
        self.to = to
        self.amount = amount
    }
}

/// The set of addresses a scan reports transfers to; lookups are O(1) (a hash set of packed account ids).
public struct WatchedAddresses: Sendable {
    private var members: Set<AccountID>

    /// A set of account ids.
    public init<S: Sequence>(_ accounts: S) where S.Element == AccountID {
        members = Set(accounts)
    }

    /// Whether `account` is watched.
    @inline(__always) public func contains(_ account: AccountID) -> Bool { members.contains(account) }

    /// How many addresses are watched.
    public var count: Int { members.count }

    /// Adds an address.
    public mutating func insert(_ account: AccountID) { members.insert(account) }
}

/// What a range scan found: every block of the range (in order) and the transfers to watched addresses.
public struct TransferScan: Sendable {
    /// The blocks of the range, ascending, each the parent of the next.
    public let blocks: [BlockRef]
    /// Successful transfers to watched addresses, in block order.
    public let transfers: [ObservedTransfer]

    /// A scan result.
    public init(blocks: [BlockRef], transfers: [ObservedTransfer]) {
        self.blocks = blocks
        self.transfers = transfers
    }
}

/// A mined transaction's outcome.
public struct TransactionReceipt: Sendable, Equatable {
    /// Height of the block that includes it.
    public let blockNumber: UInt64
    /// That block's hash (EVM only; TRON's transaction info does not carry it).
    public let blockHash: String?
    /// Fee paid in the native coin's base units (EVM gasUsed × effectiveGasPrice; TRON `fee`, burned TRX).
    public let fee: BigUInt
    /// Why it failed (EVM: "execution reverted (status 0)"; TRON: receipt result and decoded `resMessage`); nil on success.
    public let failureReason: String?

    /// A receipt.
    public init(blockNumber: UInt64, blockHash: String?, fee: BigUInt, failureReason: String?) {
        self.blockNumber = blockNumber
        self.blockHash = blockHash
        self.fee = fee
        self.failureReason = failureReason
    }
}

/// Where a transaction stands.
public enum TransactionStatus: Sendable, Equatable {
    /// The node does not know it (never broadcast, dropped, or expired).
    case notFound
    /// Known to the node but not in a block yet.
    case pending
    /// In a block and succeeded (count confirmations from `receipt.blockNumber`).
    case confirmed(TransactionReceipt)
    /// In a block and failed: its fee is spent, its transfer did not happen.
    case failed(TransactionReceipt)
}

/// An EVM account's transaction counts.
public struct AccountNonce: Sendable, Equatable {
    /// Transactions mined (`eth_getTransactionCount(…, "latest")`): the next nonce once the pool is empty.
    public let latest: UInt64
    /// Including the node's pool (`"pending"`).
    public let pending: UInt64

    /// Both counts.
    public init(latest: UInt64, pending: UInt64) {
        self.latest = latest
        self.pending = pending
    }
}

/// A native-coin balance.
public struct NativeBalance: Sendable, Equatable {
    /// Base units (wei, sun).
    public let amount: BigUInt
    /// False for a TRON address that was never activated (`getaccount` answered `{}`); always true on EVM.
    public let accountExists: Bool

    /// A balance.
    public init(amount: BigUInt, accountExists: Bool) {
        self.amount = amount
        self.accountExists = accountExists
    }
}

/// A transfer whose fee is to be estimated.
public enum FeeQuery: Sendable, Equatable {
    /// Native coin from `from` to `to`.
    case native(from: AccountID, to: AccountID, amount: BigUInt)
    /// `amount` of the token at `token` from `from` to `to`.
    case token(token: AccountID, from: AccountID, to: AccountID, amount: BigUInt)
}

/// EVM fee parameters (all in wei).
public struct EVMFeeEstimate: Sendable, Equatable {
    /// The latest block's base fee; nil on a chain without EIP-1559.
    public let baseFeePerGas: BigUInt?
    /// Suggested tip (`eth_maxPriorityFeePerGas`, else gas price − base fee).
    public let maxPriorityFeePerGas: BigUInt
    /// Suggested cap: 2 × base fee + tip (survives six full blocks of base-fee growth).
    public let maxFeePerGas: BigUInt
    /// `eth_gasPrice`, for legacy transactions.
    public let gasPrice: BigUInt
    /// `eth_estimateGas` for the queried transfer.
    public let gasEstimate: UInt64
    /// Gas limit to sign with: the estimate for a plain transfer (exactly 21,000), +20 % for a contract call.
    public let gasLimit: UInt64

    /// An estimate.
    public init(
        baseFeePerGas: BigUInt?,
        maxPriorityFeePerGas: BigUInt,
        maxFeePerGas: BigUInt,
        gasPrice: BigUInt,
        gasEstimate: UInt64,
        gasLimit: UInt64
    ) {
        self.baseFeePerGas = baseFeePerGas
        self.maxPriorityFeePerGas = maxPriorityFeePerGas
        self.maxFeePerGas = maxFeePerGas
        self.gasPrice = gasPrice
        self.gasEstimate = gasEstimate
        self.gasLimit = gasLimit
    }

    /// The most the transaction can cost: gasLimit × maxFeePerGas (or gasPrice without EIP-1559).
    public var maxFee: BigUInt { BigUInt(gasLimit) * (baseFeePerGas == nil ? gasPrice : maxFeePerGas) }
}

/// TRON fee parameters (all in sun), per tron-http-api.md §9.2; staked energy/bandwidth are not subtracted.
public struct TronFeeEstimate: Sendable, Equatable {
    /// `getEnergyFee`: sun per unit of energy.
    public let energyPrice: UInt64
    /// `getTransactionFee`: sun per bandwidth byte.
    public let bandwidthPrice: UInt64
    /// Energy the call needs (`triggerconstantcontract` energy_used; 0 for TRX).
    public let energy: UInt64
    /// Bandwidth bytes: serialised signed transaction + 64.
    public let bandwidthBytes: UInt64
    /// Account activation fee when a TRX transfer creates the recipient (`getCreateNewAccountFeeInSystemContract` + `getCreateAccountFee`).
    public let activationFee: UInt64
    /// `fee_limit` to sign a contract call with: 1.5 × the energy fee (0 for TRX transfers).
    public let feeLimit: UInt64

    /// An estimate.
    public init(energyPrice: UInt64, bandwidthPrice: UInt64, energy: UInt64, bandwidthBytes: UInt64, activationFee: UInt64, feeLimit: UInt64) {
        self.energyPrice = energyPrice
        self.bandwidthPrice = bandwidthPrice
        self.energy = energy
        self.bandwidthBytes = bandwidthBytes
        self.activationFee = activationFee
        self.feeLimit = feeLimit
    }

    /// Expected TRX burned if no free or staked resources cover it.
    public var total: BigUInt {
        BigUInt(energy) * BigUInt(energyPrice) + BigUInt(bandwidthBytes) * BigUInt(bandwidthPrice) + BigUInt(activationFee)
    }
}

/// A fee estimate for either protocol.
public enum FeeEstimate: Sendable, Equatable {
    /// EVM gas prices and limit.
    case evm(EVMFeeEstimate)
    /// TRON energy and bandwidth.
    case tron(TronFeeEstimate)

    /// The most the transaction is expected to cost, in native base units.
    public var maxTotal: BigUInt {
        switch self {
        case .evm(let e): return e.maxFee
        case .tron(let t): return max(t.total, BigUInt(t.feeLimit) + BigUInt(t.bandwidthBytes) * BigUInt(t.bandwidthPrice) + BigUInt(t.activationFee))
        }
    }
}

/// The node accepted a transaction.
public struct BroadcastResult: Sendable, Equatable {
    /// The transaction hash (checked against the locally computed one).
    public let txHash: String
    /// True when the node already had it ("already known", `DUP_TRANSACTION_ERROR`): not an error for a re-send of
    /// the same bytes, and not proof of inclusion either — poll its status.
    public let alreadyKnown: Bool

    /// A result.
    public init(txHash: String, alreadyKnown: Bool) {
        self.txHash = txHash
        self.alreadyKnown = alreadyKnown
    }
}

/// One chain node, reached over its public protocol (Ethereum JSON-RPC or the TRON HTTP API).
///
/// Every method validates what the node answers and throws `ChainNodeError` naming the method and field when the
/// answer does not make sense. Transient failures (connection errors, timeouts, HTTP 429/5xx, rate limits) are
/// retried with exponential backoff and full jitter before they surface.
public protocol ChainNodeClient: Sendable {
    /// Which protocol (and address format) this client speaks.
    var kind: ChainKind { get }

    /// The height of the node's latest block.
    func tipHeight() async throws(ChainNodeError) -> UInt64

    /// Hash and parent hash of every block in `heights` (batched), ascending; a missing block is an error.
    func blockRefs(_ heights: ClosedRange<UInt64>) async throws(ChainNodeError) -> [BlockRef]

    /// Successful token (`Transfer` events of `tokens`) and, when `includeNative`, native transfers to `watched`
    /// in the blocks `heights`. Failed transactions are never reported. Throws `.reorgDuringScan` when the answers
    /// of the node disagree about a block (it changed while we read it): scan the range again.
    func transfers(
        in heights: ClosedRange<UInt64>,
        to watched: WatchedAddresses,
        tokens: [AccountID],
        includeNative: Bool
    )
        async throws(ChainNodeError) -> TransferScan

    /// Whether a transaction is unknown, pending, confirmed or failed.
    func transactionStatus(_ txHash: String) async throws(ChainNodeError) -> TransactionStatus

    /// `transactionStatus` of many transactions, in order (EVM: JSON-RPC batches; otherwise concurrent calls).
    func transactionStatuses(_ txHashes: [String]) async throws(ChainNodeError) -> [TransactionStatus]

    /// The account's nonces (EVM); TRON has none and throws `.unsupported`.
    func nonce(of account: AccountID) async throws(ChainNodeError) -> AccountNonce

    /// Native balance (wei / sun).
    func nativeBalance(of account: AccountID) async throws(ChainNodeError) -> NativeBalance

    /// Token balance in token base units (`balanceOf`).
    func tokenBalance(of account: AccountID, token: AccountID) async throws(ChainNodeError) -> BigUInt

    /// What a transfer is expected to cost.
    func feeEstimate(_ query: FeeQuery) async throws(ChainNodeError) -> FeeEstimate

    /// Sends a signed transaction (EVM raw RLP bytes; TRON serialised `Transaction` protobuf). Re-sending the same
    /// bytes is safe: a node that already has them answers `alreadyKnown`.
    func broadcast(_ signed: Data) async throws(ChainNodeError) -> BroadcastResult
}

extension ChainNodeClient {
    public func transactionStatuses(_ txHashes: [String]) async throws(ChainNodeError) -> [TransactionStatus] {
        try await concurrentMap(txHashes, limit: 16) { hash throws(ChainNodeError) in try await self.transactionStatus(hash) }
    }
}
