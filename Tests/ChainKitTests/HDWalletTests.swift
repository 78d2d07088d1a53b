import ChainKit
import Foundation
import Testing

struct HDWalletFile: Decodable {
    struct Child: Decodable {
        let index: Int
        let path: String
        let private_key: String
        let public_key_compressed: String
        let public_key_uncompressed: String
        let address: String
        let address_lowercase: String?
        let address_hex: String?
        let wif: String?
    }
    struct WatchChild: Decodable {
        let relative_path: String
        let public_key_compressed: String
        let address: String
    }
    struct WatchOnly: Decodable {
        let from: String
        let xpub: String
        let derive: String?
        let hardened_child_from_xpub_must_fail: Bool?
        let children: [WatchChild]?
        let same_children_as: String?
    }
    struct Scheme: Decodable {
        let id: String
        let coin: String
        let account_path: String
        let account_xprv: String
        let account_xpub: String
        let chain_path: String
        let chain_xprv: String
        let chain_xpub: String
        let account_zprv: String?
        let account_zpub: String?
        let chain_zprv: String?
        let chain_zpub: String?
        let children: [Child]
        let watch_only: [WatchOnly]
    }
    struct BIP86: Decodable {
        let path: String
        let address: String
        let internal_public_key: String
    }
    struct Mnemonic: Decodable {
        let mnemonic: String
        let passphrase: String
        let seed: String
        let root_xprv: String
        let root_xpub: String
        let schemes: [Scheme]
        let bip86_first_address: BIP86?
    }
    let mnemonics: [Mnemonic]

    static func load() throws -> HDWalletFile {
        try Vectors.load(HDWalletFile.self, from: "hd_wallet.json")
    }
}

/// The address a scheme of the vectors uses for a public key.
func schemeAddress(_ schemeID: String, _ key: Secp256k1.PublicKey) throws -> String {
    switch schemeID {
    case "eth_bip44": return EVMAddress(publicKey: key).checksummed
    case "tron_bip44": return TronAddress(publicKey: key).base58
    case "btc_bip84": return BitcoinAddress.p2wpkh(publicKey: key).string
    case "btc_bip44": return BitcoinAddress.p2pkh(publicKey: key).string
    default:
        Issue.record("unknown scheme \(schemeID)")
        return ""
    }
}

@Suite("BIP39 mnemonics")
struct BIP39Tests {
    @Test("embedded English wordlist is the canonical one")
    func wordlist() {
        let words = BIP39.englishWordlist
        #expect(words.count == 2048)
        #expect(Set(words).count == 2048)
        #expect(words == words.sorted())
        #expect(words.first == "abandon" && words.last == "zoo")
        let file = Data((words.joined(separator: "\n") + "\n").utf8)
        #expect(Hex.encode(Hashing.sha256(file)) == "2f5eed53a4727b4bf8880d8f3f199efc90e58503646d9ff8eff3a2ed3b24dbda")
    }

    @Test("mnemonic → seed for every mnemonic in hd_wallet.json")
    func seedsFromVectors() throws {
        let file = try HDWalletFile.load()
        #expect(file.mnemonics.count == 2)
        for m in file.mnemonics {
            let seed = try BIP39.seed(fromMnemonic: m.mnemonic, passphrase: m.passphrase)
            #expect(Hex.encode(seed) == m.seed)
            // entropy round trip
            let entropy = try BIP39.entropy(fromMnemonic: m.mnemonic)
            #expect(try BIP39.mnemonic(fromEntropy: entropy) == m.mnemonic)
        }
    }

    // Official BIP39 vectors (Trezor python-mnemonic), passphrase "TREZOR".
    @Test(
        "entropy ↔ mnemonic ↔ seed, BIP39 reference vectors",
        arguments: [
            (
                "00000000000000000000000000000000", "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about",
                "c55257c360c07c72029aebc1b53c05ed0362ada38ead3e3e9efa3708e53495531f09a6987599d18264c1e1c92f2cf141630c7a3c4ab7c81b2f001698e7463b04"
            ),
            (
                "80808080808080808080808080808080", "letter advice cage absurd amount doctor acoustic avoid letter advice cage above",
                "d71de856f81a8acc65e6fc851a38d4d7ec216fd0796d0a6827a3ad6ed5511a30fa280f12eb2e47ed2ac03b5c462a0358d18d69fe4f985ec81778c1b370b652a8"
            ),
            (
                "ffffffffffffffffffffffffffffffff", "zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo wrong",
                "ac27495480225222079d7be181583751e86f571027b0497b5b5d11218e0a8a13332572917f0f8e5a589620c6f15b11c61dee327651a14c34e18231052e48c069"
            ),
            (
                "0000000000000000000000000000000000000000",
                "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon address",
                "fa08713f46bf5cb48728ceb70e3aae1bc53c5cb7b4e29c5610261d1cbb7be3bed4d805256fec515754d2be35974fc5da678168e9d9bb0cb70948026923b0def3"
            ),
            (
                "ffffffffffffffffffffffffffffffffffffffffffffffff", "zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo when",
                "0cd6e5d827bb62eb8fc1e262254223817fd068a74b5b449cc2f667c3f1f985a76379b43348d952e2265b4cd129090758b3e3c2c49103b5051aac2eaeb890a528"
            ),
            (
                "00000000000000000000000000000000000000000000000000000000",
                "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon admit",
                "e7dadc189d2e8d07ac278d9ec98a1d2d327e4a6b7df494c00cbf2cbf2d3543dac7000fc72d4ada8d9997dc8db388ff22c6d79f604a7455f2df5534a28eee04c6"
            ),
            (
                "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
                "zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo vote",
                "dd48c104698c30cfe2b6142103248622fb7bb0ff692eebb00089b32d22484e1613912f0a5b694407be899ffd31ed3992c456cdf60f5d4564b8ba3f05a69890ad"
            ),
            (
                "9e885d952ad362caeb4efe34a8e91bd2", "ozone drill grab fiber curtain grace pudding thank cruise elder eight picnic",
                "274ddc525802f7c828d8ef7ddbcdc5304e87ac3535913611fbbfa986d0c9e5476c91689f9c8a54fd55bd38606aa6a8595ad213d4c9c9f9aca3fb217069a41028"
            ),
            (
                "68a79eaca2324873eacc50cb9c6eca8cc68ea5d936f98787c60c7ebc74e6ce7c",
                "hamster diagram private dutch cause delay private meat slide toddler razor book happy fancy gospel tennis maple dilemma loan word shrug inflict delay length",
                "64c87cde7e12ecf6704ab95bb1408bef047c22db4cc7491c4271d170a1b213d20b385bc1588d9c7b38f1b39d415665b8a9030c9ec653d75e65f847d8fc1fc440"
            ),
        ]
    )
    func referenceVectors(entropy: String, mnemonic: String, seed: String) throws {
        #expect(try BIP39.mnemonic(fromEntropy: hex(entropy)) == mnemonic)
        #expect(Hex.encode(try BIP39.entropy(fromMnemonic: mnemonic)) == entropy)
        #expect(Hex.encode(try BIP39.seed(fromMnemonic: mnemonic, passphrase: "TREZOR")) == seed)
    }

    @Test("invalid mnemonics are rejected with the reason")
    func invalidMnemonics() {
        let valid = "legal winner thank year wave sausage worth useful legal winner thank yellow"
        #expect(throws: BIP39.Error.invalidWordCount(11)) {
            try BIP39.validate(mnemonic: "legal winner thank year wave sausage worth useful legal winner thank")
        }
        #expect(throws: BIP39.Error.invalidWordCount(0)) { try BIP39.validate(mnemonic: "   ") }
        #expect(throws: BIP39.Error.unknownWord(position: 12)) {
            try BIP39.validate(mnemonic: "legal winner thank year wave sausage worth useful legal winner thank yelow")
        }
        #expect(throws: BIP39.Error.unknownWord(position: 1)) {
            try BIP39.validate(mnemonic: "Legal winner thank year wave sausage worth useful legal winner thank yellow")
        }
        // All words valid, checksum wrong: the classic twelve "abandon", and two swapped words.
        #expect(throws: BIP39.Error.checksumMismatch) {
            try BIP39.validate(mnemonic: Array(repeating: "abandon", count: 12).joined(separator: " "))
        }
        #expect(throws: BIP39.Error.checksumMismatch) {
            try BIP39.validate(mnemonic: "winner legal thank year wave sausage worth useful legal winner thank yellow")
        }
        #expect(throws: BIP39.Error.checksumMismatch) { _ = try BIP39.seed(fromMnemonic: "zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo") }
        #expect(throws: BIP39.Error.invalidEntropyLength(15)) { try BIP39.mnemonic(fromEntropy: Data(count: 15)) }
        #expect(throws: Never.self) { try BIP39.validate(mnemonic: valid) }
    }

    @Test("extra whitespace does not change the seed")
    func whitespaceNormalised() throws {
        let a = try BIP39.seed(fromMnemonic: "legal winner thank year wave sausage worth useful legal winner thank yellow", passphrase: "TREZOR")
        let b = try BIP39.seed(
            fromMnemonic: "  legal  winner thank year wave sausage worth useful legal winner thank\tyellow\n",
            passphrase: "TREZOR"
        )
        #expect(a == b)
    }

    @Test("generated mnemonics validate and have the requested length")
    func generate() throws {
        for count in [12, 24] {
            let mnemonic = try BIP39.generateMnemonic(wordCount: count)
            #expect(mnemonic.split(separator: " ").count == count)
            #expect(throws: Never.self) { try BIP39.validate(mnemonic: mnemonic) }
        }
        #expect(try BIP39.generateMnemonic() != BIP39.generateMnemonic())
        #expect(throws: BIP39.Error.invalidWordCount(13)) { try BIP39.generateMnemonic(wordCount: 13) }
    }
}

@Suite("BIP32 HD keys")
struct BIP32Tests {
    @Test("root, account and chain keys, and all 20 children of every scheme")
    func privateDerivation() throws {
        let file = try HDWalletFile.load()
        var childCount = 0
        for m in file.mnemonics {
            let root = try ExtendedPrivateKey(seed: hex(m.seed))
            #expect(root.serialized() == m.root_xprv)
            #expect(root.extendedPublicKey.serialized() == m.root_xpub)
            #expect(m.schemes.map(\.id) == ["eth_bip44", "tron_bip44", "btc_bip84", "btc_bip44"])
            for scheme in m.schemes {
                let account = try root.derived(path: scheme.account_path)
                #expect(account.serialized() == scheme.account_xprv, "\(scheme.id)")
                #expect(account.extendedPublicKey.serialized() == scheme.account_xpub, "\(scheme.id)")
                #expect(account.depth == 3)
                let chain = try root.derived(path: scheme.chain_path)
                #expect(chain.serialized() == scheme.chain_xprv, "\(scheme.id)")
                #expect(chain.extendedPublicKey.serialized() == scheme.chain_xpub, "\(scheme.id)")
                #expect(try account.derived(path: "0") == chain)
                #expect(chain.parentFingerprint == account.fingerprint)
                #expect(scheme.children.count == 20)
                for child in scheme.children {
                    let key = try root.derived(path: child.path)
                    #expect(try chain.derived(childNumber: UInt32(child.index)) == key)
                    #expect(Hex.encode(key.privateKey.bytes) == child.private_key, "\(child.path)")
                    #expect(Hex.encode(key.publicKey.compressed) == child.public_key_compressed, "\(child.path)")
                    #expect(Hex.encode(key.publicKey.uncompressed) == child.public_key_uncompressed, "\(child.path)")
                    #expect(try schemeAddress(scheme.id, key.publicKey) == child.address, "\(child.path)")
                    if let lower = child.address_lowercase {
                        #expect(EVMAddress(publicKey: key.publicKey).lowercased == lower)
                    }
                    if let addressHex = child.address_hex {
                        #expect(TronAddress(publicKey: key.publicKey).hex == addressHex)
                    }
                    if let wif = child.wif {
                        #expect(key.privateKey.wif() == wif)
                        #expect(try Secp256k1.PrivateKey(wif: wif) == key.privateKey)
                    }
                    // The standalone key derives the same public key.
                    #expect(try Secp256k1.PrivateKey(hex: child.private_key).publicKey == key.publicKey)
                    childCount += 1
                }
            }
        }
        #expect(childCount == 160)
    }

    @Test("watch-only: children from chain and account xpubs; hardened from xpub fails")
    func publicDerivation() throws {
        let file = try HDWalletFile.load()
        var checked = 0
        for m in file.mnemonics {
            for scheme in m.schemes {
                let byIndex = Dictionary(uniqueKeysWithValues: scheme.children.map { ($0.index, $0) })
                for watch in scheme.watch_only {
                    let xpub = try ExtendedPublicKey(serialized: watch.xpub)
                    #expect(xpub.serialized() == watch.xpub, "round trip \(watch.from)")
                    if watch.hardened_child_from_xpub_must_fail == true {
                        #expect(throws: HDKeyError.hardenedDerivationFromPublicKey(index: 0x8000_0000)) {
                            try xpub.derived(path: "0'")
                        }
                    }
                    let children: [HDWalletFile.WatchChild]
                    if let own = watch.children {
                        children = own
                    } else {
                        // "same_children_as": chain_xpub — a zpub of the same chain key.
                        #expect(watch.same_children_as == "chain_xpub")
                        let sibling = try #require(scheme.watch_only.first { $0.from == "chain_xpub" })
                        children = try #require(sibling.children)
                        #expect(xpub.version == .zpub)
                        #expect(xpub.serialized(version: .xpub) == scheme.chain_xpub)
                    }
                    #expect(children.count == 20)
                    for (i, child) in children.enumerated() {
                        let key = try xpub.derived(path: child.relative_path)
                        #expect(
                            Hex.encode(key.publicKey.compressed) == child.public_key_compressed,
                            "\(scheme.id) \(watch.from) \(child.relative_path)"
                        )
                        #expect(try schemeAddress(scheme.id, key.publicKey) == child.address)
                        #expect(byIndex[i]?.public_key_compressed == child.public_key_compressed)
                        checked += 1
                    }
                }
            }
        }
        #expect(checked == 2 * (3 * 2 * 20 + 3 * 20))
    }

    @Test("SLIP-132 zprv/zpub for BIP84 accounts and chains")
    func slip132() throws {
        let file = try HDWalletFile.load()
        for m in file.mnemonics {
            let scheme = try #require(m.schemes.first { $0.id == "btc_bip84" })
            let account = try ExtendedPrivateKey(serialized: scheme.account_xprv)
            #expect(account.serialized(version: .zpub) == scheme.account_zprv)
            #expect(account.extendedPublicKey.serialized(version: .zpub) == scheme.account_zpub)
            let zprv = try ExtendedPrivateKey(serialized: try #require(scheme.chain_zprv))
            #expect(zprv.version == .zpub)
            #expect(zprv.serialized() == scheme.chain_zprv)
            #expect(zprv.serialized(version: .xpub) == scheme.chain_xprv)
            #expect(zprv.extendedPublicKey.serialized() == scheme.chain_zpub)
        }
    }

    @Test("parsing xprv keeps every field and derives identically")
    func parseRoundTrip() throws {
        let file = try HDWalletFile.load()
        let m = file.mnemonics[0]
        let root = try ExtendedPrivateKey(seed: hex(m.seed))
        let parsed = try ExtendedPrivateKey(serialized: m.root_xprv)
        #expect(parsed == root)
        for scheme in m.schemes {
            let account = try ExtendedPrivateKey(serialized: scheme.account_xprv)
            #expect(try account.derived(path: "0/7").publicKey == (try root.derived(path: scheme.chain_path + "/7").publicKey))
        }
    }

    @Test("BIP86 taproot address from the vectors")
    func bip86() throws {
        let file = try HDWalletFile.load()
        let m = file.mnemonics[0]
        let vector = try #require(m.bip86_first_address)
        let key = try ExtendedPrivateKey(seed: hex(m.seed)).derived(path: vector.path)
        #expect(Hex.encode(key.publicKey.compressed) == vector.internal_public_key)
        #expect(try BitcoinAddress.p2tr(internalKey: key.publicKey).string == vector.address)
    }

    @Test("derivation paths parse, print and reject garbage")
    func paths() throws {
        let path = try DerivationPath("m/44'/195'/0'/0/5")
        #expect(path.components.map(\.childNumber) == [0x8000_002C, 0x8000_00C3, 0x8000_0000, 0, 5])
        #expect(path.description == "m/44'/195'/0'/0/5")
        #expect(try DerivationPath("m/44h/195H/0'/0/5") == path)
        #expect(DerivationPath.bip44(coinType: DerivationPath.tronCoinType, account: 0, change: 0, index: 5) == path)
        #expect(DerivationPath.bip44(purpose: 84, coinType: 0, account: 0, change: 1, index: 0).description == "m/84'/0'/0'/1/0")
        #expect(DerivationPath.account(coinType: DerivationPath.evmCoinType, account: 3).description == "m/44'/60'/3'")
        #expect(try DerivationPath("m").components.isEmpty)
        #expect(try DerivationPath("0/5").components.map(\.childNumber) == [0, 5])
        for bad in ["", "m/", "m//0", "m/x", "m/-1", "m/2147483648", "m/99999999999", "m/1''", "/0", "m/0/ 1"] {
            #expect(throws: HDKeyError.self, "\(bad)") { try DerivationPath(bad) }
        }
        #expect(try DerivationPath("m/2147483647'").components[0].childNumber == 0xFFFF_FFFF)
    }

    @Test("malformed extended keys are rejected with the reason")
    func invalidExtendedKeys() throws {
        let file = try HDWalletFile.load()
        let m = file.mnemonics[0]
        let xprv = m.root_xprv
        let xpub = m.root_xpub
        // One changed character breaks the checksum.
        let corrupted = String(xpub.dropLast()) + (xpub.last == "8" ? "9" : "8")
        #expect(throws: HDKeyError.invalidEncoding(.checksumMismatch)) { try ExtendedPublicKey(serialized: corrupted) }
        #expect(throws: HDKeyError.wrongKeyKind(expectedPrivate: false)) { try ExtendedPublicKey(serialized: xprv) }
        #expect(throws: HDKeyError.wrongKeyKind(expectedPrivate: true)) { try ExtendedPrivateKey(serialized: xpub) }

        var payload = try Array(Base58.decodeCheck(xpub))
        #expect(throws: HDKeyError.wrongLength(77)) { try ExtendedPublicKey(serialized: Base58.encodeCheck(payload.dropLast())) }
        var unknown = payload
        unknown[0...3] = [0x01, 0x02, 0x03, 0x04]
        #expect(throws: HDKeyError.unknownVersion(0x0102_0304)) { try ExtendedPublicKey(serialized: Base58.encodeCheck(unknown)) }
        var orphan = payload
        orphan[5] = 1  // depth 0 with a parent fingerprint
        #expect(throws: HDKeyError.inconsistentMasterKey) { try ExtendedPublicKey(serialized: Base58.encodeCheck(orphan)) }
        payload[45] = 0x04  // not a compressed point prefix
        #expect(throws: HDKeyError.invalidKeyData) { try ExtendedPublicKey(serialized: Base58.encodeCheck(payload)) }
        payload[45] = 0x02
        for i in 46..<78 { payload[i] = 0xff }  // x ≥ p: not on the curve
        #expect(throws: HDKeyError.invalidKeyData) { try ExtendedPublicKey(serialized: Base58.encodeCheck(payload)) }

        var priv = try Array(Base58.decodeCheck(xprv))
        priv[45] = 0x01  // private key must be prefixed by 0x00
        #expect(throws: HDKeyError.invalidKeyData) { try ExtendedPrivateKey(serialized: Base58.encodeCheck(priv)) }
        priv[45] = 0
        for i in 46..<78 { priv[i] = 0xff }  // ≥ n
        #expect(throws: HDKeyError.invalidKeyData) { try ExtendedPrivateKey(serialized: Base58.encodeCheck(priv)) }

        #expect(throws: HDKeyError.invalidSeedLength(15)) { try ExtendedPrivateKey(seed: Data(count: 15)) }
        #expect(throws: HDKeyError.invalidSeedLength(65)) { try ExtendedPrivateKey(seed: Data(count: 65)) }
    }

    @Test("private keys never appear in descriptions")
    func redaction() throws {
        let key = try Secp256k1.PrivateKey(hex: "4646464646464646464646464646464646464646464646464646464646464646")
        let xprv = try ExtendedPrivateKey(seed: Data(repeating: 0x46, count: 32))
        for text in [String(describing: key), "\(xprv)", String(reflecting: key), String(reflecting: xprv)] {
            #expect(!text.contains("4646"))
            #expect(!text.contains(Hex.encode(xprv.privateKey.bytes)))
        }
        var dumped = ""
        dump(key, to: &dumped)
        #expect(!dumped.contains("4646"))
    }
}
