import ChainKit
import Foundation
import Testing

@Suite("Watch-only accounts")
struct AddressSchemeTests {
    private static func scheme(_ id: String) -> AddressScheme? {
        switch id {
        case "eth_bip44": return .evm
        case "tron_bip44": return .tron
        case "btc_bip84": return .bitcoinP2WPKH(.mainnet)
        case "btc_bip44": return .bitcoinP2PKH(.mainnet)
        default: return nil
        }
    }

    @Test("account paths and deposit addresses 0/i from the account xpub match every scheme's vectors")
    func depositAddresses() throws {
        let file = try HDWalletFile.load()
        for m in file.mnemonics {
            let root = try ExtendedPrivateKey(seed: hex(m.seed))
            for vector in m.schemes {
                let scheme = try #require(Self.scheme(vector.id))
                #expect(scheme.accountPath(account: 0).description == vector.account_path)
                let account = try WatchOnlyAccount(serialized: vector.account_xpub, scheme: scheme)
                let addresses = try account.depositAddresses(0..<20)
                #expect(addresses == vector.children.map(\.address), "\(vector.id)")
                #expect(try account.depositAddress(index: 7) == vector.children[7].address)
                // The hot address is change 1, index 0 — derived from the seed the same way.
                let hotKey = try root.addressKey(scheme: scheme, account: 0, change: 1, index: 0)
                #expect(try account.hotAddress() == scheme.address(for: hotKey.publicKey))
                #expect(try account.hotAddress() != addresses[0])
                // The signing side derives the same key for deposit i.
                let key5 = try root.addressKey(scheme: scheme, account: 0, change: 0, index: 5)
                #expect(Hex.encode(key5.bytes) == vector.children[5].private_key)
            }
        }
    }

    @Test("coin types per scheme and network; a non-account key is refused")
    func coinTypesAndDepth() throws {
        #expect(AddressScheme.tron.accountPath(account: 2).description == "m/44'/195'/2'")
        #expect(AddressScheme.evm.accountPath(account: 0).description == "m/44'/60'/0'")
        #expect(AddressScheme.bitcoinP2WPKH(.mainnet).accountPath(account: 0).description == "m/84'/0'/0'")
        #expect(AddressScheme.bitcoinP2WPKH(.testnet).accountPath(account: 0).description == "m/84'/1'/0'")
        #expect(AddressScheme.bitcoinP2PKH(.mainnet).accountPath(account: 1).description == "m/44'/0'/1'")
        let file = try HDWalletFile.load()
        let chainXpub = file.mnemonics[0].schemes[0].chain_xpub
        #expect(throws: HDKeyError.self) { try WatchOnlyAccount(serialized: chainXpub, scheme: .evm) }
    }
}
