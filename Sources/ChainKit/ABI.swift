import BigInt
import Foundation

/// Minimal Solidity ABI helpers: selectors and static words.
public enum ABI {
    /// The 4-byte function selector: the first 4 bytes of keccak256 of the canonical signature (e.g. `transfer(address,uint256)`).
    public static func selector(_ signature: String) -> Data {
        Data(Keccak256.hash(utf8: signature).prefix(4))
    }

    /// The 32-byte event topic of a canonical event signature (e.g. `Transfer(address,address,uint256)`).
    public static func eventTopic(_ signature: String) -> Data {
        Keccak256.hash(utf8: signature)
    }

    /// A uint256 as a 32-byte big-endian word; values above 2^256 - 1 are a programming error.
    public static func word(_ value: BigUInt) -> Data {
        let bytes = value.serialize()
        precondition(bytes.count <= 32, "uint256 overflow")
        return Data(count: 32 - bytes.count) + bytes
    }

    /// An address as a 32-byte word (12 zero bytes, then the 20 address bytes).
    public static func word(_ address: EVMAddress) -> Data {
        Data(count: 12) + address.bytes
    }
}

/// ERC20 / TRC20 calldata (TRC20 uses the same ABI with the 20-byte account id of a TRON address).
public enum ERC20 {
    /// `transfer(address,uint256)` selector `a9059cbb`.
    public static let transferSelector = Data([0xa9, 0x05, 0x9c, 0xbb])
    /// `balanceOf(address)` selector `70a08231`.
    public static let balanceOfSelector = Data([0x70, 0xa0, 0x82, 0x31])
    /// `decimals()` selector `313ce567`.
    public static let decimalsSelector = Data([0x31, 0x3c, 0xe5, 0x67])
    /// `Transfer(address,address,uint256)` event topic.
    public static let transferEventTopic = ABI.eventTopic("Transfer(address,address,uint256)")

    /// A decoded `transfer(address,uint256)` call.
    public struct Transfer: Sendable, Hashable {
        /// Recipient (low 20 bytes of the first word).
        public let to: EVMAddress
        /// Amount in base units.
        public let amount: BigUInt

        /// A transfer of `amount` base units to `to`.
        public init(to: EVMAddress, amount: BigUInt) {
            self.to = to
            self.amount = amount
        }
    }

    /// 68 bytes: `a9059cbb` ‖ address word ‖ uint256 amount.
    public static func transferCalldata(to: EVMAddress, amount: BigUInt) -> Data {
        transferSelector + ABI.word(to) + ABI.word(amount)
    }

    /// 36 bytes: `70a08231` ‖ address word.
    public static func balanceOfCalldata(owner: EVMAddress) -> Data {
        balanceOfSelector + ABI.word(owner)
    }

    /// Decodes `transfer(address,uint256)` calldata like the token contract does: the recipient is the low 20 bytes
    /// of the first word (mainnet TRC20 calldata often carries `41` in byte 11), extra trailing bytes are ignored.
    /// Returns nil for another selector or fewer than 68 bytes.
    public static func decodeTransfer(_ calldata: Data) -> Transfer? {
        let bytes = [UInt8](calldata)
        guard bytes.count >= 68, Data(bytes[0..<4]) == transferSelector else { return nil }
        let to = EVMAddress(uncheckedBytes: Data(bytes[16..<36]))
        return Transfer(to: to, amount: BigUInt(Data(bytes[36..<68])))
    }
}
