import ChainKit
import Foundation
import GatewayCore
import Testing

/// Secrets given by systemd (`LoadCredential=` → files in `$CREDENTIALS_DIRECTORY`), as the units in deploy/systemd do.
@Suite struct CredentialTests {
    /// A credentials directory holding `files`, removed after `body`.
    func withCredentials<R>(_ files: [String: String], _ body: (String) throws -> R) throws -> R {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("credentials-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        for (name, text) in files { try text.write(to: dir.appendingPathComponent(name), atomically: true, encoding: .utf8) }
        return try body(dir.path)
    }

    func configError(_ body: () throws -> Void) -> ConfigError? {
        do {
            try body()
            return nil
        } catch let e as ConfigError {
            return e
        } catch {
            Issue.record("unexpected \(error)")
            return nil
        }
    }

    @Test func theDatabasePasswordComesFromItsCredentialAndTheEnvironmentStillWins() throws {
        let yaml = "database:\n  url: postgres://gateway@db.internal:5432/gateway\n  password_credential: database-password\n"
        try withCredentials(["database-password": "s3cret\n"]) { (dir: String) throws in
            let c = try GatewayConfig.parse(yaml: yaml, environment: ["CREDENTIALS_DIRECTORY": dir])
            #expect(c.database.password == "s3cret", "the file's closing newline is not part of the password")
            #expect(!c.database.redactedDescription.contains("s3cret"))
            let env = try GatewayConfig.parse(yaml: yaml, environment: ["CREDENTIALS_DIRECTORY": dir, "POSTGRES_PASSWORD": "from-env"])
            #expect(env.database.password == "from-env")
            let url = try GatewayConfig.parse(yaml: yaml, environment: ["CREDENTIALS_DIRECTORY": dir, "DATABASE_URL": "postgres://u:p@h/d"])
            #expect(url.database.password == "p")
        }
        // A unit without the credential: the error names it, and how to give it.
        let missing = try withCredentials([:]) { (dir: String) throws in
            configError { _ = try GatewayConfig.parse(yaml: yaml, environment: ["CREDENTIALS_DIRECTORY": dir]) }
        }
        #expect(missing?.key == "database.password_credential")
        #expect(missing?.description.contains("credential 'database-password' is missing") == true)
        #expect(missing?.description.contains("LoadCredential=database-password:") == true)
        // The unit's SetCredential= default stands in for a missing source file: refused, named; an empty file too.
        for text in [SystemdCredentials.missingMarker, "\n"] {
            let e = try withCredentials(["database-password": text]) { (dir: String) throws in
                configError { _ = try GatewayConfig.parse(yaml: yaml, environment: ["CREDENTIALS_DIRECTORY": dir]) }
            }
            #expect(e?.key == "database.password_credential" && e?.description.contains("credential 'database-password' is missing") == true,
                    "\(String(describing: e))")
        }
        // Not under systemd and no password elsewhere: an error at start, not a refused connection later.
        let outside = configError { _ = try GatewayConfig.parse(yaml: yaml, environment: [:]) }
        #expect(outside?.key == "database.password_credential" && outside?.description.contains("CREDENTIALS_DIRECTORY is not set") == true)
        #expect(try GatewayConfig.parse(yaml: yaml, environment: ["POSTGRES_PASSWORD": "x"]).database.password == "x")
    }

    @Test func credentialNamesAreCheckedAsSystemdTakesThem() {
        for bad in ["../seed", "a/b", "", "..", "wallet seed"] {
            let e = configError { _ = try GatewayConfig.parse(yaml: "wallet:\n  seed_credential: \"\(bad)\"\n") }
            #expect(e?.key == "wallet.seed_credential", "\(bad)")
        }
        #expect(configError { _ = try GatewayConfig.parse(yaml: "console:\n  totp_key_credential: x/y\n") }?.key == "console.totp_key_credential")
    }

    @Test func theSeedComesFromItsCredentialBetweenTheVariableAndTheFile() throws {
        let mnemonic = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"
        let seed = try BIP39.seed(fromMnemonic: mnemonic)
        let wallet = try GatewayConfig.parse(yaml: "wallet:\n  seed_env: SEED\n  seed_credential: wallet-seed\n  seed_file: /nonexistent/seed\n").wallet
        try withCredentials(["wallet-seed": Hex.encode(seed) + "\n"]) { (dir: String) throws in
            #expect(try wallet.loadSeed(environment: ["CREDENTIALS_DIRECTORY": dir]) == seed)
            let other = "legal winner thank year wave sausage worth useful legal winner thank yellow"
            #expect(try wallet.loadSeed(environment: ["CREDENTIALS_DIRECTORY": dir, "SEED": other]) == BIP39.seed(fromMnemonic: other))
        }
        let missing = try withCredentials([:]) { dir in configError { _ = try wallet.loadSeed(environment: ["CREDENTIALS_DIRECTORY": dir]) } }
        #expect(missing?.key == "wallet.seed_credential" && missing?.description.contains("credential 'wallet-seed' is missing") == true,
                "a unit without its credential says which: \(String(describing: missing))")
        let nowhere = configError { _ = try wallet.loadSeed(environment: [:]) }
        #expect(nowhere?.key == "wallet.seed_file")
        #expect(nowhere?.description.contains("SEED is not set") == true && nowhere?.description.contains("no credential 'wallet-seed'") == true,
                "\(String(describing: nowhere))")
        let bad = try withCredentials(["wallet-seed": "not a seed at all"]) { (dir: String) throws in
            configError { _ = try wallet.loadSeed(environment: ["CREDENTIALS_DIRECTORY": dir]) }
        }
        #expect(bad != nil && bad?.description.contains("not a seed") == false, "the error never repeats the secret")
    }

    @Test func aNodeAPIKeyMayComeAsACredential() throws {
        let tron = """
            chains:
              tron:
                kind: tron
                node_url: https://api.trongrid.io
                confirmations: 19
                block_time: 3s
                api_key_header: TRON-PRO-API-KEY
                api_key_credential: trongrid-api-key

            """
        try withCredentials(["trongrid-api-key": "k-123\n"]) { (dir: String) throws in
            let c = try GatewayConfig.parse(yaml: tron, environment: ["CREDENTIALS_DIRECTORY": dir])
            #expect(c.chains.first?.headers["TRON-PRO-API-KEY"] == "k-123")
        }
        #expect(configError { _ = try GatewayConfig.parse(yaml: tron, environment: [:]) }?.key == "chains.tron.api_key_credential")
    }

    /// The example for servers parses with the credentials its units give, and names exactly those.
    @Test func theProductionExampleLoadsWithTheCredentialsTheUnitsGive() throws {
        let path = ConfigTests.root.appendingPathComponent("deploy/workers.production.yml").path
        let c = try withCredentials(["database-password": "pw"]) { (dir: String) throws in
            try GatewayConfig.load(path: path, environment: ["CREDENTIALS_DIRECTORY": dir])
        }
        #expect(c.database.password == "pw")
        #expect(c.database.passwordCredential == "database-password")
        #expect(c.wallet.seedCredential == "wallet-seed" && c.wallet.seedFile == nil && c.wallet.seedEnv == nil, "no seed on disk or in the environment")
        #expect(c.console.totpKeyCredential == "console-totp-key" && c.console.totpKeyFile == nil)
        #expect(c.console.secureCookies)
        #expect(Set(c.stages.keys) == Set(Stage.allCases) && Stage.allCases.allSatisfy { c.worker($0).metricsListen != nil })
    }
}
