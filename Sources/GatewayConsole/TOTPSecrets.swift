import Crypto
import Foundation
import GatewayCore

/// Console users' TOTP secrets at rest: sealed with AES-GCM under a key named by
/// `console.totp_key_env` / `console.totp_key_file` (32 bytes, written as 64 hex digits), bound to the
/// user's name (a sealed secret copied to another user's row does not open). Stored as
/// `aesgcm:` + base64(nonce ‖ ciphertext ‖ tag). Without a key, secrets are stored as they are (and a
/// sealed one cannot be opened: sign-in fails for that user, and the process says why at start).
/// Secrets stored before the key was configured keep working; `reset-totp` stores a sealed one.
public struct TOTPSecretBox: Sendable {
    let key: SymmetricKey?

    static let prefix = "aesgcm:"

    /// No key: secrets stored in the clear.
    public static let plain = TOTPSecretBox(key: nil)

    public init(key: SymmetricKey?) { self.key = key }

    /// Whether new secrets are sealed.
    public var seals: Bool { key != nil }

    /// The key `config` names: the environment variable wins over the systemd credential, which wins over the file
    /// (a relative path is relative to the configuration file `base`); none named: `plain`. Fails (naming the key, never showing
    /// it) when a named source is missing or does not hold 64 hex digits.
    public static func load(_ config: ConsoleConfig, relativeTo base: String? = nil,
                            environment: [String: String] = ProcessInfo.processInfo.environment) throws -> TOTPSecretBox {
        let text: String
        let key: String
        if let env = config.totpKeyEnv, let value = environment[env], !value.isEmpty {
            (text, key) = (value, "console.totp_key_env (\(env))")
        } else if let name = config.totpKeyCredential,
            let value = try SystemdCredentials.read(name, key: "console.totp_key_credential", environment: environment)
        {
            (text, key) = (value, "console.totp_key_credential (\(name))")
        } else if let name = config.totpKeyFile {
            let file = name.hasPrefix("/") || base == nil ? name : URL(fileURLWithPath: base!).deletingLastPathComponent().appendingPathComponent(name).path
            guard let data = FileManager.default.contents(atPath: file), let s = String(data: data, encoding: .utf8) else {
                throw ConfigError(key: "console.totp_key_file", "cannot read \(file) (scripts/bootstrap.sh writes one for the local setup)")
            }
            (text, key) = (s, "console.totp_key_file (\(file))")
        } else if let name = config.totpKeyCredential {
            throw ConfigError(key: "console.totp_key_credential", "credential '\(name)' cannot be read: \(SystemdCredentials.directoryVariable) "
                + "is not set (not started by systemd with LoadCredential=\(name):PATH)\(config.totpKeyEnv.map { ", and \($0) is not set" } ?? "")")
        } else if let env = config.totpKeyEnv {
            throw ConfigError(key: "console.totp_key_env", "the environment variable \(env) is not set")
        } else {
            return .plain
        }
        let hex = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard hex.count == 64, let bytes = Self.bytes(hex: hex) else {
            throw ConfigError(key: key, "expected 64 hex digits (32 bytes), e.g. from: openssl rand -hex 32")
        }
        return TOTPSecretBox(key: SymmetricKey(data: bytes))
    }

    static func bytes(hex: String) -> Data? {
        var out = Data()
        var chars = Array(hex.utf8)[...]
        while chars.count >= 2 {
            guard let b = UInt8(String(decoding: chars.prefix(2), as: UTF8.self), radix: 16) else { return nil }
            out.append(b)
            chars = chars.dropFirst(2)
        }
        return chars.isEmpty ? out : nil
    }

    /// The stored form of `secret` for user `name`.
    public func seal(_ secret: String, name: String) throws -> String {
        guard let key else { return secret }
        let box = try AES.GCM.seal(Data(secret.utf8), using: key, authenticating: Data("console_user:\(name)".utf8))
        guard let combined = box.combined else { throw TOTPSecretError("sealing failed") }
        return Self.prefix + combined.base64EncodedString()
    }

    /// The secret of user `name` from its stored form.
    public func open(_ stored: String, name: String) throws -> String {
        guard stored.hasPrefix(Self.prefix) else { return stored }
        guard let key else { throw TOTPSecretError("the TOTP secret of \(name) is sealed and no console.totp_key_file / totp_key_env is configured") }
        guard let data = Data(base64Encoded: String(stored.dropFirst(Self.prefix.count))) else { throw TOTPSecretError("the sealed TOTP secret of \(name) is damaged") }
        do {
            let plain = try AES.GCM.open(try AES.GCM.SealedBox(combined: data), using: key, authenticating: Data("console_user:\(name)".utf8))
            return String(decoding: plain, as: UTF8.self)
        } catch {
            throw TOTPSecretError("the TOTP secret of \(name) does not open with the configured key (another key, or another user's row)")
        }
    }
}

/// A TOTP secret that cannot be sealed or opened (never carries the secret).
public struct TOTPSecretError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
