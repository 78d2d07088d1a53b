import ArgumentParser
import Foundation
import GatewayConsole
import GatewayCore
import GatewayRuntime
import GatewayServices
import PostgresNIO

#if canImport(Glibc)
import Glibc
#endif

/// `gatewayctl user …`: the people who sign in to the operator console (gateway-console).
struct UserCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "user",
        abstract: "Console users: add, disable, reset their TOTP, set a password, list.",
        discussion: """
            Console users sign in to gateway-console with a password (bcrypt) and a TOTP code from an authenticator app. \
            Roles: viewer (reads), reviewer --level N (decides reviews up to level N), admin (retries dead jobs and \
            callbacks, reads the audit; decides reviews when given --level), auditor (reads, and the audit). \
            A console user's name is their reviewer name: the same person deciding through gatewayctl (--as NAME), an \
            admin token or the console is one reviewer, so four eyes need two different names. Give a person the \
            same name everywhere, and never give two people one name. \
            The TOTP secret is printed once, never logged: put it in the authenticator (or make a QR code of the otpauth URI). \
            In the database it is sealed (AES-GCM) with the key named by console.totp_key_env / totp_key_file (scripts/bootstrap.sh \
            writes .local/console-totp.key); with neither configured it is stored as it is. Admins can also disable, enable, \
            reset TOTP and change roles on the console's Users page (each change with a fresh TOTP code).
            """,
        subcommands: [Add.self, Disable.self, ResetTOTP.self, Password.self, List.self])

    /// A password from standard input: asked twice without echo on a terminal, else the first line.
    static func readPassword() throws -> String {
        if isatty(0) == 1 {
            guard let a = getpass("password (12 characters or more): ").map({ String(cString: $0) }),
                  let b = getpass("again: ").map({ String(cString: $0) })
            else { throw CLIError("no password given") }
            guard a == b else { throw CLIError("the two passwords differ") }
            return a
        }
        guard let line = Swift.readLine(strippingNewline: true), !line.isEmpty else {
            throw CLIError("give the password on standard input (one line), or use --generate-password")
        }
        return line
    }

    /// The key sealing TOTP secrets (console.totp_key_env / totp_key_file), as gateway-console loads it.
    static func secrets(_ config: GatewayConfig) throws -> TOTPSecretBox {
        do { return try TOTPSecretBox.load(config.console, relativeTo: config.source) } catch let e as ConfigError { throw CLIError(e.description) }
    }

    static func generatedPassword() -> String {
        let alphabet = Array("abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789")
        var rng = SystemRandomNumberGenerator()
        return String((0..<20).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] })
    }

    static func printEnrollment(_ e: TOTPEnrollment, name: String) {
        print("""
            TOTP secret for \(name) (shown once; add it to an authenticator app):
              secret  \(e.base32Secret)
              uri     \(e.uri)
            """)
    }

    /// Runs a write with the configuration at hand (the bcrypt cost).
    static func write<R: Sendable>(_ options: ProcessOptions, _ body: @escaping @Sendable (DatabaseConnection, GatewayConfig, Logger) async throws -> R)
        async throws -> R
    {
        do {
            return try await CLIContext.with(options) { ctx in
                try await ctx.database.transaction { c in try await body(c, ctx.config, ctx.logger) }
            }
        } catch let e as ServiceError {
            throw CLIError(e.description)
        }
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a console user; reads the password from standard input and prints the TOTP secret once.",
            discussion: "Examples: gatewayctl user add alice --role reviewer --level 2; gatewayctl user add audit1 --role auditor --generate-password")
        @OptionGroup var options: ProcessOptions
        @Argument(help: "The user's name (lower-case letters, digits, '.', '_', '-'): also their reviewer name.") var name: String
        @Option(help: "viewer, reviewer, admin or auditor.") var role: String
        @Option(help: "The highest review level the user decides (reviewer: required; admin: optional).") var level: Int?
        @Flag(help: "Make up a password and print it once instead of reading one.") var generatePassword = false

        func validate() throws {
            guard ConsoleRole(rawValue: role) != nil else { throw ValidationError("--role must be viewer, reviewer, admin or auditor") }
        }

        func run() async throws {
            let role = ConsoleRole(rawValue: self.role)!
            let password = generatePassword ? UserCommand.generatedPassword() : try UserCommand.readPassword()
            let (name, level) = (self.name, self.level ?? 0)
            let (enrollment, tokenExists) = try await UserCommand.write(options) { c, config, l in
                let e = try await ConsoleAccounts.add(name: name, role: role, reviewLevel: level, password: password, bcryptCost: config.console.bcryptCost,
                                                      secrets: try UserCommand.secrets(config), actor: "cli", on: c, logger: l)
                return (e, try await Reviews.reviewer(named: name, on: c, logger: l) != nil)
            }
            print("console user \(name) added: \(role.rawValue)\(level > 0 ? ", reviews up to level \(level)" : "")")
            if generatePassword { print("password (shown once): \(password)") }
            if tokenExists { print("note: admin token \(name) exists: the same reviewer for four eyes (one person)") }
            UserCommand.printEnrollment(enrollment, name: name)
        }
    }

    struct Disable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Disable a console user and end their sessions.")
        @OptionGroup var options: ProcessOptions
        @Argument(help: "The user's name.") var name: String

        func run() async throws {
            let name = self.name
            try await UserCommand.write(options) { c, _, l in try await ConsoleAccounts.disable(name: name, actor: "cli", on: c, logger: l) }
            print("console user \(name) disabled; their sessions ended")
        }
    }

    struct ResetTOTP: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "reset-totp", abstract: "Give a user a new TOTP secret (printed once); their old authenticator and sessions stop working.")
        @OptionGroup var options: ProcessOptions
        @Argument(help: "The user's name.") var name: String

        func run() async throws {
            let name = self.name
            let e = try await UserCommand.write(options) { c, config, l in
                try await ConsoleAccounts.resetTOTP(name: name, secrets: try UserCommand.secrets(config), actor: "cli", on: c, logger: l)
            }
            UserCommand.printEnrollment(e, name: name)
        }
    }

    struct Password: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Set a user's password (read from standard input); their sessions end.")
        @OptionGroup var options: ProcessOptions
        @Argument(help: "The user's name.") var name: String

        func run() async throws {
            let name = self.name
            let password = try UserCommand.readPassword()
            try await UserCommand.write(options) { c, config, l in
                try await ConsoleAccounts.setPassword(name: name, password: password, bcryptCost: config.console.bcryptCost, actor: "cli", on: c, logger: l)
            }
            print("password of \(name) set; their sessions ended")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List console users with role, level, state and last sign-in.")
        @OptionGroup var options: ProcessOptions

        func run() async throws {
            let users = try await read(options) { c, l in try await ConsoleAccounts.list(on: c, logger: l) }
            guard !users.isEmpty else { return print("no console users (gatewayctl user add NAME --role …)") }
            var t = TextTable(header: ["name", "role", "level", "state", "last sign-in"])
            for u in users {
                t.add([u.name, u.role, "\(u.reviewLevel)", u.disabled ? "disabled" : "enabled",
                       u.lastSignIn.map { ISO8601DateFormatter().string(from: $0) } ?? "never"])
            }
            print(t.render(), terminator: "")
        }
    }
}
