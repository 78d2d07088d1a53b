import Foundation

/// Secrets handed to a process by systemd (`LoadCredential=NAME:PATH`, `LoadCredentialEncrypted=`, `SetCredential=`):
/// files in `$CREDENTIALS_DIRECTORY` that only the service can read, for as long as it runs, so that a seed, a key or
/// a password is neither a world-readable file nor an environment variable (which `/proc/PID/environ`, crash
/// reports and child processes see). `workers.yml` names a credential with a `…_credential` key.
public enum SystemdCredentials {
    /// The environment variable systemd sets to the directory holding a service's credentials.
    public static let directoryVariable = "CREDENTIALS_DIRECTORY"
    /// What the units' `SetCredential=` defaults hold: the credential's file was missing when the unit started.
    public static let missingMarker = "usdt-gateway-credential-missing"

    /// Checks a credential name as `workers.yml` gives it: what systemd accepts as a file name in the directory.
    public static func validate(_ name: String, key: String) throws {
        let allowed = name.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) || "-_.@".unicodeScalars.contains($0) }
        guard !name.isEmpty, name.utf8.count <= 255, name != ".", name != "..", allowed, name.unicodeScalars.allSatisfy(\.isASCII) else {
            throw ConfigError(key: key, "expected a credential name (letters, digits, '-', '_', '.', '@'), as in LoadCredential=NAME:PATH; found '\(name)'")
        }
    }

    /// The text of credential `name` (configured under `key`), or nil when the process was not started with a
    /// credentials directory (not under systemd: the caller falls back to its other sources). A directory that lacks
    /// the credential, or holds it empty, is an error that names it: the unit lacks its `LoadCredential=` line, or
    /// the file that line names is missing.
    public static func read(_ name: String, key: String, environment: [String: String]) throws -> String? {
        guard let directory = environment[directoryVariable], !directory.isEmpty else { return nil }
        let path = URL(fileURLWithPath: directory).appendingPathComponent(name).path
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError(key: key, "credential '\(name)' is missing from \(directoryVariable) (\(directory)): "
                + "give it to the unit with LoadCredential=\(name):/etc/usdt-gateway/credentials/\(name)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigError(key: key, "credential '\(name)' is not UTF-8 text")
        }
        // The units pair each LoadCredential= with a SetCredential= default holding `missingMarker`, so that a missing
        // source file reaches the process (and this message, naming it) instead of systemd's nameless "243/CREDENTIALS".
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty, trimmed != missingMarker else {
            throw ConfigError(key: key, "credential '\(name)' is missing: the source file of the unit's LoadCredential=\(name):PATH "
                + "is \(trimmed.isEmpty ? "empty" : "missing") (put the secret in /etc/usdt-gateway/credentials/\(name))")
        }
        return text
    }
}
